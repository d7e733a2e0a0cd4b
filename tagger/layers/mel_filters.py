"""Mel filter banks of librosa and torchaudio, for reproducing their features.

`keras.layers.MelSpectrogram` builds its triangles in the mel domain (the
TensorFlow convention). The originals whose weights we load computed their
features with librosa (Slaney mel scale, Slaney area normalisation) or
torchaudio (HTK mel scale, no normalisation), both of which build the
triangles linearly in Hz between mel-spaced corner frequencies. This module
gives those matrices, so a model whose weights were trained on such
features sees the same input here. Facts from librosa `filters.mel` and
torchaudio `functional.melscale_fbanks`.
"""

from __future__ import annotations

import numpy as np

MEL_SCALES = ("keras", "htk", "slaney")  # "keras": keras.layers.MelSpectrogram's own
MEL_NORMS = (None, "slaney")

_F_SP = 200.0 / 3  # Slaney scale: linear part, Hz per mel
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(freq, scale: str):
    freq = np.asarray(freq, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + freq / 700.0)
    mel = freq / _F_SP
    log_part = _MIN_LOG_MEL + np.log(np.maximum(freq, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(freq >= _MIN_LOG_HZ, log_part, mel)


def mel_to_hz(mel, scale: str):
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    freq = _F_SP * mel
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log_part, freq)


def mel_filter_bank(sample_rate: int, n_fft: int, n_mels: int, f_min: float,
                    f_max: float | None, scale: str = "htk",
                    norm: str | None = None) -> np.ndarray:
    """`(1 + n_fft // 2, n_mels)` float32 matrix: power spectrum -> mel.

    Corner frequencies are `n_mels + 2` points equally spaced on `scale`
    ("htk" or "slaney") between f_min and f_max (default: Nyquist); filter
    m rises linearly in Hz from corner m to m + 1 and falls to m + 2.
    `norm="slaney"` divides each filter by half its width in Hz (equal
    area), None leaves peaks at 1.
    """
    if scale not in ("htk", "slaney"):
        raise ValueError(f"mel scale must be 'htk' or 'slaney', got {scale!r}")
    if norm not in MEL_NORMS:
        raise ValueError(f"mel norm must be one of {MEL_NORMS}, got {norm!r}")
    f_max = sample_rate / 2.0 if f_max is None else float(f_max)
    bins = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    corners = mel_to_hz(np.linspace(hz_to_mel(f_min, scale), hz_to_mel(f_max, scale),
                                    n_mels + 2), scale)
    widths = np.diff(corners)
    slopes = corners[None, :] - bins[:, None]  # (bins, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    bank = np.maximum(0.0, np.minimum(rising, falling))  # (bins, n_mels)
    if norm == "slaney":
        bank *= 2.0 / (corners[2:n_mels + 2] - corners[:n_mels])
    return bank.astype(np.float32)
