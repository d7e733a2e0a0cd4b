"""The frozen configuration of export.py."""

from __future__ import annotations

import dataclasses

from tagger.errors import UserError, flags_do_not_apply

EXPORT_FORMATS = ("saved_model", "tflite")
EXPORT_QUANTIZATIONS = ("fp16", "dynamic", "int8")  # TFLite only; see formats.tflite_bytes


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What `tagger.inference.export.formats.export` does; see export.py."""

    model: str
    format: str = "saved_model"
    out: str | None = None  # None: beside the model, see export.default_out
    overwrite: bool = False
    verify: bool = True
    quantization: str | None = None  # None: float32
    calibration_audio: tuple = ()  # files or folders (searched recursively), int8 only
    max_score_difference: float | None = None  # None: export.MAX_SCORE_DIFFERENCE's bound

    def __post_init__(self):
        if self.max_score_difference is not None and not self.max_score_difference > 0:
            raise UserError(f"--max-score-difference must be above 0, "
                            f"got {self.max_score_difference}")
        if self.max_score_difference is not None and not self.verify:
            raise flags_do_not_apply(["--max-score-difference"], "to a verified export",
                                     "--no-verify skips the check", "drop --no-verify")
        if self.format not in EXPORT_FORMATS:
            raise UserError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, "
                            f"got {self.format!r}")
        if self.quantization is not None:
            if self.quantization not in EXPORT_QUANTIZATIONS:
                raise UserError(f"--quantization must be one of "
                                f"{', '.join(EXPORT_QUANTIZATIONS)}, got {self.quantization!r}")
            if self.format != "tflite":
                raise flags_do_not_apply(["--quantization"], "to --format tflite",
                                         "a SavedModel keeps the float32 weights")
        if self.quantization == "int8" and not self.calibration_audio:
            raise UserError("--quantization int8 measures each layer's range on real audio: "
                            "add --calibration-audio with files or folders like the audio "
                            "the model will tag")
        if self.calibration_audio and self.quantization != "int8":
            raise UserError("--calibration-audio goes with --quantization int8 only; leave "
                            "it out or add --quantization int8")
