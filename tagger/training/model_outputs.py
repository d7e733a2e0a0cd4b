"""A saved tagger's outputs over the clips of a records folder, window by
window, and their store beside the records: what a teacher's targets
(`teacher_targets`) and a body's embeddings (`pretrained_body`) share.

A model runs over a clip at its own sample rate and window, as tag.py
runs over a file: the clip's audio (its segments joined, at the records'
rate) is resampled to the model's rate (`audio.resample`, the builders'
soxr) and cut into the model's windows (`audio.audio_windows`, with the
hop and edge padding of `models.saved.window_grid`), which the keras
engine's predictor scores (`inference.engine.registry.make_predictor`),
with each window's embedding when asked. Clips are scored many at a time
as tag.py scores files (`clip_batches`): read and cut ahead by a thread
of their own, their windows sharing full batches. `records_predictions`
scores a split's clips so (a --from tagger's val and test figures, and
eval.py's).

What a consumer keeps of each clip (rows: a teacher's targets per
segment, a body's embeddings per window) is stored per shard of records
in a folder of its own: an entry file (what made the rows, and the
records they were made from, by `records.fingerprint.records_fingerprint`)
and one `<shard>.npz` per shard (the shard's clip ids, rows per clip and
the rows of all its clips in order, float32, and the state of the
records' shard file they were made from: its size, mtime and framing
digest, `records.shard_state`), each written atomically once its shard
is done: an interrupted run goes on from the first missing shard, and a
rerun reads them back. A stored shard that cannot be read (cut short by
a full disk or an interrupted copy, empty, or holding other arrays), or
whose records' shard is another file now (its framing digest, read again
where its size or mtime changed, differs: a shard replaced by another
build's, or written again by the build's rerun), is computed again, with
one line naming it and why. Records rebuilt with other settings or clips
get their rows anew, and stored rows whose clips are not the records' are
never used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import zipfile
from collections.abc import Callable

import numpy as np

from tagger import destination, fileio
from tagger.config import join_path
from tagger.errors import UserError
from tagger.records.info import DatasetInfo
from tagger.records.shard_state import STATE_KEYS, shard_state
from tagger.training.clip_batches import outputs_of_clips

FINGERPRINT_DIGITS = 16
# The version of the stores' files and of the code that fills them (how a
# clip is cut into windows, which layer embeds): a stored entry of another
# version is computed anew. Raise it with any change that alters stored rows.
FORMAT_VERSION = 1
MADE_FROM = "records_shard"  # in each stored .npz: the state of the shard its rows are of


class ModelFile:
    """A saved tagger (a registry name or a path) that runs over clips; the
    model itself is loaded only when something is to be computed. `role`
    and `flag` name it in messages ("teacher", "--teacher")."""

    def __init__(self, name: str, role: str = "model", flag: str = "--from",
                 progress: bool = True, log=print):
        from tagger.inference.common import model_fingerprint
        from tagger.models.saved import read_saved_info
        from tagger.pretrained import resolve_model

        self.name, self.role = str(name), role
        self.path = resolve_model(self.name, progress=progress, log=log)
        takes = (f"{flag} takes a pretrained name (tagger-pretrained list) or a .keras/.hdf5 "
                 "model file")
        if not fileio.exists(self.path):
            raise UserError(f"{role} {self.name!r} not found; {takes}")
        named = f"{role} {self.name!r} ({self.path})"
        kind = fileio.not_a_file(self.path)  # a folder is hashed file by file, a FIFO never ends
        if kind:
            raise UserError(f"{named} is {kind}, not a model file; {takes}")
        try:
            fileio.open_file(self.path, "rb").close()
        except OSError as error:
            raise UserError(f"{named} cannot be read ({fileio.os_error_reason(error)}); "
                            f"{takes}") from None
        try:
            self.info = read_saved_info(self.path)
        except Exception as error:  # noqa: BLE001  a damaged or foreign file
            raise UserError(f"cannot read {named} as a saved tagger: "
                            f"{str(error).splitlines()[0] if str(error) else error!r}"
                            ) from None
        self.fingerprint = model_fingerprint(self.path)
        self._loaded = None
        self._predictors = {}

    @property
    def key(self) -> str:
        """The first digits of the file's SHA-256: what stored outputs are filed under."""
        return self.fingerprint[:FINGERPRINT_DIGITS]

    def windows(self) -> dict:
        """The rate and window grid the model cuts a clip into (`clip_batches.clip_windows`),
        read from its info without loading it (from its predictor, for a
        model without info)."""
        if self.info is None:
            p = self.predictor()
            return {"sample_rate": p.sample_rate, "window_samples": p.window_samples,
                    "hop_samples": p.hop_samples, "edge_padding": p.edge_padding}
        from tagger.models import saved

        window = self.info.window_segments * self.info.segment_length
        hop, padding = saved.window_grid(None, self.info, window)
        return {"sample_rate": self.info.sample_rate, "window_samples": window,
                "hop_samples": hop, "edge_padding": padding}

    def loaded(self) -> tuple:
        """(Keras model, TaggerMetadata or None), loaded once."""
        if self._loaded is None:
            from tagger.models.saved import load_tagger

            self._loaded = load_tagger(self.path)
        return self._loaded

    def predictor(self, embeddings: bool = False):
        """The keras engine's predictor of the model (scores, and embeddings
        of its family's embedding layer with `embeddings`), made once."""
        if embeddings not in self._predictors:
            from tagger.inference.engine.registry import EngineOptions, make_predictor

            model, info = self.loaded()
            p = make_predictor("keras", model, info, EngineOptions(embeddings=embeddings))
            grid = (p.sample_rate, p.window_samples, p.hop_samples, p.edge_padding)
            if info is not None and grid != tuple(self.windows().values()):
                raise UserError(
                    f"{self.role} {self.name!r} ({self.path}) reads windows of {grid[1]} "
                    f"samples at {grid[0]} Hz, one every {grid[2]} (edge padding "
                    f"{grid[3]}), but its info says {tuple(self.windows().values())}; save "
                    "it again with train.py or convert_weights.py")
            self._predictors[embeddings] = p
        return self._predictors[embeddings]

    def clips_outputs(self, clips, sample_rate: int, embeddings: bool = False,
                      batch_size: int = 32):
        """Yields (clip, ClipOutputs) of every clip of the iterable `clips`
        (clips of `records.batches.clips`, float32 segments at `sample_rate`),
        in order, their windows scored in shared batches
        (`clip_batches.outputs_of_clips`)."""
        return outputs_of_clips(self.predictor(embeddings), clips, sample_rate, batch_size)


