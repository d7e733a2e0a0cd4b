"""Whether a saved tagger fits a dataset's records: its tags (the same,
or the same in another order), sample rate, segment length, features and
log-mel settings, and a window of whole segments. A mismatch is one
UserError saying which, and the build flags that make records it reads.
Here records meet models: the checks read a `DatasetInfo` and a model's
`TaggerMetadata`.
"""

from __future__ import annotations

import dataclasses

from tagger.errors import UserError
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records.info import DatasetInfo


def window_segments_for(model, model_info: TaggerMetadata | None, dataset_info: DatasetInfo,
                        reorder: bool = False) -> int:
    """The number of segments per window for which `model` fits the dataset;
    a mismatch in tags or input shape is a UserError saying which (with
    `reorder`, the dataset's tags in another order are not one:
    `tag_order`)."""
    check_tags(model, model_info, dataset_info, reorder)
    check_audio_settings(model_info, dataset_info)
    input_shape = tuple(model.inputs[0].shape[1:])
    segment = tuple(dataset_info.segment_shape)
    if len(input_shape) != len(segment) or input_shape[1:] != segment[1:] \
            or input_shape[0] is None or input_shape[0] % segment[0]:
        raise UserError(f"the model takes inputs of shape {input_shape} but the dataset "
                        f"holds {dataset_info.features['kind']} segments of shape "
                        f"{segment}; use a dataset built with the model's features and "
                        "segment length")
    return input_shape[0] // segment[0]


def check_tags(model, model_info: TaggerMetadata | None, dataset_info: DatasetInfo,
               reorder: bool = False) -> None:
    """A UserError unless `model` predicts the dataset's tags (in another
    order too, with `reorder`: `tag_order`)."""
    num_tags = model.outputs[0].shape[-1]
    if num_tags != dataset_info.num_tags:
        raise UserError(f"the model predicts {num_tags} tags but the dataset has "
                        f"{dataset_info.num_tags}; evaluate it on the dataset it was "
                        "trained for")
    tag_order(model_info, dataset_info, reorder)


def tag_order(model_info: TaggerMetadata | None, dataset_info: DatasetInfo,
              reorder: bool = False) -> list | None:
    """None when the model's tags are the dataset's in its order (or the
    model names none). With `reorder`, for the same tags in another order,
    the model's output index of each of the dataset's tags. Otherwise a
    UserError saying how they differ and what to do."""
    ours = list(model_info.tag_names) if model_info else []
    theirs = [str(t) for t in dataset_info.tag_names]
    if not ours or ours == theirs:
        return None
    if sorted(ours) == sorted(theirs):
        if reorder:
            return [ours.index(tag) for tag in theirs]
        at = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
        raise UserError(f"the model's tag names differ from the dataset's in order only "
                        f"(output {at} is {ours[at]!r}, the dataset's tag {at} {theirs[at]!r});"
                        " reorder the outputs with convert_weights.py --tag-order "
                        "dataset_info.json, or use the dataset it was trained for")
    foreign = [tag for tag in ours if tag not in theirs]
    shown = ", ".join(repr(tag) for tag in foreign[:4]) + (" ..." if len(foreign) > 4 else "")
    synthetic = ""
    if dataset_info.origin.get("kind") == "synthetic":
        synthetic = " (these are records of the synthetic dataset, whose tags are its own)"
    raise UserError(f"the model's tag names differ from the dataset's: {len(foreign)} of its "
                    f"{len(ours)} are not among the dataset's tags ({shown}){synthetic}; "
                    f"evaluate it on records of the dataset it was trained on"
                    f"{_build_hint(model_info)}")


def _build_hint(model_info: TaggerMetadata | None) -> str:
    """The build_mtt.py flags that make records a model reads, as a hint."""
    from tagger.config import AudioConfig

    if model_info is None:
        return ""
    default = AudioConfig()
    flags = [f"--{name.replace('_', '-')} {getattr(model_info, name)}"
             for name in ("sample_rate", "segment_length")
             if getattr(model_info, name) != getattr(default, name)]
    if model_info.input_kind == "logmel":
        flags.append("--features logmel")
    return f", built with build_mtt.py {' '.join(flags)}" if flags else ""


# LogMelConfig fields that build_mtt.py sets with a flag of the same name
_LOGMEL_BUILD_FLAGS = ("n_mels", "n_fft", "hop_length", "f_min", "f_max", "top_db")


def _logmel(settings: dict | None):
    """Log-mel settings as a LogMelConfig (files written before a field
    existed get its default), None for none."""
    from tagger.config import LogMelConfig

    return None if settings is None else LogMelConfig(**settings)


def check_audio_settings(model_info: TaggerMetadata | None, dataset_info: DatasetInfo) -> None:
    """A UserError naming every audio setting (sample rate, segment length,
    feature kind, log-mel parameters) in which a saved model and a dataset
    differ; models saved without info are not checked."""
    if not model_info:
        return
    features = dataset_info.features
    differences, rebuild = [], []
    for key, label, flag in (("sample_rate", "sample rate", "--sample-rate"),
                             ("segment_length", "segment length", "--segment-length")):
        if getattr(model_info, key) != getattr(dataset_info, key):
            differences.append(f"{label} {getattr(model_info, key)} (the dataset has "
                               f"{getattr(dataset_info, key)})")
            rebuild.append(f"{flag} {getattr(model_info, key)}")
    kind = model_info.input_kind
    if kind != features["kind"]:
        differences.append(f"{kind} input (the dataset holds {features['kind']} records)")
        rebuild.append(f"--features {kind}")
    elif kind == "logmel":
        ours, theirs = _logmel(model_info.logmel), _logmel(features.get("logmel"))
        if ours is None or theirs is None:
            if ours != theirs:
                differences.append(f"log-mel features {model_info.logmel} (the "
                                   f"dataset has {features.get('logmel')})")
                rebuild.append("the model's log-mel flags")
        else:
            for field in dataclasses.fields(ours):
                mine, other = getattr(ours, field.name), getattr(theirs, field.name)
                if mine != other:
                    differences.append(f"log-mel features with {field.name} {mine!r} (the "
                                       f"dataset has {other!r})")
                    flag = f"--{field.name.replace('_', '-')}"
                    rebuild.append(f"its log-mel {field.name}"
                                   if field.name not in _LOGMEL_BUILD_FLAGS
                                   else f"no {flag}" if mine is None else f"{flag} {mine:g}")
    if differences:
        raise UserError(f"the model was trained with {'; '.join(differences)}; use a "
                        f"dataset built with its settings (build_mtt.py {', '.join(rebuild)})")
