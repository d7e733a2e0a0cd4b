"""Where a tag.py run puts each file's result, one small object per output.

Every output is a `Sink`: `add(result)` for each tagged file, in the
order of the run's list (taggrams, embeddings, tags in the files, the
results database, the report: a file's tags are written before its row,
which records the file as changed), `add_failure(result)` for each file
that could not be tagged, then, once, `close()` when the run ends or
`abort()` when it is interrupted, in the opposite order.
"""

from __future__ import annotations


class Sink:
    def add(self, result) -> None:
        pass

    def add_failure(self, result) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class Report(Sink):
    """The tagged files' results without their per-window arrays, for the
    report (and the taggram index)."""

    def __init__(self):
        self.results = []

    def add(self, result) -> None:
        self.results.append(result.compact())


class Taggrams(Sink):
    """Each file's taggram (.npy, .png) in `folder`, named by `names`; the
    index of the `report`'s files once the run ends (none without one)."""

    def __init__(self, folder: str, names: dict, tag_names, top_k, threshold, note,
                 report: Report | None):
        self.folder, self.names, self.tag_names = folder, names, tag_names
        self.top_k, self.threshold, self.note, self.report = top_k, threshold, note, report

    def add(self, result) -> None:
        from tagger.inference.tag.taggram import write_taggram

        write_taggram(self.folder, self.names[result.path], result, self.tag_names,
                      self.top_k, threshold=self.threshold, note=self.note)

    def close(self) -> None:
        from tagger.inference.tag.taggram import write_index

        results = self.report.results if self.report is not None else []
        if results:
            write_index(self.folder, {r.path: self.names[r.path] for r in
                                      sorted(results, key=lambda r: r.index)})


class Embeddings(Sink):
    """Each file's per-window embeddings into an `EmbeddingWriter`'s archive."""

    def __init__(self, writer):
        self.writer = writer

    def add(self, result) -> None:
        self.writer.add(result.path, result.embeddings)

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class FileTags(Sink):
    """The selected tags into each file's own metadata (a `TagWriter`)."""

    def __init__(self, writer):
        self.writer = writer

    def add(self, result) -> None:
        self.writer.write(result.path, result.clip_scores)


class Database(Sink):
    """Each file's row, or its failure's, in the results database (a
    `ResultsWriter`); what was committed stays when the run is interrupted."""

    def __init__(self, writer):
        self.writer = writer

    def add(self, result) -> None:
        self.writer.add(result)

    def add_failure(self, result) -> None:  # so that a rerun need not try it again
        self.writer.add_failure(result)

    def close(self) -> None:
        self.writer.close()

    abort = close
