"""int8 calibration, shared by the TFLite export (export.py --quantization
int8) and the TFLite engine of tag.py (--engine tflite-int8): which models
int8 activations serve, and the windows of real audio their ranges are
measured on."""

from __future__ import annotations

import numpy as np

CALIBRATION_WINDOWS = 32  # windows the int8 engine measures its ranges on


def int8_waveform_only(option: str, instead: str) -> str:
    """Why `option` (int8 activations) refuses a model that is not a
    waveform model, and `instead`, the options to use."""
    return (f"{option} is for models that read the waveform (the sample-level CNN): with "
            "int8 log-mel frames and attention, scores move by up to 0.16; use "
            f"{instead} for this model")


INT8_WAVEFORM_ONLY = int8_waveform_only("--engine tflite-int8",
                                        "--engine tflite or tflite-dynamic")


def check_int8_model(model, info: dict | None,
                     refusal: str = INT8_WAVEFORM_ONLY) -> None:
    """Raises ValueError(refusal) unless int8 activations serve `model`: its
    family's `FamilySpec.int8` when `info` names the family; otherwise a
    model that reads waveforms, (batch, samples), with no log-mel front end
    inside (a spectrogram family given raw audio computes one)."""
    from tagger.models import FAMILY_NAMES, family

    name = (info or {}).get("model")
    if name in FAMILY_NAMES:
        serves = family(name).int8
    else:
        serves = (len(model.inputs[0].shape) == 2
                  and not any(layer.name == "log_mel" for layer in model.layers))
    if not serves:
        raise ValueError(refusal)


def int8_calibration(model, info: dict | None, paths, sample_rate: int, window: int,
                     refusal: str = INT8_WAVEFORM_ONLY) -> np.ndarray:
    """`calibration_windows` of `paths` for `model`, after `check_int8_model`
    (so a model int8 does not serve is refused before anything is decoded);
    (0, window) when no file decodes: the caller says what to do."""
    check_int8_model(model, info, refusal)
    return calibration_windows(paths, sample_rate, window)


def calibration_windows(paths, sample_rate: int, window: int,
                        limit: int = CALIBRATION_WINDOWS) -> np.ndarray:
    """Up to `limit` windows (n, window) float32 for int8 calibration, drawn
    from the files in order, `ceil(limit / len(paths))` per file at most,
    spread over each file (a seeded reservoir sample, so a rerun draws the
    same ones). Files that cannot be decoded are passed over."""
    from tagger.audio import AudioDecodeError, audio_windows

    per_file = max(1, -(-limit // max(1, len(paths))))
    rng = np.random.default_rng(0)
    chosen = []
    for path in paths:
        reservoir = []
        try:
            for seen, (_, samples) in enumerate(audio_windows(path, sample_rate, window)):
                if seen < per_file:
                    reservoir.append(samples)
                elif (slot := rng.integers(0, seen + 1)) < per_file:
                    reservoir[slot] = samples
        except AudioDecodeError:
            continue
        chosen.extend(reservoir[:limit - len(chosen)])
        if len(chosen) >= limit:
            break
    return np.stack(chosen).astype(np.float32) if chosen else np.zeros((0, window), np.float32)
