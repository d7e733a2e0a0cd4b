"""`tag(TagConfig)`: the library call behind tag.py."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import sys
from collections.abc import Callable

from tagger import destination, fileio
from tagger.errors import UserError
from tagger.inference.inputs import find_audio
from tagger.inference.outputs import is_report, render
from tagger.inference.tag.config import TagConfig
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.runtime import native_stderr_silenced


@dataclasses.dataclass
class TagSummary:
    """`results`: tagged files in input order (without per-window arrays);
    `failures`: (path, reason) for every input that was skipped; `report`:
    the table/JSON/CSV text, written to `config.out` when given and at least
    one input was tagged (`out_written`): an empty result never replaces an
    earlier report."""

    results: list
    failures: list
    report: str
    tag_names: list
    out_written: bool = False
    tagged: int = 0  # files tagged in this run (with --db and no --out, none is kept)
    db_written: int = 0  # rows written into --db
    db_failed: int = 0  # files that could not be tagged, stored in --db with the reason
    db_skipped: int = 0  # files up to date in --db, not tagged again
    db_failures_skipped: int = 0  # failed in an earlier run, unchanged: not tried again
    db_changed: int = 0  # changed while they were tagged: not stored, tagged again next run
    # of those skipped, {engine: files} scored by another engine than the one chosen
    db_other_engines: dict = dataclasses.field(default_factory=dict)
    tag_lines: list = dataclasses.field(default_factory=list)  # --write-tags' summary
    note: str | None = None  # a line to show beside the model's tags (synthetic_note)

    @property
    def exit_code(self) -> int:
        """0 when every input was tagged, 1 when some were skipped."""
        return 1 if self.failures else 0


def _nothing(*_):
    pass


@dataclasses.dataclass(frozen=True)
class _Output:
    """One output of a run: `add(result)` for each tagged file, `failed(result)`
    for each file that could not be tagged, then `close()` when the run ends
    or `abort()` when it is interrupted (in the opposite order of the outputs)."""

    add: Callable
    failed: Callable = _nothing
    close: Callable = _nothing
    abort: Callable = _nothing


def tag(config: TagConfig, log=None, quiet_decoders: bool = False) -> TagSummary:
    """Tags every audio file that `config.inputs` names.

    `log(line)` receives warnings and one line per skipped input (default:
    stderr, above the progress bar). Bad inputs are skipped; a missing or
    unusable model, no audio found, or an output that cannot be written is
    a UserError. `quiet_decoders` hides what native libraries print on the
    process's stderr while files are decoded (mpg123's resync notes for a
    damaged MP3), so each skipped file gets exactly one line; the CLI sets it.
    """
    with native_stderr_silenced(quiet_decoders):
        return _tag(config, log)


def _tag(config: TagConfig, log=None) -> TagSummary:
    from tqdm import tqdm

    lazy = config.db is not None and not config.taggram_dir
    if lazy:  # a library: walk it as it is tagged, list nothing up front
        found, files = _first_audio(config), None
    else:
        found = find_audio(config.inputs, config.recursive)
        files = found.files
    if not found.files:
        raise UserError(_nothing_found(config.inputs, found))
    _check_destinations(config)
    _check_archive_kept_whole(config)

    from tagger.inference.engine.registry import EngineOptions, engine_named, make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger, synthetic_note

    model, info = load_tagger(config.model)
    note = synthetic_note(info)
    predictor = make_predictor(config.engine, model, info, EngineOptions(
        embeddings=config.embeddings is not None, embedding_layer=config.embedding_layer,
        model_path=config.model,
        calibration_audio=lambda: files if files is not None else _audio_files(config, 64)))
    hop = None
    if config.hop is not None:
        hop = int(round(config.hop * predictor.sample_rate))
        if hop < 1:
            raise UserError(f"--hop {config.hop} s is less than one sample at "
                            f"{predictor.sample_rate} Hz")
    pace = []  # how the engine compares with keras, timed once (engine/pace_cache.py)
    if engine_named(config.engine).paced and not predictor.same_as_keras:
        from tagger.inference.engine.pace_cache import pace_lines

        pace = pace_lines(config.engine, predictor, model, info, config.model,
                          config.batch_size)

    bar = tqdm(total=None if files is None else len(files), unit="file", desc="tagging",
               file=sys.stderr, disable=not config.progress, dynamic_ncols=True)
    say = log or (lambda line: bar.write(line, file=sys.stderr))
    if predictor.warning:
        say(f"warning: {predictor.warning}")
    if predictor.note:
        say(predictor.note)
    for line in pace:
        say(line)
    failures = []

    def skipped(path, reason):
        failures.append((path, reason))
        say(f"skipped {fileio.path_text(path)}: {reason}")

    database = _database(config, predictor, hop, say) if config.db is not None else None
    tag_writer = None
    if config.write_tags:
        from tagger.inference.library.file_tags import TagWriter

        tag_writer = TagWriter(predictor.tag_names,
                               model=_model_label(config, info, database),
                               top_k=config.top_k, threshold=config.threshold,
                               scores=config.write_scores, genre=config.genre,
                               dry_run=config.dry_run, log=say)
    if files is None:
        files = _library_files(config, database, skipped, tag_writer)
    else:
        for path, reason in found.missing:
            skipped(path, reason)

    kept = []  # the report's results: none with --db and no --out
    outputs = []  # in the order each result reaches them
    if config.taggram_dir:
        outputs.append(_taggrams(config, found.files, predictor, note, kept))
        if database is not None:  # listed up front for the names: skip here
            files = [p for p in files if not database.is_current(p)]
    if config.embeddings:
        writer = _embedding_writer(config)
        outputs.append(_Output(lambda r: writer.add(r.path, r.embeddings), close=writer.close,
                               abort=writer.abort))
    if tag_writer is not None:  # before the row: it records the file as changed
        outputs.append(_Output(lambda r: _write_tags(tag_writer, r)))
    if database is not None:  # a failure too, so that a rerun need not try it again
        outputs.append(_Output(database.add, database.add_failure, database.close,
                               database.close))
    keep = config.out is not None or config.db is None  # the report needs them
    if keep:
        outputs.append(_Output(lambda r: kept.append(r.compact())))

    tagged, through_said = 0, False
    try:
        for result in tag_files(predictor, files, hop_samples=hop,
                                batch_size=config.batch_size, workers=config.workers,
                                windows=config.scored_windows):
            bar.update(1)
            if result.through and not through_said:
                through_said = True
                say(f"note: {fileio.path_text(result.path)} cannot be read by seeking "
                    f"({result.through}): it was decoded from its start, as is any other such "
                    "file (said once)")
            if not result.ok:
                skipped(result.path, result.error)
                for output in outputs:
                    output.failed(result)
                continue
            tagged += 1
            for output in outputs:
                output.add(result)
    except BaseException:
        for output in reversed(outputs):
            output.abort()
        raise
    finally:
        bar.close()
    for output in reversed(outputs):
        output.close()

    results = sorted(kept, key=lambda r: r.index)
    text = ""
    if keep:
        text = render(results, predictor.tag_names, config.format, config.top_k,
                      config.threshold, note)
    written = bool(config.out and results)
    if written:
        destination.write_output(config.out, text, "--out")
    summary = TagSummary(results, failures, text, predictor.tag_names, written,
                         tagged=tagged, note=note)
    if database is not None:
        summary.db_written, summary.db_skipped = database.written, database.skipped
        summary.db_failed, summary.db_failures_skipped = database.failed, database.failures_skipped
        summary.db_changed = database.changed
        summary.db_other_engines = dict(sorted(database.other_engines.items()))
    if tag_writer is not None:
        summary.tag_lines = tag_writer.summary()
    return summary


def _check_archive_kept_whole(config: TagConfig) -> None:
    """--embeddings PATH with --db holds the files the run tags: an archive
    already at PATH is not replaced by one without the files the database
    may skip as up to date (rows of this model with an embedding: their
    per-window embeddings would be lost) unless --rescan tags them all
    again. Checked before the model loads; a database that cannot be read
    here is left to the run's own opening of it to report."""
    from tagger.inference.common import model_fingerprint
    from tagger.inference.library.results_db import is_results_db, open_read_only
    from tagger.inference.tag.config import EMBEDDINGS_IN_DB

    if (config.embeddings in (None, EMBEDDINGS_IN_DB) or config.db is None or config.rescan
            or not os.path.lexists(config.embeddings) or not os.path.isfile(config.db)):
        return
    try:
        if not is_results_db(config.db):
            return
        con = open_read_only(config.db)
        try:
            held = con.execute("SELECT 1 FROM files WHERE model = ? AND embedding IS NOT NULL "
                               "LIMIT 1", (model_fingerprint(config.model),)).fetchone()
        finally:
            con.close()
    except (OSError, sqlite3.Error):
        return
    if not held:
        return
    raise UserError(f"--embeddings {fileio.path_text(config.embeddings)} is there already, and "
                    f"this run skips the files {fileio.path_text(config.db)} holds up to "
                    "date: the archive would keep only those it tags; add --rescan to tag "
                    "every file again, give another --embeddings PATH, or keep mean "
                    "embeddings in the database (--embeddings without PATH)")


