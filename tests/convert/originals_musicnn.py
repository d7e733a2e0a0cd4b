"""Won et al. 2020's Musicnn in PyTorch, written from the facts of
minzwon/sota-music-tagging-models `training/model.py` (Musicnn) and
`training/modules.py` (Conv_V, Conv_H, Conv_1d), with the release's
state-dict keys; the front end is `originals._SotaSpectrogram`.

Only imported by test modules that have already skipped when torch is missing.
"""

from __future__ import annotations

import torch
from torch import nn

from tests.convert.originals import _SotaSpectrogram


class ConvV(nn.Module):
    """modules.py Conv_V: conv valid over mel, padded over time -> BN ->
    ReLU -> max over the mel bins left: (b, 1, mel, t) -> (b, c, t)."""

    def __init__(self, input_channels, output_channels, filter_shape):
        super().__init__()
        self.conv = nn.Conv2d(input_channels, output_channels, filter_shape,
                              padding=(0, filter_shape[1] // 2))
        self.bn = nn.BatchNorm2d(output_channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        return nn.MaxPool2d((x.size(2), 1))(x).squeeze(2)


class ConvH(nn.Module):
    """modules.py Conv_H: mean over all mel bins -> 1-D conv -> BN -> ReLU:
    (b, 1, mel, t) -> (b, c, t)."""

    def __init__(self, input_channels, output_channels, filter_length):
        super().__init__()
        self.conv = nn.Conv1d(input_channels, output_channels, filter_length,
                              padding=filter_length // 2)
        self.bn = nn.BatchNorm1d(output_channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = nn.AvgPool2d((x.size(2), 1))(x).squeeze(2)
        return self.relu(self.bn(self.conv(x)))


class Conv1dBlock(nn.Module):
    """modules.py Conv_1d: conv (padding shape // 2) -> BN -> ReLU -> max-pool."""

    def __init__(self, input_channels, output_channels, shape=3, stride=1, pooling=2):
        super().__init__()
        self.conv = nn.Conv1d(input_channels, output_channels, shape, stride=stride,
                              padding=shape // 2)
        self.bn = nn.BatchNorm1d(output_channels)
        self.relu = nn.ReLU()
        self.mp = nn.MaxPool1d(pooling)

    def forward(self, x):
        return self.mp(self.relu(self.bn(self.conv(x))))


class Musicnn(_SotaSpectrogram):
    """model.py Musicnn: `dataset` 'msd' gives backend 512 and dense 500,
    others 64 and 200; `timbral` (204) and `temporal` (51) filters per
    branch are the original's constants, narrowed for fast tests."""

    def __init__(self, n_mels=96, n_class=50, dataset="mtat", timbral=204, temporal=51):
        super().__init__(n_mels)
        self.layers = nn.ModuleList([
            ConvV(1, timbral, (int(0.7 * 96), 7)), ConvV(1, timbral, (int(0.4 * 96), 7)),
            ConvH(1, temporal, 129), ConvH(1, temporal, 65), ConvH(1, temporal, 33)])
        front = 2 * timbral + 3 * temporal
        backend = 512 if dataset == "msd" else 64
        self.layer1 = Conv1dBlock(front, backend, 7, 1, 1)
        self.layer2 = Conv1dBlock(backend, backend, 7, 1, 1)
        self.layer3 = Conv1dBlock(backend, backend, 7, 1, 1)
        dense = 500 if dataset == "msd" else 200
        self.dense1 = nn.Linear((front + 3 * backend) * 2, dense)
        self.bn = nn.BatchNorm1d(dense)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.dense2 = nn.Linear(dense, n_class)

    def forward(self, x):
        x = self.image(x)  # (b, 1, mel, t)
        out = torch.cat([layer(x) for layer in self.layers], dim=1)  # (b, front, t)
        length = out.size(2)
        res1 = self.layer1(out)
        res2 = self.layer2(res1) + res1
        res3 = self.layer3(res2) + res2
        out = torch.cat([out, res1, res2, res3], dim=1)
        out = torch.cat([nn.MaxPool1d(length)(out), nn.AvgPool1d(length)(out)], dim=1)
        out = out.squeeze(2)
        out = self.dropout(self.relu(self.bn(self.dense1(out))))
        return self.dense2(out).sigmoid()

