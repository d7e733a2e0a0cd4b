"""int8 calibration, shared by the TFLite export (export.py --quantization
int8) and the TFLite engine of tag.py (--engine tflite-int8): what int8
quantises in a model, and the windows of real audio its ranges are
measured on."""

from __future__ import annotations

import numpy as np

from tagger.models.tagger_metadata import TaggerMetadata

CALIBRATION_WINDOWS = 32  # windows the int8 engine measures its ranges on

# What int8 quantises (`int8_scope`): every op with an int8 kernel, or the
# convolutions that read the log-mel image only, the front end and the rest
# kept float32.
FULL, FRONT_END = "full", "front_end"


def int8_scope(model, info: TaggerMetadata | None) -> str:
    """FULL for a model whose family says int8 keeps its scores throughout
    (`FamilySpec.int8`: the sample-level CNN) or, without a family, a model
    that reads waveforms with no log-mel front end inside; FRONT_END
    otherwise (`formats.tflite_bytes`): only the convolutions of one input
    channel over the log-mel image (the ones `models.inference_graph`
    computes as stacked taps or in polyphase form, `image_convolutions`:
    musicnn's timbral and temporal filters, 95% of its FLOPs; VGG's first
    convolution, not the four after it). Further in, int8 moved
    MTT_musicnn's scores too far on real recordings: its mid-end
    convolutions read 561 channels of different ranges through one int8
    scale (top-5 agreement with float 0.94 per window against 0.99,
    docs/performance.md, "int8 for log-mel taggers"); quantising the
    log-mel frames themselves moved
    them by whole steps of the int8 grid, and the scores of the
    self-attention tagger by up to 0.16. A tagger on several bodies
    (train.py --from A --from B) is FULL only where every body's family
    says so; a body whose family its metadata does not name counts as not."""
    from tagger.models import FAMILY_NAMES, family

    name = info.model if info else None
    if name in FAMILY_NAMES:
        others = ((info.base_model or {}).get("also") or [])
        names = [name, *(other.get("model") for other in others)]
        full = all(n in FAMILY_NAMES and family(n).int8 for n in names)
        return FULL if full else FRONT_END
    waveform = (len(model.inputs[0].shape) == 2
                and not any(layer.name == "log_mel" for layer in model.layers))
    return FULL if waveform else FRONT_END


NOTHING_QUANTISED = ("int8 found nothing to quantise in this model (it quantises the whole "
                     "sample-level CNN, and of other models the convolutions of one input "
                     "channel over a log-mel image only)")


def int8_weights(interpreter) -> int:
    """How many tensors of the interpreter's model hold int8 values."""
    return sum(t["dtype"] == np.int8 for t in interpreter.get_tensor_details())


# Calibration audio that cannot set ranges is refused: a set whose loudest
# sample is below this (-80 dBFS) is silence, and one in which no file fills
# a single window measures the ranges on zero padding.
SILENCE_PEAK = 1e-4


def calibration_windows(paths, sample_rate: int, window: int,
                        limit: int = CALIBRATION_WINDOWS) -> np.ndarray:
    """Up to `limit` windows (n, window) float32 for int8 calibration, drawn
    from the files in order, `ceil(limit / len(paths))` per file at most:
    those `tag.py --windows` would score (`window_choice`: spread over the
    file), read by seeking, so a file
    costs a few windows' decoding, and a rerun draws the same ones. Files
    that cannot be decoded are passed over; (0, window) when none decodes.
    ValueError (one line) for audio that cannot set ranges: a file holding
    NaN or Inf samples, windows that are all silence (peak below
    SILENCE_PEAK), or files all shorter than one window."""
    from tagger.audio import AudioDecodeError, NonFiniteAudioError, WindowStream
    from tagger.inference.window_choice import read_chosen

    per_file = max(1, -(-limit // max(1, len(paths))))
    chosen = []
    full = False  # some file fills a whole window
    for path in paths:
        stream = WindowStream(read_chosen(path, sample_rate, window, window, 0, per_file))
        try:
            windows = [samples for _, samples in stream]
        except NonFiniteAudioError:
            raise ValueError(f"calibration audio {str(path)!r} holds NaN or Inf samples; "
                             "int8 ranges cannot be measured on them: remove the file or "
                             "name other audio") from None
        except AudioDecodeError:
            continue
        full = full or stream.total.length >= window  # total: read_chosen's Chosen
        chosen.extend(windows[:limit - len(chosen)])
        if len(chosen) >= limit:
            break
    if not chosen:
        return np.zeros((0, window), np.float32)
    stacked = np.stack(chosen).astype(np.float32)
    seconds = window / sample_rate
    if not full:
        raise ValueError(f"calibration audio is too short: every file is shorter than one "
                         f"window ({window} samples, {seconds:.2f} s), so int8 ranges would be "
                         "measured on zero padding; name longer audio like what the model "
                         "will tag")
    peak = float(np.max(np.abs(stacked)))
    if peak < SILENCE_PEAK:
        raise ValueError(f"calibration audio is silent (loudest sample {peak:.1g}, below "
                         f"{SILENCE_PEAK:g}): int8 ranges cannot be measured on silence; "
                         "name audio like what the model will tag")
    return stacked

