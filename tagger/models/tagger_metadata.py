"""What a saved tagger knows about itself: the one description of its tags
and input that every user of a model reads (`tagger.models.saved` writes
and reads it beside the layer graph)."""

from __future__ import annotations

import dataclasses

from tagger.strict_json import read_dataclass

SCHEMA_VERSION = 1  # files without a schema_version key are version 1


@dataclasses.dataclass(frozen=True)
class TaggerMetadata:
    """A saved tagger's metadata.

    `model` and `model_args` name the family and its factory's arguments;
    the model reads windows of `window_segments` segments of
    `segment_length` mono samples at `sample_rate` Hz, as raw samples or
    log-mel frames (`input_kind`; `logmel`: the LogMelConfig fields of its
    front end, or None) and scores `tag_names` in output order. `origin`
    (the training data's, for a trained model), `converted_from`, `dataset`,
    `licence` and `size` (for a converted release) and `base_model` (for a
    tagger trained on another's body, train.py --from: that model, its
    embedding layer, the head and whether it was fine-tuned) are None where
    they do not apply.
    """

    model: str
    model_args: dict
    tag_names: tuple
    sample_rate: int
    segment_length: int
    window_segments: int
    input_kind: str
    logmel: dict | None
    origin: dict | None = None
    converted_from: dict | None = None
    dataset: str | None = None
    licence: str | None = None
    size: str | None = None
    base_model: dict | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        object.__setattr__(self, "tag_names", tuple(str(t) for t in self.tag_names))

    def to_json(self) -> dict:
        """The JSON-ready dict saved in a model file (fields that do not
        apply are left out)."""
        data = dataclasses.asdict(self)
        data["tag_names"] = list(self.tag_names)
        return {key: value for key, value in data.items()
                if value is not None or key not in _OPTIONAL}

    @classmethod
    def from_json(cls, data: dict, path: str) -> TaggerMetadata:
        """The metadata of a dict read from the file `path`; a missing field
        or a newer schema is a UserError."""
        return read_dataclass(cls, data, f"the tagger info of {path!r}", "save the model "
                              "again with this version of train.py or convert_weights.py",
                              SCHEMA_VERSION)


# left out when None
_OPTIONAL = ("origin", "converted_from", "dataset", "licence", "size", "base_model")
