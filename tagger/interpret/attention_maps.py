"""Attention heat maps and tag-wise contribution maps of the attention taggers.

Won, Chun, Serra, "Visualizing and understanding self-attention based
music tagging" (ICML 2019 workshop), for the self_attention and
transformer families:

- attention heat map: the last encoder layer's attention from the [CLS]
  query over the time steps, summed over the heads (`attention`), and
  the attention each time step receives, summed over the heads and
  averaged over the queries (`received`);
- tag-wise contribution map: for every time step t, the last layer's
  attention is forced to one-hot on t and the tag outputs are recorded
  (`tagger.models.attention`); one row per tag shows where in time the
  model finds evidence for it.

Audio of any length and any format `tagger.audio` reads is decoded and
resampled to the model's rate (`tagger.audio.stream_audio`) and cut into
non-overlapping windows of the model's input length. The last partial
window is zero-padded, so the maps cover the whole file (dropping it
would lose up to a window: 10.7 s of a 29.1 s clip for the transformer);
`audio_seconds` says where the audio ends and the figures shade the
padding. The per-window maps are concatenated in time.

Time steps and frames: the self-attention tagger has one step per log-mel
frame; the Music Tagging Transformer one per 4 frames (its front end
pools time by 4). `frames_per_step` records this; step t of a window
covers its frames [t * frames_per_step, (t + 1) * frames_per_step).
"""

from __future__ import annotations

import dataclasses
import io
import posixpath

import numpy as np

from tagger import fileio, strict_json
from tagger.config import join_path
from tagger.errors import UserError
from tagger.models.tagger_metadata import TaggerMetadata

CHECK_RATE = 22050  # any rate: checking a file decodes (and resamples) its first second


@dataclasses.dataclass(frozen=True)
class AttentionMaps:
    """The maps of one input (one file, or several joined end to end).

    spectrogram: `(windows * frames_per_window, n_mels)` the model's log-mel
        input, windows concatenated.
    attention: `(windows, T + 1)` last layer, [CLS] query, summed over the
        heads; column 0 is [CLS] itself, 1..T the time steps. Rows sum to
        `heads`.
    received: `(windows, T + 1)` last layer, summed over the heads and
        averaged over the queries: the attention each token receives. Rows
        sum to `heads`.
    contributions: `(windows * T, num_tags)` the tag outputs with the last
        layer's attention forced to one time step.
    window_scores: `(windows, num_tags)` the model's outputs per window;
        `scores` is their mean (the clip's tags, as in evaluation).
    """

    name: str
    sources: tuple
    tag_names: tuple
    window_scores: np.ndarray
    spectrogram: np.ndarray
    attention: np.ndarray
    received: np.ndarray
    contributions: np.ndarray
    heads: int
    frames_per_step: int
    sample_rate: int
    window_samples: int
    audio_samples: int

    @property
    def windows(self) -> int:
        return int(self.attention.shape[0])

    @property
    def steps_per_window(self) -> int:
        return int(self.attention.shape[1]) - 1

    @property
    def frames_per_window(self) -> int:
        return int(self.spectrogram.shape[0]) // self.windows

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate

    @property
    def audio_seconds(self) -> float:
        return self.audio_samples / self.sample_rate

    @property
    def seconds(self) -> float:
        """Length of the maps: whole windows, padding included."""
        return self.windows * self.window_seconds

    @property
    def scores(self) -> np.ndarray:
        return self.window_scores.mean(axis=0)

    def attention_over_time(self) -> np.ndarray:
        """`(windows * T,)` the [CLS] attention to each time step."""
        return self.attention[:, 1:].reshape(-1)

    def received_over_time(self) -> np.ndarray:
        """`(windows * T,)` the attention each time step receives."""
        return self.received[:, 1:].reshape(-1)

    def top_tags(self, k: int) -> list[str]:
        """The k tags with the highest scores, best first."""
        order = np.argsort(-self.scores, kind="stable")[:k]
        return [self.tag_names[i] for i in order]

    def tag_index(self, tag: str) -> int:
        if tag not in self.tag_names:
            raise UserError(f"unknown tag {tag!r}; the model's tags are: "
                            f"{', '.join(self.tag_names)}")
        return self.tag_names.index(tag)

    def steps_as_frames(self, values) -> np.ndarray:
        """Spreads per-step values `(windows * T, ...)` over the frames
        `(windows * frames_per_window, ...)` they cover (NaN for frames
        after the last step of a window), to draw them under the
        spectrogram."""
        values = np.asarray(values, np.float64)
        per_window = values.reshape(self.windows, self.steps_per_window, *values.shape[1:])
        spread = np.repeat(per_window, self.frames_per_step, axis=1)
        missing = self.frames_per_window - spread.shape[1]
        if missing:
            pad = [(0, 0), (0, missing)] + [(0, 0)] * (values.ndim - 1)
            spread = np.pad(spread, pad, constant_values=np.nan)
        return spread.reshape(-1, *values.shape[1:])