def _write_tags(tag_writer, result) -> None:
    """--write-tags into a tagged file, when it is as its audio was read
    (`result.read_stat`); the file it puts in place then stands for the
    file as read, so that its row in --db, written next, is current."""
    written = tag_writer.write(result.path, result.clip_scores, result.read_stat)
    if written.stat is not None:
        result.read_stat = written.stat


def _database(config: TagConfig, predictor, hop: int | None = None, log=None):
    """The ResultsWriter of --db (replacing a file that is not a results
    database with --overwrite), of windows `hop` samples apart (None, or
    the predictor's own step: recorded as the default); `log(line)` names
    a file that changed while it was tagged."""
    from tagger.inference.library.results_db import ResultsWriter

    if config.overwrite:
        _replace_foreign_db(config.db)
    try:
        return ResultsWriter(config.db, config.model, predictor.tag_names,
                             predictor.sample_rate, predictor.window_samples,
                             embeddings=config.embeddings is not None, rescan=config.rescan,
                             log=log, windows=config.scored_windows,
                             engine=engine_name(predictor, config.engine),
                             engine_chosen=config.engine != "auto",
                             hop=None if hop == (predictor.hop_samples
                                                 or predictor.window_samples) else hop)
    except sqlite3.Error as error:
        raise UserError(f"cannot write --db {config.db!r}: {error}") from None


