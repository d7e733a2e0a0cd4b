"""A trained tagger's body (its layers up to its embedding) as the start
of a tagger of other tags (train.py --from MODEL), and its embeddings of
a records folder's clips, computed once and stored beside the records.

The body embeds each clip at its own sample rate and window, as tag.py
runs it over a file (`model_outputs`): one embedding per window, from the
layer its family names (`FamilySpec.embedding_layer`; MTT_musicnn's:
`embedding`, 200 values, 16 kHz windows of 3 s). They are stored in
`<records>/embeddings/<fingerprint>/` (the first 16 hex digits of the
model file's SHA-256): `embeddings.json` (the model, the stores' format
version, its window, hop and edge padding, its layer and the records'
fingerprint) and one `<shard>.npz` per shard of records
(clip_ids, num_rows: windows per clip, values: windows x dimensions).
Several bodies of one rate and window (train.py --from A --from B), each
with its own features, store their own; a head reads them side by side
(`joined_embeddings`).
"""

from __future__ import annotations

import numpy as np

from tagger.config import join_path
from tagger.errors import UserError
from tagger.records.info import DatasetInfo
from tagger.training.model_outputs import ClipRows, ModelFile, Store, store_key, stored_rows

EMBEDDINGS_DIR = "embeddings"
ENTRY_FILE = "embeddings.json"


class Body(ModelFile):
    """The model named by --from: a pretrained name or a saved tagger."""

    def __init__(self, name: str, progress: bool = True, log=print):
        super().__init__(name, "model", "--from", progress, log)
        if self.info is None:
            raise UserError(f"--from {self.name!r} ({self.path}) carries no tagger info (its "
                            "rate, window and family), so its embeddings cannot be found; "
                            "use a model saved by train.py or convert_weights.py, or a "
                            "pretrained name (tagger-pretrained list)")

    def predictor(self, embeddings: bool = False):
        try:
            return super().predictor(embeddings)
        except UserError:
            if not embeddings:
                raise
            raise UserError(f"--from {self.name!r} ({self.path}) has no embedding layer of a "
                            f"family of this project (its info names {self.info.model!r}); "
                            "use a model saved by train.py or convert_weights.py, or a "
                            "pretrained name (tagger-pretrained list)") from None

    @property
    def embedding_layer(self) -> str:
        return self.predictor(embeddings=True).embedding_layer

    @property
    def embedding_dim(self) -> int:
        return self.predictor(embeddings=True).embedding_dim

    def describe(self) -> dict:
        """What decides its embeddings (`model_outputs.store_key`: the file,
        the windows, the stores' format, which fixes the layer); read
        without loading it."""
        return store_key(self)


def embeddings_store(body: Body, data_dir: str) -> Store:
    """The store of the body's embeddings; the body is loaded only when
    some are to be computed (their layer and width are named then)."""
    return Store(folder=join_path(data_dir, EMBEDDINGS_DIR, body.key), entry_file=ENTRY_FILE,
                 made_by=body.describe(), what="the embeddings",
                 width=lambda: body.embedding_dim,
                 about=lambda: {"model": body.name, "path": body.path,
                                "embedding_layer": body.embedding_layer,
                                "embedding_dim": body.embedding_dim})


def split_embeddings(body: Body, data_dir: str, info: DatasetInfo, split: str,
                     clip_ids=None, progress: bool = False, log=print) -> ClipRows:
    """The body's embeddings of every window of every clip of `split`, read
    from their store beside the records, the missing shards computed and
    stored first (`model_outputs.stored_rows`; `clip_ids`: the records'
    clips of the split, which stored rows must match)."""
    store = embeddings_store(body, data_dir)

    def rows(clips):
        for clip, outputs in body.clips_outputs(clips, info.sample_rate, embeddings=True):
            yield clip, outputs.embeddings

    shards = len(info.splits[split]["shards"])
    embeddings, computed = stored_rows(store, data_dir, info, split, rows, progress, log,
                                       label=f"{body.name} embeddings: {split}",
                                       clip_ids=clip_ids)
    log(f"{body.name} ({body.key}): embeddings of {split}, {shards} shard(s), {computed} "
        f"computed, {shards - computed} reused, in {store.folder}")
    return embeddings


def check_same_audio(bodies) -> None:
    """A UserError unless every body reads the same windows of the same
    audio (rate, window, hop, edge padding), as their embeddings are joined
    window by window and their saved tagger runs them on one window (each
    body's features, log-mel settings included, its own:
    `tag_head.joined_bodies`); a model given twice (by one name or two) is
    one too."""
    first = bodies[0]
    for number, other in enumerate(bodies[1:], 1):
        same = next((body for body in bodies[:number]
                     if body.fingerprint == other.fingerprint), None)
        if same is not None:
            raise UserError(f"--from {same.name!r} and --from {other.name!r} are one model "
                            f"(SHA-256 {other.fingerprint[:16]}...); give each body once")

    for other in bodies[1:]:
        if other.windows() != first.windows():
            raise UserError(f"--from {first.name!r} and --from {other.name!r} read different "
                            f"windows ({first.windows()} and {other.windows()}), so their "
                            "embeddings cannot be joined; give bodies of one rate and window, "
                            "or one --from")


def joined_embeddings(bodies, data_dir: str, info: DatasetInfo, split: str, clip_ids=None,
                      progress: bool = False, log=print) -> ClipRows:
    """The embeddings of every body (`split_embeddings`, each stored in its
    own folder) side by side: each window's row is the first body's values,
    then the next's."""
    parts = [split_embeddings(body, data_dir, info, split, clip_ids, progress, log)
             for body in bodies]
    first = parts[0]
    for body, rows in zip(bodies[1:], parts[1:]):
        if not np.array_equal(rows.num_rows, first.num_rows):
            raise UserError(f"--from {body.name!r} embeds the clips of {split} in other "
                            f"windows than --from {bodies[0].name!r}; give bodies of one "
                            "rate and window")
    if len(parts) == 1:
        return first
    return ClipRows(first.clip_ids, first.num_rows,
                    np.concatenate([rows.values for rows in parts], axis=1))
