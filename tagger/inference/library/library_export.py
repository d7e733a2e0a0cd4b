"""`tagger-library export` and `failures`: the rows of a results database
(tag.py --db) as CSV, JSON lines or Parquet, with the tags chosen at export
time.

`export` writes the tagged files. Every format has, per file: `path`,
`size`, `mtime` (seconds), `duration` (s), `sample_rate` (the file's own),
`windows`, `padded`, `model` (the model's fingerprint), `tags` (the
selected tags, highest score first) and `scores` (their scores, same
order); with `all_scores`, every tag's score as well (CSV and Parquet: one
column per tag, named `score:TAG`; JSON lines: an object `all_scores`). CSV
joins `tags` and `scores` with `;`. The files that could not be tagged are
not among these rows (the export counts them, for the caller to say so):
`failures` writes them, one row each with `path`, `size`, `mtime`, `model`
and `error` (the reason tag.py gave).

Rows come in path order and are streamed: the export holds one batch of
rows at a time. The file is written under a temporary name and renamed
into place (a damaged database or row met on the way is one UserError, and
nothing is left at `out`). A path is written as its `fileio.path_text` (a
backslash doubled, each byte that is not valid UTF-8 as `\\xNN`), one text
per file, which `fileio.path_from_text` maps back. A CSV cell that a
spreadsheet would run as a formula (a path, tag or error starting with
`=`, `+`, `-`, `@`, a quote or a space) has a quote before it
(`csv_cells.text_cell`), which `csv_cells.from_text_cell` drops.
"""

from __future__ import annotations

import dataclasses
import json

from tagger import destination, fileio
from tagger.csv_cells import csv_line
from tagger.errors import UserError
from tagger.fileio import path_text
from tagger.inference.library.results_reader import ResultsReader
from tagger.inference.outputs import select_tags

FORMATS = ("csv", "jsonl", "parquet")
COLUMNS = ["path", "size", "mtime", "duration", "sample_rate", "windows", "padded", "model",
           "tags", "scores"]
FAILURE_COLUMNS = ["path", "size", "mtime", "model", "error"]
PARQUET_MARK = b"tagger.library"  # key of the Parquet file's metadata
_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class Exported:
    """What `export` wrote: `rows`, of model `fingerprint`, which also has
    `failures` files that could not be tagged."""

    rows: int
    fingerprint: str
    failures: int


def iter_rows(reader, model: dict, top_k=None, threshold=None, all_scores=False):
    """Yields one dict per tagged file of `model` (see the module
    docstring), read by `reader` (a ResultsReader)."""
    names = model["tag_names"]
    for stored in reader.scored(model):
        scores = stored["scores"]
        chosen = select_tags(scores, names, top_k, threshold)
        row = dict(path=path_text(stored["path"]), size=stored["size"],
                   mtime=stored["mtime_ns"] / 1e9, duration=round(stored["duration"], 3),
                   sample_rate=stored["sample_rate"], windows=stored["windows"],
                   padded=bool(stored["padded"]), model=model["fingerprint"],
                   tags=[t for t, _ in chosen], scores=[round(s, 6) for _, s in chosen])
        if all_scores:
            row["all_scores"] = {n: round(float(s), 6) for n, s in zip(names, scores)}
        yield row


def iter_failures(reader, model: dict):
    """Yields one dict per file of `model` that could not be tagged."""
    for stored in reader.failures(model):
        yield dict(path=path_text(stored["path"]), size=stored["size"],
                   mtime=stored["mtime_ns"] / 1e9, model=model["fingerprint"],
                   error=stored["error"])


def is_export(path: str) -> bool:
    """Whether `path` is a file `export` wrote, in any format (its header)."""
    footer = fileio.parquet_footer(path)
    if footer is not None:
        return PARQUET_MARK in footer
    line = fileio.first_line(path)
    if line.startswith(",".join(COLUMNS)) or line == ",".join(FAILURE_COLUMNS):
        return True
    try:
        first = json.loads(line)
    except ValueError:
        return False
    return isinstance(first, dict) and ({"path", "model", "tags"} <= set(first)
                                        or set(first) == set(FAILURE_COLUMNS))