def make_attention_mapper(model, model_info: TaggerMetadata | None, batch_size: int = 32):
    """Builds the sub-models once; returns `maps(sources, name=None,
    progress=False) -> AttentionMaps` for lists of audio paths (several
    paths are joined end to end).

    A model without encoder layers is a UserError naming the model."""
    import keras

    from tagger.layers import LogMel
    from tagger.models.attention import contribution_tail, contributions_from_hidden, encoder_names
    from tagger.models.saved import raw_audio_input

    try:
        names = encoder_names(model)
    except ValueError:
        from tagger.models import FAMILIES

        family = model_info.model if model_info else "unknown family"
        takers = [name for name, spec in FAMILIES.items() if "attention" in spec.analyses]
        raise UserError(f"model {model.name!r} ({family}) has no attention layers "
                        "(encoder0, encoder1, ...); attention maps need a "
                        f"{' or '.join(takers)} model") from None
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer, got {batch_size!r}")
    sample_rate, window, to_model_input = raw_audio_input(model, model_info)
    last = model.get_layer(names[-1])
    outputs = {"tags": model.output, "attention": last.output[1], "hidden": last.input}
    front = _layer_or_none(model, "log_mel")
    raw_front = isinstance(front, LogMel)
    if raw_front:
        outputs["spectrogram"] = front.output  # (batch, frames, mels)
    probe = keras.Model(model.inputs, outputs, name=f"{model.name}_probe")
    tail = contribution_tail(model)
    tag_names = ((model_info.tag_names if model_info else ())
                 or tuple(f"tag{i}" for i in range(model.output.shape[-1])))
    heads = int(last.output[1].shape[1])
    tokens = int(last.input.shape[1]) - 1

    def maps(sources, name=None, progress=False) -> AttentionMaps:
        from tqdm import tqdm

        sources = tuple(str(s) for s in sources)
        for path in sources:
            check_audio(path, sample_rate)
        counter = {}
        parts = {k: [] for k in ("tags", "attention", "received", "spectrogram",
                                 "contributions")}
        label = name or "+".join(_stem(s) for s in sources)
        windows = _padded_windows(sources, sample_rate, window, counter)
        for audio in tqdm(windows, total=_estimated_windows(sources, sample_rate, window),
                          desc=f"attention {label}", unit="window", disable=not progress):
            features = to_model_input(audio[None])  # (1, samples) or (1, frames, mels)
            out = probe.predict_on_batch(np.asarray(features))
            scores = np.asarray(out["attention"], np.float64)[0]  # (heads, T + 1, T + 1)
            parts["tags"].append(np.asarray(out["tags"])[0])
            parts["attention"].append(scores[:, 0, :].sum(axis=0))
            parts["received"].append(scores.sum(axis=0).mean(axis=0))
            parts["spectrogram"].append(np.asarray(
                out["spectrogram"] if raw_front else features)[0])
            parts["contributions"].append(
                contributions_from_hidden(tail, out["hidden"], batch_size))
        frames = parts["spectrogram"][0].shape[0]
        if frames < tokens:
            raise UserError(f"the model has more time steps ({tokens}) than frames "
                            f"({frames}); cannot align its attention with the spectrogram")
        return AttentionMaps(
            name=label, sources=sources, tag_names=tag_names,
            window_scores=np.stack(parts["tags"]).astype(np.float32),
            spectrogram=np.concatenate(parts["spectrogram"]).astype(np.float32),
            attention=np.stack(parts["attention"]).astype(np.float32),
            received=np.stack(parts["received"]).astype(np.float32),
            contributions=np.concatenate(parts["contributions"]).astype(np.float32),
            heads=heads, frames_per_step=frames // tokens, sample_rate=int(sample_rate),
            window_samples=int(window), audio_samples=int(counter["samples"]))

    return maps