def records_predictions(predictor, data_dir: str, split: str, info: DatasetInfo,
                        batch_size: int = 32, progress: bool = False,
                        columns: list | None = None):
    """ClipPredictions of `predictor` over every clip of `split` at its own
    rate and window (`clip_batches.outputs_of_clips`): a clip's scores are the mean of its
    windows', the loss the windows' BCE against their clip's tags;
    `columns`: the predictor's output of each of the records' tags, when
    they come in another order."""
    from tqdm import tqdm

    from tagger.evaluation.metrics import binary_crossentropy
    from tagger.evaluation.predict import ClipPredictions
    from tagger.records import batches

    ids, labels = batches.clip_labels(data_dir, split, info)
    clips = batches.clips(data_dir, split, info)
    scores, window_scores = [], []
    with batches.shard_errors(data_dir, split, info):
        for _, outputs in tqdm(outputs_of_clips(predictor, clips, info.sample_rate,
                                                batch_size),
                               total=len(ids), unit="clip", desc=f"predict {split}",
                               disable=not progress):
            outputs = outputs.scores if columns is None else outputs.scores[:, columns]
            scores.append(outputs.mean(axis=0))
            window_scores.append(outputs)
    counts = [len(s) for s in window_scores]
    rows = np.concatenate(window_scores) if window_scores else np.zeros(
        (0, info.num_tags), np.float32)
    return ClipPredictions(
        ids, labels, np.asarray(scores, np.float32).reshape(-1, info.num_tags),
        binary_crossentropy(np.repeat(labels, counts, axis=0), rows), len(rows))


def tagger_predictions(model, model_info, data_dir: str, split: str, info: DatasetInfo,
                       batch_size: int = 32, progress: bool = False,
                       columns: list | None = None):
    """`records_predictions` of a loaded tagger (the keras engine's predictor)."""
    from tagger.inference.engine.registry import make_predictor

    return records_predictions(make_predictor("keras", model, model_info), data_dir, split,
                               info, batch_size, progress, columns)