def export(db: str, fmt: str, out: str | None, top_k=None, threshold=None, model=None,
           all_scores=False, overwrite=False, stdout=None, failures=False) -> Exported:
    """Writes the tagged files of `db` (with `failures`: the files that
    could not be tagged) to `out` (None: `stdout`, CSV and JSON lines only)."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("--format parquet needs pyarrow (in requirements.txt), which is "
                            "not installed: pip install -r requirements.txt, or use --format "
                            "csv or jsonl") from None
        if out is None:
            raise UserError("--format parquet writes a file: add --out PATH")
    if out is not None:
        destination.check_destination(out, "--out", kind="an export tagger-library wrote",
                                      recognise=is_export, overwrite=overwrite, inputs=[db])
    with ResultsReader(db) as reader:
        chosen = reader.choose_model(model, failures=failures)
        names = chosen["tag_names"]
        if failures:
            rows, header = iter_failures(reader, chosen), FAILURE_COLUMNS
            values, fields = (lambda row: [row[c] for c in FAILURE_COLUMNS]), _failure_fields
        else:
            rows = iter_rows(reader, chosen, top_k, threshold, all_scores)
            header = COLUMNS + ([f"score:{n}" for n in names] if all_scores else [])
            values = lambda row: _score_values(row, names, all_scores)
            fields = lambda: _score_fields(names, all_scores)
        if out is None:
            count = _write_text(rows, fmt, header, values, stdout)
        else:
            try:
                with fileio.replacing(out) as tmp:
                    if fmt == "parquet":
                        count = _write_parquet(rows, tmp, fields(), names)
                    else:
                        with open(tmp, "w", encoding="utf-8", newline="") as f:
                            count = _write_text(rows, fmt, header, values, f)
            except OSError as error:
                raise destination.output_error("--out", out, error) from None
    return Exported(count, chosen["fingerprint"], chosen["failures"])


def _score_values(row, names, all_scores) -> list:
    """A score row's CSV cells."""
    values = [row[c] for c in COLUMNS[:-2]]
    values[6] = int(values[6])
    values += [";".join(row["tags"]), ";".join(f"{s:.6f}" for s in row["scores"])]
    if all_scores:
        values += [f"{row['all_scores'][n]:.6f}" for n in names]
    return values


def _write_text(rows, fmt, header, values, f) -> int:
    count = 0
    if fmt == "csv":
        f.write(csv_line(header))
        for row in rows:
            f.write(csv_line(values(row)))
            count += 1
    else:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
            count += 1
    return count


def _score_fields(names, all_scores) -> list:
    import pyarrow as pa

    fields = [("path", pa.string()), ("size", pa.int64()), ("mtime", pa.float64()),
              ("duration", pa.float64()), ("sample_rate", pa.int64()),
              ("windows", pa.int64()), ("padded", pa.bool_()), ("model", pa.string()),
              ("tags", pa.list_(pa.string())), ("scores", pa.list_(pa.float32()))]
    if all_scores:
        fields += [(f"score:{n}", pa.float32()) for n in names]
    return fields


def _failure_fields() -> list:
    import pyarrow as pa

    return [("path", pa.string()), ("size", pa.int64()), ("mtime", pa.float64()),
            ("model", pa.string()), ("error", pa.string())]


def _write_parquet(rows, path, fields, names) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(fields, metadata={PARQUET_MARK: json.dumps({"tags": list(names)})})
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch = []
        for row in rows:
            if "all_scores" in row:
                row.update({f"score:{n}": v for n, v in row.pop("all_scores").items()})
            batch.append(row)
            if len(batch) == _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema))
                count, batch = count + len(batch), []
        if batch or not count:
            writer.write_table(pa.Table.from_pylist(batch, schema))
            count += len(batch)
    return count
