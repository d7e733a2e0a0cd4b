"""The models a server holds: each loaded once, with its predictor, batcher
and fingerprint, and the decoding of an upload into its windows.

A model is named on the command line as a file (served under its file
name's stem, or its folder's name for train.py's `model.keras`), a
pretrained name (served under that name), or NAME=PATH. Its fingerprint is
the results database's (`tagger.inference.common.model_fingerprint`:
the SHA-256 of the file), so a client can tell two versions of a model
apart and match results with a `tag.py --db` database.

An upload is decoded as tag.py decodes a file (`tagger.audio.audio_windows`:
mixed to mono, resampled to the model's rate, cut into the model's
windows (`tagger.models.saved.window_grid`: for most, side by side), the
last partial window dropped, a file shorter than one window zero-padded
to one), its windows scored by the
model's `Batcher` with other requests', and the clip scores are the mean
over its windows (`tagger.inference.engine.tagging.FileResult`, as in tag.py's
reports).
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from tagger.errors import UserError
from tagger.serve.problems import Problem

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# with max_batch, the batch sizes run before the first request: the second
# size makes the predictor's tf.function trace for any batch size
WARM_UP_BATCHES = (1,)


@dataclasses.dataclass
class ServedModel:
    name: str
    path: str
    fingerprint: str
    info: object  # tagger.models.tagger_metadata.TaggerMetadata, or None
    predictor: object  # tagger.inference.engine.predictor.Predictor
    batcher: object  # tagger.serve.batching.Batcher
    attention: object = None  # tagger.interpret.attention_maps mapper, for attention models

    @property
    def tag_names(self) -> list:
        return list(self.predictor.tag_names)

    @property
    def sample_rate(self) -> int:
        return int(self.predictor.sample_rate)

    @property
    def window_samples(self) -> int:
        return int(self.predictor.window_samples)

    @property
    def hop_samples(self) -> int:
        return int(self.predictor.hop_samples or self.window_samples)

    @property
    def has_embeddings(self) -> bool:
        return self.predictor.embedding_layer is not None

    @property
    def note(self) -> str | None:
        """The line to show beside this model's tags (a model trained on the
        synthetic dataset says so), or None."""
        from tagger.models.saved import synthetic_note

        return synthetic_note(self.info)

    def describe(self) -> dict:
        """The model as `GET /v1/models` lists it (no server paths)."""
        return {
            "name": self.name, "fingerprint": self.fingerprint,
            "family": self.info.model if self.info else None, "file": os.path.basename(self.path),
            "tags": self.tag_names, "sample_rate": self.sample_rate,
            "window_seconds": round(self.window_samples / self.sample_rate, 6),
            "embedding_dim": self.predictor.embedding_dim,
            "attention": self.attention is not None, "note": self.note,
        }

    def decode(self, path: str, max_seconds: float):
        """(windows (n, window_samples) float32, samples at the model's rate,
        the file's own sample rate) of the audio file at `path`. Problems:
        422 for what is not decodable audio, 413 above `max_seconds`."""
        from tagger.audio import AudioDecodeError, WindowStream, audio_windows, file_info

        window = self.window_samples
        hop, edge = self.hop_samples, self.predictor.edge_padding
        limit = int(max_seconds * self.sample_rate)
        too_long = Problem(413, f"the audio is longer than the limit of {max_seconds:g} s "
                                "(--max-seconds); send a shorter excerpt")
        windows = []
        try:
            stream = WindowStream(audio_windows(path, self.sample_rate, window, hop,
                                                edge_padding=edge))
            for start, samples in stream:
                if start and start + window > limit + 2 * edge:  # stop past the limit
                    raise too_long
                windows.append(samples)
            file_rate = int(file_info(path).sample_rate)
        except AudioDecodeError as error:
            raise Problem(422, undecodable(error)) from None
        if stream.total > limit:
            raise too_long
        return np.stack(windows), int(stream.total), file_rate

    def submit(self, path: str, max_seconds: float):
        """Decodes the file and queues its windows on the batcher (blocking
        while the batcher's backlog is full); returns (future of (scores,
        embeddings), samples, file rate, windows). Runs on a decoder thread."""
        windows, samples, file_rate = self.decode(path, max_seconds)
        return self.batcher.submit(windows), samples, file_rate, len(windows)

    def result(self, name: str, scores, embeddings, samples: int, file_rate: int):
        """The `FileResult` of an upload's scored windows (422 for scores
        that are not finite)."""
        from tagger.inference.engine.tagging import NOT_FINITE_SCORES, FileResult

        if not np.isfinite(scores).all():
            raise Problem(422, NOT_FINITE_SCORES)
        return FileResult(
            index=0, path=name, windows=len(scores), samples=samples,
            sample_rate=self.sample_rate, file_sample_rate=file_rate,
            window_samples=self.window_samples, hop_samples=self.hop_samples,
            edge_padding=self.predictor.edge_padding, scores=scores,
            clip_scores=scores.mean(axis=0), embeddings=embeddings)

    def attention_map(self, path: str) -> dict:
        """The last encoder layer's [CLS] attention over time, summed over
        the heads (`tagger.interpret.attention_maps`), for the page."""
        maps = self.attention([path])
        values = maps.attention_over_time()  # (windows * steps,)
        return {
            "step_seconds": maps.window_seconds / maps.steps_per_window,
            "audio_seconds": maps.audio_seconds,
            "values": [round(float(v), 6) for v in values],
        }


def undecodable(error) -> str:
    from tagger.audio import decode_reason

    reason = decode_reason(error)
    said = re.fullmatch(r"not decodable audio \((.*)\)", reason)
    return (f"the upload is not audio this server can decode ({said[1] if said else reason}); "
            "send an MP3, OGG, FLAC, WAV or M4A file")


def name_and_source(spec: str) -> tuple[str, str]:
    """(the name clients use, what to resolve) of a --model argument."""
    from tagger.pretrained import MODELS

    text = str(spec)
    head, sep, tail = text.partition("=")
    if sep and NAME.match(head) and tail:
        return head, tail
    if text in MODELS:
        return text, text
    from tagger.models.saved import model_file_name

    name = re.sub(r"[^A-Za-z0-9._-]", "_", model_file_name(text)).lstrip("._-")[:64] or "model"
    return name, text


def load_model(spec: str, max_batch: int, max_wait: float, max_pending: int,
               progress: bool = True, log=print, engine: str = "keras") -> ServedModel:
    """Loads one model (downloading and converting a pretrained name on
    first use), builds its predictor with `engine` (a name of the engine
    registry) and its batcher and runs a batch of each warm-up size through
    it. UserError for a model that cannot be used."""
    from tagger.inference.common import model_fingerprint
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.models.saved import load_tagger
    from tagger.pretrained import resolve_model
    from tagger.serve.batching import Batcher

    name, source = name_and_source(spec)
    path = resolve_model(source, progress=progress)
    model, info = load_tagger(path)
    try:
        predictor = make_predictor(engine, model, info,
                                   EngineOptions(embeddings=True, model_path=path))
    except UserError:  # a model without a known embedding layer: scores only
        predictor = make_predictor(engine, model, info, EngineOptions(model_path=path))
    if predictor.warning:
        log(f"warning: {name}: {predictor.warning}")
    for line in filter(None, predictor.note.splitlines()):  # which engine auto took
        log(f"{name}: {line}")
    from tagger.models import FAMILIES

    attention = None
    family = FAMILIES.get(info.model if info else None)
    if family is not None and "attention" in family.analyses:
        from tagger.interpret.attention_maps import make_attention_mapper

        attention = make_attention_mapper(model, info)
    for size in (max_batch, *WARM_UP_BATCHES):
        predictor(np.zeros((size, predictor.window_samples), np.float32))
    batcher = Batcher(predictor, max_batch=max_batch, max_wait=max_wait,
                      max_pending=max_pending, name=name)
    return ServedModel(name=name, path=path, fingerprint=model_fingerprint(path),
                       info=info, predictor=predictor, batcher=batcher,
                       attention=attention)


def load_models(config, log=print) -> list[ServedModel]:
    """Every model of a ServeConfig, in order; two with one name are a
    UserError."""
    names = set()
    for spec in config.models:  # before loading any
        name, _ = name_and_source(spec)
        if name in names:
            raise UserError(f"two models are named {name!r}; name them apart with "
                            "--model NAME=PATH")
        names.add(name)
    loaded = []
    try:
        for spec in config.models:
            loaded.append(load_model(spec, config.max_batch, config.max_wait_ms / 1000,
                                     config.pending_windows, config.progress, log,
                                     config.engine))
    except BaseException:
        for model in loaded:
            model.batcher.close()
        raise
    return loaded
