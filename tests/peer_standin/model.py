"""A stand-in of the original zoo's `model.py` interface for
bench/bench_peer.py's tiny run: `ShortChunkCNN(n_channels, sample_rate,
n_fft, f_min, f_max, n_mels, n_class)`, a torch module from waveforms
(batch, samples) to sigmoid scores (batch, n_class), built as the
Short-chunk CNN is described (Won et al. 2020): a log-mel front end and a
batch norm of it, seven blocks of a 3 x 3 convolution, batch norm, ReLU and
a 2 x 2 max pool (channels n_channels x 1, 1, 2, 2, 2, 2, 4), a max over
what is left, a dense layer, batch norm, ReLU, dropout and the tags."""

import torch
import torchaudio
from torch import nn

WIDTHS = (1, 1, 2, 2, 2, 2, 4)


class ShortChunkCNN(nn.Module):
    def __init__(self, n_channels=128, sample_rate=16000, n_fft=512, f_min=0.0, f_max=8000.0,
                 n_mels=128, n_class=50):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, f_min=f_min, f_max=f_max, n_mels=n_mels)
        self.db = torchaudio.transforms.AmplitudeToDB()
        self.input_norm = nn.BatchNorm2d(1)
        blocks, width = [], 1
        for factor in WIDTHS:
            blocks += [nn.Conv2d(width, n_channels * factor, 3, padding=1),
                       nn.BatchNorm2d(n_channels * factor), nn.ReLU(), nn.MaxPool2d(2)]
            width = n_channels * factor
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(),
                                  nn.Dropout(0.5), nn.Linear(width, n_class), nn.Sigmoid())

    def forward(self, waveform):
        image = self.input_norm(self.db(self.mel(waveform)).unsqueeze(1))
        return self.head(torch.amax(self.blocks(image), dim=(2, 3)))