@dataclasses.dataclass(frozen=True)
class ClipRows:
    """Rows of a split's clips, clips in split order: the stored form."""

    clip_ids: np.ndarray  # (clips,) int64
    num_rows: np.ndarray  # (clips,) int64
    values: np.ndarray  # (rows of all clips, width) float32, clip after clip

    @property
    def offsets(self) -> np.ndarray:
        """(clips + 1,) where each clip's rows start in `values`, and the end."""
        return np.concatenate([[0], np.cumsum(self.num_rows)]).astype(np.int64)

    def row_clips(self) -> np.ndarray:
        """(rows,) the index of each row's clip."""
        return np.repeat(np.arange(len(self.clip_ids)), self.num_rows)

    def clip_means(self, values: np.ndarray | None = None) -> np.ndarray:
        """(clips, width) each clip's rows averaged (of `values`, rows like
        this one's values, when given)."""
        values = self.values if values is None else values
        if not len(self.clip_ids):
            return np.zeros((0, values.shape[1]), np.float32)
        sums = np.add.reduceat(values.astype(np.float64), self.offsets[:-1], axis=0)
        return (sums / self.num_rows[:, None]).astype(np.float32)


def concatenate(parts, width: int) -> ClipRows:
    if not parts:
        return ClipRows(np.zeros(0, np.int64), np.zeros(0, np.int64),
                        np.zeros((0, width), np.float32))
    return ClipRows(*(np.concatenate([getattr(p, f.name) for p in parts])
                      for f in dataclasses.fields(ClipRows)))


def store_key(model: ModelFile, **more) -> dict:
    """What decides a model's stored rows, the key of a store's entry
    (`Store.made_by`): the stores' FORMAT_VERSION, the model file's SHA-256,
    the windows it cuts a clip into (`ModelFile.windows`) and `more`."""
    return {"format_version": FORMAT_VERSION, "sha256": model.fingerprint,
            **model.windows(), **more}


@dataclasses.dataclass(frozen=True)
class Store:
    """Where and how a consumer stores its rows: `folder`, its entry file
    `entry_file` holding `made_by` (what decides the rows: the model's
    fingerprint, its layer...), the records' fingerprint and `about` (more
    for a reader, e.g. the name the model was given by, not compared; a
    dict, or a function giving one, called only when rows are computed);
    `width`: the values per row (or a function giving it, called only
    when rows are computed: the entry file keeps it); `fields`: the names of the arrays of
    ClipRows' fields in each .npz (clip_ids, num_rows, values). In
    messages, `what` names the rows ("the embeddings"), `redo` what is
    done again ("computing") and `rows` what a row is."""

    folder: str
    entry_file: str
    made_by: dict
    what: str
    width: int | Callable
    about: dict | Callable = dataclasses.field(default_factory=dict)
    fields: tuple = tuple(f.name for f in dataclasses.fields(ClipRows))
    redo: str = "computing"
    rows: str = ""

    def shard_path(self, shard: str) -> str:
        return join_path(self.folder, f"{shard}.npz")


def stored_rows(store: Store, data_dir: str, info: DatasetInfo, split: str,
                rows_of_clips: Callable, progress: bool = False, log=print,
                label: str = "", clip_ids: np.ndarray | None = None) -> tuple[ClipRows, int]:
    """(the rows of every clip of `split`, the number of shards computed
    now): read from `store`, the missing shards computed first with
    `rows_of_clips(clips)`, which yields (clip, (rows, width)) for every
    clip of the iterable `clips` (clips of `reader.clip_dataset`: clip_id
    and float32 segments), in order, and stored. `label` names the work on
    the progress bar. `clip_ids`: the split's clip ids in order, as the
    records hold them; stored rows of other clips are computed again, with
    one line saying so."""
    from tagger.records.fingerprint import records_fingerprint

    records = records_fingerprint(data_dir, info)
    shards = info.splits[split]["shards"]
    entry = _current_entry(store, records)
    if callable(store.width):
        width = (entry or {}).get("width")
        store = dataclasses.replace(store, width=width if isinstance(width, int)
                                    else store.width())
    parts = _stored(store, data_dir, info, split, log) if entry else {}
    stored = set(parts)
    computed = _compute(store, data_dir, info, split, parts, rows_of_clips, progress, label,
                        records)
    rows = concatenate([parts[i] for i in range(len(shards))], store.width)
    if clip_ids is not None and stored and not np.array_equal(rows.clip_ids, clip_ids):
        log(f"{store.what} of {split} in {store.folder} are not of the records' clips; "
            f"{store.redo} them again")
        for i in stored:
            del parts[i]
        computed += _compute(store, data_dir, info, split, parts, rows_of_clips, progress,
                             label, records)
        rows = concatenate([parts[i] for i in range(len(shards))], store.width)
    if len(rows.clip_ids) != info.splits[split]["clips"]:
        raise UserError(f"{store.what} in {store.folder!r} hold {len(rows.clip_ids)} clips "
                        f"of {split} but the records {info.splits[split]['clips']}; delete "
                        "that folder and run again")
    return rows, computed