def check_audio(path: str, sample_rate: int) -> None:
    """A missing, empty or undecodable file is a UserError of one line."""
    from tagger.audio import AudioDecodeError, stream_audio

    try:
        first = next(iter(stream_audio(path, sample_rate, block_seconds=1.0)), None)
    except AudioDecodeError as error:
        raise UserError(f"{path}: {error}") from None
    if first is None:
        raise UserError(f"{path}: no audio samples")


def choose_tags(maps: AttentionMaps, tags=None, top_k: int = 5) -> list[str]:
    """`tags` (checked against the model's) or the input's top-k tags."""
    if tags:
        for tag in tags:
            maps.tag_index(tag)
        return list(tags)
    if not isinstance(top_k, int) or top_k < 1:
        raise UserError(f"--top-k must be a positive integer, got {top_k!r}")
    return maps.top_tags(min(top_k, len(maps.tag_names)))


def save_maps(maps: AttentionMaps, out_dir: str, tags, stem: str | None = None) -> list[str]:
    """Writes `<stem>_{spectrogram,attention,received,contributions}.npy`,
    `<stem>_maps.json` (tags, scores, time layout) and the two figures
    `<stem>_attention.png`, `<stem>_contributions.png` (local or any
    tf.io.gfile path; `stem`: the name made safe for a file, by default
    `maps.name`'s); returns the paths."""
    from tagger.interpret.plots import plot_attention, plot_contributions, save_figure

    fileio.makedirs(out_dir)
    base = join_path(out_dir, stem or _safe(maps.name))
    paths = []
    for key in ("spectrogram", "attention", "received", "contributions"):
        path = f"{base}_{key}.npy"
        buffer = io.BytesIO()
        np.save(buffer, getattr(maps, key))
        fileio.write_atomic(path, buffer.getvalue())
        paths.append(path)
    meta = {
        "name": maps.name, "sources": list(maps.sources), "tag_names": list(maps.tag_names),
        "scores": [round(float(s), 6) for s in maps.scores], "shown_tags": list(tags),
        "heads": maps.heads, "windows": maps.windows,
        "steps_per_window": maps.steps_per_window,
        "frames_per_window": maps.frames_per_window,
        "frames_per_step": maps.frames_per_step, "sample_rate": maps.sample_rate,
        "window_samples": maps.window_samples, "window_seconds": maps.window_seconds,
        "audio_seconds": maps.audio_seconds, "seconds": maps.seconds,
        "arrays": {
            "spectrogram": "(windows * frames_per_window, n_mels) log-mel input",
            "attention": "(windows, steps_per_window + 1) last layer, [CLS] query, summed "
                         "over heads; column 0 is [CLS]",
            "received": "(windows, steps_per_window + 1) last layer, summed over heads, "
                        "mean over queries; column 0 is [CLS]",
            "contributions": "(windows * steps_per_window, tags) tag outputs with the "
                             "last layer's attention forced to one time step",
        },
    }
    path = f"{base}_maps.json"
    fileio.write_atomic(path, strict_json.dumps(meta, indent=2))  # a NaN score: null
    paths.append(path)
    for key, figure in (("attention", plot_attention(maps)),
                        ("contributions", plot_contributions(maps, tags))):
        path = f"{base}_{key}.png"
        save_figure(figure, path)
        paths.append(path)
    return paths


OUTPUTS = ("spectrogram.npy", "attention.npy", "received.npy", "contributions.npy",
           "maps.json", "attention.png", "contributions.png")  # `save_maps`'s, after `<stem>_`


def is_maps_json(path: str) -> bool:
    """Whether `path` is a `<stem>_maps.json` that `save_maps` wrote."""
    import json

    try:
        meta = json.loads(fileio.read_text(path))
    except Exception:  # unreadable or not JSON: not ours
        return False
    keys = {"steps_per_window", "frames_per_step", "arrays"}
    return isinstance(meta, dict) and keys <= set(meta)


def check_out_dir(out_dir: str, stems, overwrite: bool = False, inputs=()) -> None:
    """Before any work: `out_dir` is a folder (or not there yet), and each
    file the maps of `stems` go to replaces only maps of ours (those whose
    `<stem>_maps.json` `save_maps` wrote) or, with `overwrite`, anything."""
    from tagger import destination

    if fileio.is_local(out_dir) and fileio.exists(out_dir) and not fileio.isdir(out_dir):
        raise UserError(f"--out {out_dir!r} exists and is not a folder")
    for stem in stems:
        base = join_path(out_dir, stem)
        ours = fileio.is_local(base) and is_maps_json(f"{base}_maps.json")
        for suffix in OUTPUTS:
            destination.check_destination(f"{base}_{suffix}", "--out",
                                          kind="a map tagger-attention wrote",
                                          recognise=lambda _path, ours=ours: ours,
                                          overwrite=overwrite, inputs=inputs)


