"""The three transforms of torchaudio that the peer models of
bench_peer.py build (`transforms.MelSpectrogram`, `Spectrogram`,
`AmplitudeToDB`), in torch, for a machine where torchaudio is not
installed: the same computation (torch.stft of a periodic Hann window,
centred with reflect padding; an HTK mel matrix without norm; 10 log10 of
the power, floored at 1e-10), so the peer's step does the work it does with
torchaudio.

`install()` puts this module in `sys.modules` as `torchaudio` when the real
one cannot be imported, and says which it is.
"""

from __future__ import annotations

import sys
import types

import torch
from torch import nn

from tagger.layers.mel_filters import mel_filter_bank


class Spectrogram(nn.Module):
    """(..., samples) -> (..., 1 + n_fft // 2, frames): |STFT| ** power."""

    def __init__(self, n_fft=400, win_length=None, hop_length=None, pad=0,
                 window_fn=torch.hann_window, power=2.0, normalized=False, wkwargs=None,
                 center=True, pad_mode="reflect", onesided=True):
        super().__init__()
        self.n_fft, self.win_length = n_fft, win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.pad, self.power, self.normalized = pad, power, normalized
        self.center, self.pad_mode, self.onesided = center, pad_mode, onesided
        self.register_buffer("window", window_fn(self.win_length, **(wkwargs or {})))

    def forward(self, waveform):
        if self.pad:
            waveform = nn.functional.pad(waveform, (self.pad, self.pad))
        shape = waveform.shape
        frames = torch.stft(waveform.reshape(-1, shape[-1]), self.n_fft, self.hop_length,
                            self.win_length, self.window, center=self.center,
                            pad_mode=self.pad_mode, normalized=self.normalized,
                            onesided=self.onesided, return_complex=True)
        frames = frames.abs().pow(self.power) if self.power is not None else frames
        return frames.reshape(*shape[:-1], *frames.shape[-2:])


class MelSpectrogram(nn.Module):
    """(..., samples) -> (..., n_mels, frames): the power spectrogram times
    an HTK mel matrix (tagger.layers.mel_filters)."""

    def __init__(self, sample_rate=16000, n_fft=400, win_length=None, hop_length=None,
                 f_min=0.0, f_max=None, pad=0, n_mels=128, window_fn=torch.hann_window,
                 power=2.0, normalized=False, wkwargs=None, center=True, pad_mode="reflect",
                 onesided=True, norm=None, mel_scale="htk"):
        super().__init__()
        self.spectrogram = Spectrogram(n_fft, win_length, hop_length, pad, window_fn, power,
                                       normalized, wkwargs, center, pad_mode, onesided)
        bank = mel_filter_bank(sample_rate, n_fft, n_mels, f_min, f_max, mel_scale, norm)
        self.register_buffer("mel_bank", torch.from_numpy(bank))  # (bins, n_mels)

    def forward(self, waveform):
        power = self.spectrogram(waveform)
        return torch.matmul(power.transpose(-1, -2), self.mel_bank).transpose(-1, -2)


class AmplitudeToDB(nn.Module):
    """10 log10(max(x, 1e-10)) of a power (20 of an amplitude), no top_db."""

    def __init__(self, stype="power", top_db=None):
        super().__init__()
        self.multiplier = 10.0 if stype == "power" else 20.0
        self.top_db = top_db

    def forward(self, x):
        db = self.multiplier * torch.log10(torch.clamp(x, min=1e-10))
        if self.top_db is not None:
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - self.top_db)
        return db


def install() -> str:
    """Makes `import torchaudio` work: the real package if it imports, else
    this module's transforms under that name; returns which, in words."""
    try:
        import torchaudio  # noqa: F401
        return f"torchaudio {torchaudio.__version__}"
    except ImportError:
        pass
    package = types.ModuleType("torchaudio")
    package.transforms = types.ModuleType("torchaudio.transforms")
    for transform in (Spectrogram, MelSpectrogram, AmplitudeToDB):
        setattr(package.transforms, transform.__name__, transform)
    package.__version__ = "stand-in"
    sys.modules["torchaudio"] = package
    sys.modules["torchaudio.transforms"] = package.transforms
    return ("torchaudio not installed: its Spectrogram, MelSpectrogram and AmplitudeToDB "
            "from bench/torchaudio_standin.py (torch.stft and a mel matrix)")