def _compute(store: Store, data_dir: str, info: DatasetInfo, split: str, parts: dict,
             rows_of_clips: Callable, progress: bool, label: str, records: str) -> int:
    """Computes and stores the shards of `split` missing from `parts` (in
    place); returns how many."""
    from tqdm import tqdm

    shards = info.splits[split]["shards"]
    missing = [i for i in range(len(shards)) if i not in parts]
    if missing:
        _start_entry(store, records)
    for i in tqdm(missing, desc=label or split, unit="shard", disable=not progress):
        state = shard_state(join_path(data_dir, shards[i]))
        parts[i] = _shard_rows(data_dir, info, split, i, rows_of_clips, store.width)
        _save_shard(store, shards[i], parts[i], state)
    return len(missing)


def _save_shard(store: Store, shard: str, rows: ClipRows, state) -> None:
    """Stores `rows` of the records' `shard`, whose file was as `state` (a
    ShardState, or None where there was no file) when they were made."""
    arrays = dict(zip(store.fields, dataclasses.astuple(rows)))
    if state is not None:
        arrays[MADE_FROM] = np.array(json.dumps(state.to_json()))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        fileio.write_atomic(store.shard_path(shard), buffer.getvalue())
    except OSError as error:
        raise destination.output_error(store.what, store.shard_path(shard), error) from None


def _stored(store: Store, data_dir: str, info: DatasetInfo, split: str, log) -> dict:
    """{index: rows} of the shards stored; one that cannot be read (cut
    short, empty, not a shard's arrays) or that was made from another file
    than the records' shard now (`_made_from_another`) is left out, to be
    computed again, with one line saying so."""
    parts = {}
    for i, shard in enumerate(info.splits[split]["shards"]):
        path = store.shard_path(shard)
        if not fileio.exists(path):
            continue
        try:
            rows, made_from = read_shard(path, store.fields, store.width, store.rows)
        except DamagedShard as error:
            log(f"{store.what} {path} cannot be read ({error}); {store.redo} its shard again")
            continue
        if _made_from_another(store, rows, made_from, data_dir, info, split, i):
            log(f"{store.what} {path} were made from another {shard} than the one in "
                f"{data_dir} now; {store.redo} its shard again")
            continue
        parts[i] = rows
    return parts


def _made_from_another(store: Store, rows: ClipRows, made_from: dict | None, data_dir: str,
                       info: DatasetInfo, split: str, index: int) -> bool:
    """Whether the records' shard `index` of `split` is now another file
    than the one `rows` were made from: its framing digest (read where its
    size or mtime are not the ones `made_from` holds, `shard_state`) is not
    the one `made_from` holds, or for rows stored without it, the one
    dataset_info.json holds. Rows kept have the shard's state stored with
    them where it was read anew."""
    shard = info.splits[split]["shards"][index]
    state = shard_state(join_path(data_dir, shard), made_from)
    if state is None:  # no shard: the records' reader names it
        return False
    built = info.splits[split].get("shard_framing_sha256")
    expected = (made_from or {}).get("framing_sha256") or (built[index] if built else None)
    if expected is not None and state.framing_sha256 != expected:
        return True
    if state.to_json() != made_from:  # kept with the rows: not read again while it holds
        with contextlib.suppress(UserError):  # a store that cannot be written is still read
            _save_shard(store, shard, rows, state)
    return False


