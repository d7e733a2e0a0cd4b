"""Saving and loading a tagger.

A saved tagger is a plain Keras file (`.keras` or `.hdf5`) that also
carries the model's `TaggerMetadata` (tag names, sample rate, window, input
kind, log-mel settings, family and factory arguments) outside the layer
graph, as JSON:
the `.keras` zip holds it as `tagger_info.json`, the `.hdf5` file as the
root attribute `tagger_info`. `read_saved_info` reads the metadata without
loading the model.

The file's dropout layers are Keras's own `Dropout`: `PhiloxDropout`
matters only in training (docs/performance.md, "Backend, XLA and precision
for training"), and training resumes from
checkpoints of the variables into a model built anew, never from this file.
So a family whose other layers are all Keras's loads with plain
`keras.models.load_model`, without this package; the others name layers
of this package (a `LogMel` front end, transformer encoder layers:
docs/commands/train.md, "The saved model") and load after `import
tagger.layers`, which registers them (`load_tagger` imports it).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

from tagger import fileio
from tagger.errors import UserError
from tagger.models.tagger_metadata import TaggerMetadata

MODEL_SUFFIXES = (".keras", ".hdf5", ".h5")
INFO_NAME = "tagger_info"  # .keras: INFO_NAME + ".json" in the zip; .hdf5: root attribute
# The layer of a tagger on several bodies (train.py --from A --from B) that
# joins their embeddings: the tagger's embedding (training/tag_head.py)
JOINED_EMBEDDING = "bodies_embedding"


def save_tagger(model, info: TaggerMetadata, path: str) -> None:
    """Writes `model` to `path` (.keras or .hdf5; local or any tf.io.gfile
    path) with `info` embedded. The file appears complete or not at all."""
    path = str(path)
    if not path.endswith(MODEL_SUFFIXES):
        raise ValueError(f"a tagger is saved as {' or '.join(MODEL_SUFFIXES)}, got {path!r}")
    text = json.dumps(info.to_json(), sort_keys=True)
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, "model" + os.path.splitext(path)[1])
        with_keras_dropout(model).save(local)
        if local.endswith(".keras"):
            with zipfile.ZipFile(local, "a") as archive:
                archive.writestr(INFO_NAME + ".json", text)
        else:
            import h5py

            with h5py.File(local, "a") as handle:
                handle.attrs[INFO_NAME] = text
        with open(local, "rb") as f:
            fileio.write_atomic(path, f.read())


def with_keras_dropout(model):
    """`model` with each `PhiloxDropout` replaced by a `keras.layers.Dropout`
    of the same settings, and the same weights: equal outputs, and a file
    that needs no layer of this package for its dropout. `model` itself
    when it has none, or when Keras cannot clone it (a subclassed model)."""
    import keras

    from tagger.layers import PhiloxDropout

    def clone(layer):
        if isinstance(layer, PhiloxDropout):
            return keras.layers.Dropout.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    if not any(isinstance(layer, PhiloxDropout) for layer in _all_layers(model)):
        return model
    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError:  # neither Functional nor Sequential
        return model
    copy.set_weights(model.get_weights())
    return copy


def _all_layers(model):
    """Every layer of `model`, those of the models nested in it included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def read_saved_info(path: str) -> TaggerMetadata | None:
    """The metadata embedded by `save_tagger`, or None for a file without
    any; metadata lacking a field is a UserError naming the file and field."""
    path = str(path)
    with fileio.open_file(path, "rb") as f:
        if path.endswith(".keras"):
            with zipfile.ZipFile(f) as archive:
                if INFO_NAME + ".json" not in archive.namelist():
                    return None
                text = archive.read(INFO_NAME + ".json")
        else:
            import h5py

            with h5py.File(f, "r") as handle:
                text = handle.attrs.get(INFO_NAME)
    if text is None:
        return None
    return TaggerMetadata.from_json(json.loads(text), path)