def engine_name(predictor, asked: str) -> str:
    """The engine that scores the files, as a results database records it:
    the predictor's (for auto, the engine it took), else `asked` (--engine)."""
    return predictor.engine or asked


def _taggrams(config: TagConfig, paths, predictor, note, kept: list) -> _Output:
    """Each file's taggram in --taggram; the index of the `kept` results."""
    from tagger.inference.tag.taggram import taggram_names, write_index, write_taggram

    try:
        fileio.makedirs(config.taggram_dir)
    except OSError as error:
        raise UserError(f"cannot create --taggram {config.taggram_dir!r}: "
                        f"{error.strerror or error}") from None
    folder, names = config.taggram_dir, taggram_names(paths)

    def index():
        if kept:
            write_index(folder, {r.path: names[r.path]
                                 for r in sorted(kept, key=lambda r: r.index)})

    return _Output(lambda r: write_taggram(folder, names[r.path], r, predictor.tag_names,
                                           config.top_k, threshold=config.threshold, note=note),
                   close=index)


def _embedding_writer(config: TagConfig):
    from tagger.inference.library.embeddings import EmbeddingWriter

    try:
        return EmbeddingWriter(config.embeddings)
    except OSError as error:
        raise UserError(f"cannot write --embeddings {config.embeddings!r}: "
                        f"{error.strerror or error}") from None


def _model_label(config: TagConfig, info: TaggerMetadata | None, database=None) -> str:
    """What --write-tags records as the model (`file_tags.model_label`): its
    pretrained name, or `family/name` of its file, its fingerprint (the
    results database's; none for a model that is not a local file) and the
    windows each file was scored from (`window_choice.windows_label`)."""
    from tagger.inference.common import model_fingerprint
    from tagger.inference.library.file_tags import model_label
    from tagger.inference.window_choice import windows_label
    from tagger.models.saved import model_file_name

    name = config.model_name
    if not name:
        name = model_file_name(config.model)
        name = f"{info.model}/{name}" if info and info.model else name
    if database is not None:
        fingerprint = database.fingerprint
    elif fileio.is_local(config.model):
        fingerprint = model_fingerprint(config.model)
    else:
        fingerprint = None
    return windows_label(model_label(name, fingerprint), config.scored_windows)


def _first_audio(config: TagConfig):
    """An AudioInputs holding at most the first audio file of the walk (and
    every problem met before it), to tell "no audio" apart at once."""
    from tagger.inference.inputs import AudioInputs, iter_audio

    missing, counts = [], {}
    for path, problem in iter_audio(config.inputs, config.recursive, counts):
        if problem is None:
            return AudioInputs((path,), tuple(missing), 0)
        missing.append((path, problem))
    return AudioInputs((), tuple(missing), counts.get("subfolders_skipped", 0))


def _audio_files(config: TagConfig, limit: int) -> list:
    from itertools import islice

    from tagger.inference.inputs import iter_audio

    walk = (path for path, problem in iter_audio(config.inputs, config.recursive)
            if problem is None)
    return list(islice(walk, limit))


