"""From a dataset description and a TrainConfig to a model that fits the data."""

from __future__ import annotations

from tagger.config import TrainConfig
from tagger.errors import UserError
from tagger.models import MODELS, build_model

# Segments joined into one input window, per family (sample-level CNN: 1).
DEFAULT_WINDOW_SEGMENTS = {"samplecnn": 1}
RAW_ONLY = {"samplecnn"}


def window_segments(config: TrainConfig, info: dict) -> int:
    if config.model not in MODELS:
        raise UserError(f"unknown model {config.model!r}; valid models: "
                        f"{', '.join(sorted(MODELS))}")
    k = config.window_segments or DEFAULT_WINDOW_SEGMENTS.get(config.model, 1)
    if k < 1:
        raise UserError(f"--window-segments must be at least 1, got {k}")
    return k


def model_arguments(config: TrainConfig, info: dict, window: int) -> dict:
    """Keyword arguments for the family's factory, input shape from the data."""
    kind = info["features"]["kind"]
    if config.model in RAW_ONLY and kind != "raw":
        raise UserError(f"model {config.model!r} reads raw waveforms but "
                        f"{config.data_dir!r} holds {kind} records; build the dataset "
                        "with --features raw")
    args = dict(config.model_args)
    args["num_tags"] = info["num_tags"]
    args["input_length"] = window * info["segment_length"]
    return args


def build(config: TrainConfig, info: dict, window: int):
    try:
        return build_model(config.model, **model_arguments(config, info, window))
    except (ValueError, TypeError) as error:
        raise UserError(f"cannot build {config.model!r} for this dataset: {error}") from None


def model_info(config: TrainConfig, info: dict, window: int) -> dict:
    """What a saved model needs to know about its input and its tags."""
    features = info["features"]
    return {
        "model": config.model,
        "model_args": dict(config.model_args),
        "tag_names": list(info["tag_names"]),
        "sample_rate": info["sample_rate"],
        "segment_length": info["segment_length"],
        "window_segments": window,
        "input_kind": features["kind"],
        "logmel": features.get("logmel"),
    }