def load_tagger(path: str):
    """Loads a .keras/.hdf5 model; returns (model, TaggerMetadata or None).

    Missing files, other formats and models that do not end in one score per
    tag are UserErrors with one clear line.
    """
    import keras

    import tagger.layers  # noqa: F401  registers the custom layers

    path = str(path)
    if not fileio.exists(path):
        raise UserError(f"model file {path!r} not found")
    if not path.endswith(MODEL_SUFFIXES):
        raise UserError(f"{path!r} is not a saved Keras model; expected a "
                        f"{' or '.join(MODEL_SUFFIXES)} file written by train.py")
    if path.endswith(".keras") and not _is_zip(path):  # Keras would say "File not found"
        raise UserError(f"cannot load {path!r} as a Keras model: it is not a .keras zip "
                        "archive (cut short, damaged, or another kind of file)")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"cannot load {path!r} as a Keras model: "
                        f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
                        ) from None
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise UserError(f"{path!r} is not a tagger: expected one output of shape "
                        f"(batch, tags), got {[tuple(o.shape) for o in model.outputs]}")
    try:
        info = read_saved_info(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise UserError(f"cannot read the tagger info of {path!r}: {error}") from None
    return model, info


def _is_zip(path: str) -> bool:
    """Whether the file at `path` ends in a zip archive's directory."""
    with fileio.open_file(path, "rb") as f:
        return zipfile.is_zipfile(f)


def model_file_name(path: str) -> str:
    """The name a model file goes by: its file name's stem, or its folder's
    name for train.py's `<run folder>/model.keras`."""
    text = str(path)
    base = os.path.basename(text.rstrip("/"))
    stem = base.rsplit(".", 1)[0] if "." in base[1:] else base
    if stem == "model":  # train.py's runs: <run folder>/model.keras
        stem = os.path.basename(os.path.dirname(os.path.abspath(text))) or stem
    return stem


def synthetic_note(info: TaggerMetadata | None) -> str | None:
    """One line for wherever a model's tags are shown when it was trained
    on synthetic sounds (its info's dataset `origin`), else None."""
    if info is None or (info.origin or {}).get("kind") != "synthetic":
        return None
    return ("this model was trained on the synthetic dataset: its tags describe synthetic "
            "sounds, not real music (tagger-pretrained list names taggers of real music)")


def raw_audio_input(model, info: TaggerMetadata | None):
    """How to feed raw audio to a saved tagger.

    Returns (sample_rate, window_samples, to_model_input): windows of
    `window_samples` mono samples at `sample_rate`, shaped (batch, samples),
    go through `to_model_input` (identity for waveform models; the model's
    own `LogMel` front end for models trained on log-mel records).
    """
    from tagger.config import AudioConfig

    input_shape = tuple(model.inputs[0].shape[1:])
    # a plain Keras file says nothing: it reads records built with the defaults
    sample_rate = info.sample_rate if info is not None else AudioConfig().sample_rate
    if reads_waveform(model):
        return sample_rate, int(input_shape[0]), lambda windows: windows
    if info is None or not info.logmel:
        raise UserError("the model takes log-mel frames and does not say how they were "
                        "computed; use a model saved by train.py")
    layer = log_mel_front_end(info)
    window = info.window_segments * info.segment_length
    if layer.frames_for(window) != input_shape[0]:
        raise UserError(f"the model takes {input_shape[0]} frames but its log-mel settings "
                        f"give {layer.frames_for(window)} for {window} samples")
    return sample_rate, window, lambda windows: layer(windows)


def reads_waveform(model) -> bool:
    """Whether a tagger's input is raw windows `(batch, samples)`, not
    log-mel frames `(batch, frames, mels)`."""
    return len(model.inputs[0].shape) == 2


def log_mel_front_end(info: TaggerMetadata, **layer_args):
    """The `LogMel` layer that computes a log-mel-input tagger's frames from
    its raw windows, as its records held them (`info`: its rate, segment
    length and log-mel settings; `layer_args`: the layer's name, dtype)."""
    from tagger.layers import LogMel

    return LogMel(sample_rate=info.sample_rate, segment_length=info.segment_length,
                  **info.logmel, **layer_args)


def window_grid(model, info: TaggerMetadata | None, window_samples: int) -> tuple[int, int]:
    """(hop_samples, edge_padding): how consecutive windows of a file are
    cut for `model`, whose windows hold `window_samples` samples.

    Most models take windows side by side (hop = the window, no padding).
    A model whose front end runs one uncentred STFT over its whole window
    (`LogMel(center=False)`, the musicnn package's models) reads F frames
    from `(F - 1) * hop_length + n_fft` samples: its windows step by `F *
    hop_length` samples through the file padded once by `n_fft // 2`
    (reflect) at its two edges, so that they hold exactly the frames of one
    centred STFT over the whole file, cut into windows of F frames.
    `model` None: from `info` alone (a front end it does not name is none).
    """
    logmel = _front_end_settings(model, info)
    if logmel is None or logmel.get("center", True):
        return window_samples, 0
    if info is not None and info.window_segments != 1:
        return window_samples, 0  # one STFT per segment: no whole-file grid
    from tagger.config import stft_frames

    n_fft, hop = int(logmel["n_fft"]), int(logmel["hop_length"])
    frames = stft_frames(window_samples, n_fft, hop, center=False)
    return frames * hop, n_fft // 2


def _front_end_settings(model, info: TaggerMetadata | None) -> dict | None:
    """The log-mel settings of a model's front end: its info's, else its
    `log_mel` layer's (None for a waveform model without one)."""
    if info is not None and info.logmel:
        return dict(info.logmel)
    if model is None:  # the info alone: a front end it does not name is none
        return None
    try:
        return model.get_layer("log_mel").get_config()
    except ValueError:
        return None


def tag_names_of(model, info) -> tuple[list[str], str | None]:
    """(tag names, warning or None): the names of `info` (the model's
    TaggerMetadata, or None), or tag_0..tag_{n-1}."""
    count = int(model.outputs[0].shape[-1])
    names = list(info.tag_names) if info else []
    if len(names) == count:
        return [str(name) for name in names], None
    fallback = [f"tag_{i}" for i in range(count)]
    if not names:
        return fallback, (f"the model carries no tag names (not saved by train.py); "
                          f"using tag_0..tag_{count - 1}")
    return fallback, (f"the model names {len(names)} tags but predicts {count}; "
                      f"using tag_0..tag_{count - 1}")
