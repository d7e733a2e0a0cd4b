"""Won et al. 2020's HarmonicCNN in PyTorch, written from the facts of
minzwon/sota-music-tagging-models `training/model.py` (HarmonicCNN) and
`training/modules.py` (HarmonicSTFT and its filter-bank helpers, Conv_2d,
Res_2d_mp), with the release's state-dict keys; `n_channels` (128 in the
release) narrows it for fast tests.

HarmonicSTFT stores `hstft.spec.window` (torchaudio's Spectrogram) and the
parameter `hstft.bw_Q`; its centre frequencies are a plain attribute.
Res_2d_mp has the keys and computation of `originals.Res2DMaxPoolModule`
with equal channels (no conv_3).

Only imported by test modules that have already skipped when torch is missing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tests.convert.originals import Conv2dBlock, Res2DMaxPoolModule, amplitude_to_db
from tests.convert.originals import _Spectrogram as Spectrogram


def harmonic_centres(sample_rate, n_harmonic, semitone_scale):
    """modules.py initialize_filterbank: from librosa's note_to_midi('C1')
    = 24 to the note (rounded MIDI number) of sample_rate / (2 n_harmonic),
    `semitone_scale` steps a semitone, the last left out; the harmonics
    stacked harmonic-major."""
    low = 24
    high = int(np.round(12 * (np.log2(sample_rate / (2 * n_harmonic)) - np.log2(440.0)) + 69))
    level = (high - low) * semitone_scale
    midi = np.linspace(low, high, level + 1)
    hz = 440.0 * 2.0 ** ((midi[:-1] - 69.0) / 12.0)
    harmonic_hz = np.concatenate([hz * (i + 1) for i in range(n_harmonic)])
    return harmonic_hz, level


class HarmonicSTFT(nn.Module):
    """modules.py HarmonicSTFT with learn_bw='only_Q': (b, samples) -> (b,
    n_harmonic, level, frames) in dB."""

    def __init__(self, sample_rate=16000, n_fft=512, n_harmonic=6, semitone_scale=2,
                 bw_q=1.0):
        super().__init__()
        self.sample_rate, self.n_harmonic = sample_rate, n_harmonic
        self.spec = Spectrogram(n_fft, n_fft // 2, 2.0)  # hop: win_length // 2
        harmonic_hz, self.level = harmonic_centres(sample_rate, n_harmonic, semitone_scale)
        self.f0 = torch.tensor(harmonic_hz.astype("float32"))  # not a buffer
        self.bw_Q = nn.Parameter(torch.tensor(np.array([bw_q]).astype("float32")))

    def forward(self, waveform):
        spectrogram = self.spec(waveform)  # (b, bins, frames)
        fft_bins = torch.linspace(0, self.sample_rate // 2, spectrogram.size(1)).unsqueeze(1)
        bw = ((0.1079 * self.f0 + 24.7) / self.bw_Q).unsqueeze(0)  # (1, bands)
        f0 = self.f0.unsqueeze(0)
        up_slope = torch.matmul(fft_bins, 2 / bw) + 1 - (2 * f0 / bw)
        down_slope = torch.matmul(fft_bins, -2 / bw) + 1 + (2 * f0 / bw)
        fb = torch.max(torch.zeros(1), torch.min(down_slope, up_slope))  # (bins, bands)
        bands = torch.matmul(spectrogram.transpose(1, 2), fb).transpose(1, 2)
        b, _, frames = bands.size()
        return amplitude_to_db(bands.view(b, self.n_harmonic, self.level, frames))


class HarmonicCNN(nn.Module):
    """model.py HarmonicCNN: blocks Conv_2d, Res_2d_mp x 3, Conv_2d,
    Res_2d_mp x 2 (pool (2, 3) in the last two), max over the frames left,
    dense1 -> bn -> ReLU -> dropout -> dense2 -> sigmoid. Input (b, 80000)."""

    def __init__(self, n_channels=128, n_class=50, n_harmonic=6, semitone_scale=2,
                 bw_q=1.0):
        super().__init__()
        self.hstft = HarmonicSTFT(16000, 512, n_harmonic, semitone_scale, bw_q)
        self.hstft_bn = nn.BatchNorm2d(n_harmonic)
        c = n_channels
        self.layer1 = Conv2dBlock(n_harmonic, c, pooling=2)
        self.layer2 = Res2DMaxPoolModule(c, c, pooling=2)
        self.layer3 = Res2DMaxPoolModule(c, c, pooling=2)
        self.layer4 = Res2DMaxPoolModule(c, c, pooling=2)
        self.layer5 = Conv2dBlock(c, 2 * c, pooling=2)
        self.layer6 = Res2DMaxPoolModule(2 * c, 2 * c, pooling=(2, 3))
        self.layer7 = Res2DMaxPoolModule(2 * c, 2 * c, pooling=(2, 3))
        self.dense1 = nn.Linear(2 * c, 2 * c)
        self.bn = nn.BatchNorm1d(2 * c)
        self.dense2 = nn.Linear(2 * c, n_class)
        self.dropout = nn.Dropout(0.5)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.hstft_bn(self.hstft(x))
        for i in range(1, 8):
            x = getattr(self, f"layer{i}")(x)
        x = x.squeeze(2)  # (b, C, frames): one fundamental row left
        if x.size(-1) != 1:
            x = nn.MaxPool1d(x.size(-1))(x)
        x = x.squeeze(2)
        x = self.dropout(self.relu(self.bn(self.dense1(x))))
        return torch.sigmoid(self.dense2(x))