def _current_entry(store: Store, records: str) -> dict | None:
    """The entry in the store's folder when it was made as `store.made_by`
    says for these records, else None."""
    path = join_path(store.folder, store.entry_file)
    if not fileio.exists(path):
        return None
    try:
        entry = json.loads(fileio.read_text(path))
    except (ValueError, UnicodeDecodeError):
        return None
    made = _entry(store, records)
    current = isinstance(entry, dict) and {key: entry.get(key) for key in made} == made
    return entry if current else None


def _entry(store: Store, records: str) -> dict:
    """What the entry file must hold, as JSON reads it back (lists, not tuples)."""
    return json.loads(json.dumps({**store.made_by, "records": records}))


def _start_entry(store: Store, records: str) -> None:
    """Writes the entry file; an entry made for other records (or by
    another model) is emptied first."""
    path = join_path(store.folder, store.entry_file)
    try:
        if fileio.isdir(store.folder) and not _current_entry(store, records):
            for name in fileio.listdir(store.folder):
                if name.endswith(".npz"):
                    fileio.remove(join_path(store.folder, name))
        fileio.makedirs(store.folder)
        about = store.about() if callable(store.about) else store.about
        fileio.write_atomic(path, json.dumps({**about, "width": store.width,
                                              **_entry(store, records)}, indent=1))
    except OSError as error:
        raise destination.output_error(store.what, path, error) from None


def _shard_rows(data_dir: str, info: DatasetInfo, split: str, index: int,
                rows_of_clips: Callable, width: int) -> ClipRows:
    from tagger.records import batches

    count = len(info.splits[split]["shards"])
    clips = batches.clips(data_dir, split, info, shard=(count, index))
    ids, counts, values = [], [], []
    with batches.shard_errors(data_dir, split, info):
        for clip, rows in rows_of_clips(clips):
            ids.append(clip["clip_id"])
            counts.append(len(rows))
            values.append(rows)
    return ClipRows(np.asarray(ids, np.int64), np.asarray(counts, np.int64),
                    np.concatenate(values) if values else np.zeros((0, width), np.float32))


class DamagedShard(Exception):
    """A stored shard that cannot be read; the message says why."""


LOAD_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def read_shard(path: str, fields: tuple, width: int, rows: str = "") -> tuple[ClipRows,
                                                                              dict | None]:
    """(the rows stored at `path`, the state of the records' shard they
    were made from or None where it was not stored): a DamagedShard unless
    the file is a whole .npz of a shard's arrays (named `fields`) of rows of
    `width` values (`rows` says what a row is in its message)."""
    try:
        with np.load(io.BytesIO(fileio.read_bytes(path))) as data:
            absent = [name for name in fields if name not in data.files]
            if absent:
                raise DamagedShard(f"it holds no {', '.join(absent)}")
            stored = ClipRows(*(data[name] for name in fields))
            made_from = json.loads(str(data[MADE_FROM])) if MADE_FROM in data.files else None
    except LOAD_ERRORS as error:
        why = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DamagedShard(f"cut short or damaged: {why}") from None
    problem = shape_problem(stored, fields, width, rows)
    if problem:
        raise DamagedShard(problem)
    if not (isinstance(made_from, dict) and set(made_from) == set(STATE_KEYS)):
        made_from = None
    return stored, made_from


def shape_problem(rows: ClipRows, fields: tuple, width: int, what: str = "") -> str | None:
    """What in `rows` is not a shard's arrays of rows of `width` values
    (`what` a row is), or None."""
    ids, counts, values = rows.clip_ids, rows.num_rows, rows.values
    if not (ids.ndim == counts.ndim == 1 and len(ids) == len(counts)
            and ids.dtype.kind in "iu" and counts.dtype.kind in "iu"
            and (counts >= 0).all()):
        return (f"{fields[0]} {ids.dtype}{list(ids.shape)} and {fields[1]} "
                f"{counts.dtype}{list(counts.shape)} are not one count per clip")
    expected = (int(counts.sum()), width)
    if values.dtype.kind != "f" or values.shape != expected:
        return (f"{fields[2]} are {values.dtype}{list(values.shape)}, expected float"
                f"{list(expected)}" + (f": {what}" if what else ""))
    return None
