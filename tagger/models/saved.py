"""Loading a saved tagger and checking that it fits a dataset."""

from __future__ import annotations

from tagger import fileio
from tagger.errors import UserError

MODEL_SUFFIXES = (".keras", ".hdf5", ".h5")


def load_tagger(path: str):
    """Loads a .keras/.hdf5 model; returns (model, info dict or None).

    Missing files, other formats and models that do not end in one score per
    tag are UserErrors with one clear line.
    """
    import keras

    from tagger.layers.tagger_info import read_info
    import tagger.layers  # noqa: F401  registers the custom layers

    path = str(path)
    if not fileio.exists(path):
        raise UserError(f"model file {path!r} not found")
    if not path.endswith(MODEL_SUFFIXES):
        raise UserError(f"{path!r} is not a saved Keras model; expected a "
                        f"{' or '.join(MODEL_SUFFIXES)} file written by train.py")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"cannot load {path!r} as a Keras model: "
                        f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
                        ) from None
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise UserError(f"{path!r} is not a tagger: expected one output of shape "
                        f"(batch, tags), got {[tuple(o.shape) for o in model.outputs]}")
    return model, read_info(model)


def window_segments_for(model, model_info: dict | None, dataset_info: dict) -> int:
    """The number of segments per window for which `model` fits the dataset;
    a mismatch in tags or input shape is a UserError saying which."""
    num_tags = model.outputs[0].shape[-1]
    if num_tags != dataset_info["num_tags"]:
        raise UserError(f"the model predicts {num_tags} tags but the dataset has "
                        f"{dataset_info['num_tags']}; evaluate it on the dataset it was "
                        "trained for")
    if model_info and model_info.get("tag_names") and \
            list(model_info["tag_names"]) != list(dataset_info["tag_names"]):
        raise UserError("the model's tag names differ from the dataset's (same count, "
                        "other tags or order); evaluate it on the dataset it was trained for")
    features = dataset_info["features"]
    if model_info and model_info.get("input_kind") == "logmel" == features["kind"] \
            and model_info.get("logmel") != features.get("logmel"):
        raise UserError(f"the model was trained on log-mel features {model_info['logmel']} "
                        f"but the dataset holds {features['logmel']}; build the dataset "
                        "with the model's log-mel settings")
    input_shape = tuple(model.inputs[0].shape[1:])
    segment = tuple(dataset_info["segment_shape"])
    if len(input_shape) != len(segment) or input_shape[1:] != segment[1:] \
            or input_shape[0] is None or input_shape[0] % segment[0]:
        raise UserError(f"the model takes inputs of shape {input_shape} but the dataset "
                        f"holds {dataset_info['features']['kind']} segments of shape "
                        f"{segment}; use a dataset built with the model's features and "
                        "segment length")
    return input_shape[0] // segment[0]


def raw_audio_input(model, info: dict | None):
    """How to feed raw audio to a saved tagger.

    Returns (sample_rate, window_samples, to_model_input): windows of
    `window_samples` mono samples at `sample_rate`, shaped (batch, samples),
    go through `to_model_input` (identity for waveform models; the model's
    own `LogMel` front end for models trained on log-mel records).
    """
    input_shape = tuple(model.inputs[0].shape[1:])
    sample_rate = (info or {}).get("sample_rate", 22050)
    if len(input_shape) == 1:
        return sample_rate, int(input_shape[0]), lambda windows: windows
    if not info or not info.get("logmel"):
        raise UserError("the model takes log-mel frames and does not say how they were "
                        "computed; use a model saved by train.py")
    from tagger.layers import LogMel

    mel = info["logmel"]
    segment = info["segment_length"]
    layer = LogMel(sample_rate=sample_rate, n_fft=mel["n_fft"], hop_length=mel["hop_length"],
                   n_mels=mel["n_mels"], f_min=mel["f_min"], f_max=mel["f_max"],
                   top_db=mel["top_db"], segment_length=segment)
    window = info["window_segments"] * segment
    if layer.frames_for(window) != input_shape[0]:
        raise UserError(f"the model takes {input_shape[0]} frames but its log-mel settings "
                        f"give {layer.frames_for(window)} for {window} samples")
    return sample_rate, window, lambda windows: layer(windows)