def write_attention_maps(model_path: str, audio=(), concat=(), out_dir: str = "attention_maps",
                         tags=None, top_k: int = 5, batch_size: int = 32,
                         progress: bool = False, overwrite: bool = False):
    """Loads the model and writes the maps of every file in `audio` and of
    every pair in `concat` (joined end to end) to `out_dir`; yields one
    report line per input. Every file and destination is checked before
    any work (`check_out_dir`; `overwrite`: replace files not ours)."""
    from tagger.models.saved import load_tagger

    inputs = [(path,) for path in audio] + [tuple(pair) for pair in concat]
    if not inputs:
        raise UserError("no audio given: pass one or more files, or --concat A B")
    if not tags and (not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"--top-k must be a positive integer, got {top_k!r}")
    for sources in inputs:  # before loading the model: a bad file fails at once
        for path in sources:
            check_audio(path, CHECK_RATE)
    names, stems = input_names(inputs)
    check_out_dir(out_dir, stems, overwrite,
                  inputs=[model_path, *(path for sources in inputs for path in sources)])
    model, model_info = load_tagger(model_path)
    mapper = make_attention_mapper(model, model_info, batch_size)
    if tags:
        known = model_info.tag_names if model_info else None
        unknown = [t for t in tags if known and t not in known]
        if unknown:
            raise UserError(f"unknown tag(s) {unknown}; the model's tags are: "
                            f"{', '.join(known)}")
    for sources, name, stem in zip(inputs, names, stems):
        maps = mapper(sources, name=name, progress=progress)
        shown = choose_tags(maps, tags, top_k)
        paths = save_maps(maps, out_dir, shown, stem)
        top = ", ".join(f"{t} {maps.scores[maps.tag_index(t)]:.2f}" for t in shown)
        yield (f"{name}: {maps.audio_seconds:.1f} s in {maps.windows} window(s) of "
               f"{maps.window_seconds:.2f} s, {maps.steps_per_window} steps each; "
               f"tags shown: {top}; {len(paths)} files in {out_dir}")


def input_names(inputs) -> tuple[list, list]:
    """(names, stems) of `inputs` (tuples of paths): each input's name (its
    files' stems joined by `+`, `-2`, `-3`, ... after a name taken) and
    the stem of its files, unique too once made safe for a file name."""
    names, stems, used, used_stems = [], [], set(), set()
    for sources in inputs:
        names.append(_unique("+".join(_stem(s) for s in sources), used))
        stems.append(_unique(_safe(names[-1]), used_stems))
    return names, stems


def _padded_windows(sources, sample_rate, window, counter: dict):
    """Yields `(window,)` float32 arrays: the sources joined end to end, cut
    into windows, the last partial one zero-padded; `counter["samples"]`
    holds the number of audio samples once the generator is exhausted."""
    from tagger.audio import stream_audio

    counter["samples"] = 0
    buffer = np.zeros(0, np.float32)
    for path in sources:
        for block in stream_audio(path, sample_rate):
            counter["samples"] += len(block)
            buffer = np.concatenate([buffer, block])
            while len(buffer) >= window:
                yield buffer[:window]
                buffer = buffer[window:]
    if len(buffer):
        yield np.concatenate([buffer, np.zeros(window - len(buffer), np.float32)])


def _estimated_windows(sources, sample_rate, window) -> int | None:
    """Windows the sources will give, from the files' headers (for progress)."""
    from tagger.audio import file_info

    try:
        infos = [file_info(path) for path in sources]
    except Exception:  # a file that cannot be opened: no estimate
        return None
    if any(i.frames is None for i in infos):
        return None
    samples = sum(i.frames * sample_rate / i.sample_rate for i in infos)
    return max(1, -(-int(round(samples)) // window))


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _stem(path: str) -> str:
    base = posixpath.basename(str(path).rstrip("/"))
    return base.rsplit(".", 1)[0] if "." in base[1:] else base


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "+-_." else "_" for c in name)


def _unique(name: str, used: set) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}-{n}", n + 1
    used.add(candidate)
    return candidate
