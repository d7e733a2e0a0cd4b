"""From a dataset description and a TrainConfig to a model that fits the data."""

from __future__ import annotations

import dataclasses

from tagger.config import AudioConfig, LogMelConfig, TrainConfig
from tagger.errors import UserError
from tagger.models import build_model, family
from tagger.models.family_spec import FamilySpec
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records.info import DatasetInfo


def family_spec(model: str) -> FamilySpec:
    """The registry's spec of `model`; an unknown name is a UserError (the
    registry's UnknownName) listing the valid names."""
    return family(model)


def window_segments(config: TrainConfig, info: DatasetInfo) -> int:
    k = config.window_segments or family_spec(config.model).window_segments
    if k < 1:
        raise UserError(f"--window-segments must be at least 1, got {k}")
    return k


def model_arguments(config: TrainConfig, info: DatasetInfo, window: int) -> dict:
    """Keyword arguments for the family's factory; the input comes from the data."""
    spec = family_spec(config.model)
    kind = info.features["kind"]
    args = dict(config.model_args)
    args["num_tags"] = info.num_tags
    if spec.raw_waveform:
        if kind != "raw":
            raise UserError(f"model {config.model!r} reads raw waveforms but "
                            f"{config.data_dir!r} holds {kind} records; build the "
                            "dataset with --features raw")
        args["input_length"] = window * info.segment_length
        return args
    if info.segment_length != spec.segment_length:
        rate = (f" --sample-rate {spec.sample_rate}"
                if spec.sample_rate != AudioConfig.sample_rate else "")
        raise UserError(f"model {config.model!r} reads {spec.segment_length}-sample "
                        f"segments but the dataset has {info.segment_length}; rebuild "
                        f"it with --segment-length {spec.segment_length}{rate}")
    args.update(input_kind=kind, segments=window, sample_rate=info.sample_rate)
    if kind == "logmel":
        args["logmel"] = LogMelConfig(**info.features["logmel"])
    return args


def build(config: TrainConfig, info: DatasetInfo, window: int):
    try:
        return build_model(config.model, **model_arguments(config, info, window))
    except (ValueError, TypeError) as error:
        raise UserError(f"cannot build {config.model!r} for this dataset: {error}") from None


def model_info(config: TrainConfig, info: DatasetInfo, window: int) -> TaggerMetadata:
    """What a saved model needs to know about its input and its tags."""
    features = info.features
    spec = family_spec(config.model)
    logmel = features.get("logmel")
    if features["kind"] == "raw" and not spec.raw_waveform:
        logmel = dataclasses.asdict(spec.logmel)  # the in-graph front end's
    return TaggerMetadata(
        model=config.model, model_args=dict(config.model_args), tag_names=info.tag_names,
        sample_rate=info.sample_rate, segment_length=info.segment_length,
        window_segments=window, input_kind=features["kind"], logmel=logmel,
        origin=dict(info.origin))  # what the training data was