def _library_files(config: TagConfig, database, skipped, tag_writer=None):
    """The walk of `config.inputs`, lazily, without the files that are up
    to date in `database` (unless `tag_writer` would change their tags: a
    file tagged by an earlier run without --write-tags is tagged again, so
    its tags are written and its row follows the changed file); problems
    go to `skipped(path, reason)`, and so does anything that goes wrong
    while one file is checked: that file is skipped with the reason, the
    walk goes on."""
    from tagger.inference.inputs import iter_audio

    for path, problem in iter_audio(config.inputs, config.recursive):
        if problem is not None:
            skipped(path, problem)
            continue
        try:
            wanted = _to_tag(path, config, database, tag_writer)
        except Exception as error:  # this file's problem, not the run's
            skipped(path, f"cannot check whether it is up to date ({type(error).__name__}: "
                          f"{error})")
            continue
        if wanted:
            yield path


def _to_tag(path: str, config: TagConfig, database, tag_writer) -> bool:
    """Whether the file at `path` is to be tagged: not up to date in
    `database` (neither tagged nor failed since it last changed), or up to
    date but lacking the tags `tag_writer` writes."""
    try:
        stored = database.current_scores(path) if database is not None else None
        if (stored is None and database is not None
                and database.failed_before(path) is not None):
            return False  # it failed, and has not changed since
    except sqlite3.Error:  # the row cannot be read: tag the file again
        stored = None
    if (stored is not None and tag_writer is not None
            and tag_writer.would_change(path, stored)):
        if config.dry_run:  # the stored scores say what would change
            tag_writer.write(path, stored)
        else:
            database.tagged_again()
            stored = None
    return stored is None


def _replace_foreign_db(path: str) -> None:
    """--overwrite: a file at --db that is not a results database is
    replaced, atomically, by an empty one."""
    from tagger.inference.library.results_db import connect, is_results_db

    if not os.path.isfile(path) or os.path.getsize(path) == 0 or is_results_db(path):
        return
    with fileio.replacing(path) as tmp:
        connect(tmp).close()
        for suffix in ("-wal", "-shm"):
            fileio.remove_quietly(tmp + suffix)


def _nothing_found(inputs, found) -> str:
    absent = [path for path, reason in found.missing if reason == "not found"]
    if absent and len(absent) == len(inputs):
        named = ", ".join(repr(str(p)) for p in absent[:3]) + (" ..." if len(absent) > 3 else "")
        return (f"no audio files found: {named} do{'es' if len(absent) == 1 else ''} not "
                "exist; check the path")
    named = ", ".join(repr(str(p)) for p in inputs[:3]) + (" ..." if len(inputs) > 3 else "")
    message = f"no audio files found in {named}"
    if absent:
        message += f" ({', '.join(repr(str(p)) for p in absent[:3])} not found)"
    elif found.missing:
        message += f" ({len(found.missing)} not readable)"
    if found.subfolders_skipped:
        message += (f"; {found.subfolders_skipped} subfolder(s) were not searched, "
                    "add --recursive")
    return message


def _check_destinations(config: TagConfig) -> None:
    """Fails before any work when an output cannot be written, or would
    destroy an input or a file tag.py did not write (destination.check_destination)."""
    from tagger.inference.inputs import is_audio_name
    from tagger.inference.library.embeddings import is_embeddings_file
    from tagger.inference.library.results_db import is_results_db

    inputs = [*config.inputs, config.model]
    walked = [(p, config.recursive, is_audio_name) for p in config.inputs if os.path.isdir(p)]
    named = {}
    for flag, path, kind, recognise in (
            ("--out", config.out, "a tag.py report", is_report),
            ("--embeddings", config.embeddings or None, "an embeddings archive tag.py wrote",
             is_embeddings_file),
            ("--db", config.db, "a results database tag.py wrote", is_results_db)):
        if path is None:
            continue
        if os.path.isdir(path):
            raise UserError(f"{flag} {path!r} is a folder; give a file name")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise UserError(f"{flag} {path!r}: folder {parent!r} does not exist")
        real = os.path.realpath(path)
        if real in named:
            raise UserError(f"{flag} and {named[real]} name the same file {path!r}; give "
                            "each output its own path")
        named[real] = flag
        destination.check_destination(path, flag, kind=kind, recognise=recognise,
                                      overwrite=config.overwrite, inputs=inputs, walked=walked)
    if config.taggram_dir:
        if os.path.exists(config.taggram_dir) and not os.path.isdir(config.taggram_dir):
            raise UserError(f"--taggram {config.taggram_dir!r} exists and is not a folder")
        clash = destination.input_clash(config.taggram_dir, inputs)
        if clash is not None:
            raise UserError(f"--taggram {config.taggram_dir!r} is the input {clash!r}; "
                            "choose another folder for the taggrams")
        from tagger.inference.tag.taggram import is_index

        index = os.path.join(config.taggram_dir, "index.csv")
        destination.check_destination(index, "--taggram", kind="a taggram index tag.py wrote",
                                      recognise=is_index, overwrite=config.overwrite)
