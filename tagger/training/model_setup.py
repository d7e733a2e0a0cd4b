"""From a dataset description and a TrainConfig to a model that fits the data."""

from __future__ import annotations

import dataclasses

from tagger.config import LogMelConfig, TrainConfig
from tagger.errors import UserError
from tagger.models import MODELS, build_model


@dataclasses.dataclass(frozen=True)
class FamilyDefaults:
    window_segments: int  # 59049-sample segments joined into one input window
    schedule: str  # "staged" (Kim 2018) or "won" (Won 2019)
    logmel: LogMelConfig | None  # the in-graph front end of raw input; None: raw model


def family_defaults(model: str) -> FamilyDefaults:
    from tagger.models import multiscale, self_attention, transformer

    table = {
        "samplecnn": FamilyDefaults(1, "staged", None),
        "multiscale": FamilyDefaults(multiscale.SEGMENTS, "won", multiscale.LOGMEL),
        "self_attention": FamilyDefaults(self_attention.SEGMENTS, "won",
                                         self_attention.LOGMEL),
        "transformer": FamilyDefaults(transformer.SEGMENTS, "won", transformer.LOGMEL),
    }
    if model not in table:
        raise UserError(f"unknown model {model!r}; valid models: "
                        f"{', '.join(sorted(MODELS))}")
    return table[model]


def window_segments(config: TrainConfig, info: dict) -> int:
    k = config.window_segments or family_defaults(config.model).window_segments
    if k < 1:
        raise UserError(f"--window-segments must be at least 1, got {k}")
    return k


def model_arguments(config: TrainConfig, info: dict, window: int) -> dict:
    """Keyword arguments for the family's factory; the input comes from the data."""
    defaults = family_defaults(config.model)
    kind = info["features"]["kind"]
    args = dict(config.model_args)
    args["num_tags"] = info["num_tags"]
    if defaults.logmel is None:  # a raw-waveform model
        if kind != "raw":
            raise UserError(f"model {config.model!r} reads raw waveforms but "
                            f"{config.data_dir!r} holds {kind} records; build the "
                            "dataset with --features raw")
        args["input_length"] = window * info["segment_length"]
        return args
    from tagger.models.spectrogram_input import SEGMENT_LENGTH

    if info["segment_length"] != SEGMENT_LENGTH:
        raise UserError(f"model {config.model!r} reads {SEGMENT_LENGTH}-sample segments "
                        f"but the dataset has {info['segment_length']}; rebuild it with "
                        f"--segment-length {SEGMENT_LENGTH}")
    args.update(input_kind=kind, segments=window, sample_rate=info["sample_rate"])
    if kind == "logmel":
        args["logmel"] = LogMelConfig(**info["features"]["logmel"])
    return args


def build(config: TrainConfig, info: dict, window: int):
    try:
        return build_model(config.model, **model_arguments(config, info, window))
    except (ValueError, TypeError) as error:
        raise UserError(f"cannot build {config.model!r} for this dataset: {error}") from None


def model_info(config: TrainConfig, info: dict, window: int) -> dict:
    """What a saved model needs to know about its input and its tags."""
    features = info["features"]
    defaults = family_defaults(config.model)
    logmel = features.get("logmel")
    if features["kind"] == "raw" and defaults.logmel is not None:
        logmel = dataclasses.asdict(defaults.logmel)  # the in-graph front end's
    return {
        "model": config.model,
        "model_args": dict(config.model_args),
        "tag_names": list(info["tag_names"]),
        "sample_rate": info["sample_rate"],
        "segment_length": info["segment_length"],
        "window_segments": window,
        "input_kind": features["kind"],
        "logmel": logmel,
    }
