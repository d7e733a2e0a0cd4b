"""Won et al. 2020's SampleCNN and SampleCNNSE in PyTorch, written from the
facts of minzwon/sota-music-tagging-models `training/model.py` and
`training/modules.py` (Conv_1d, ResSE_1d), with the release's state-dict
keys; `n_channels` (128 in the release) narrows them for fast tests.

Only imported by test modules that have already skipped when torch is missing.
"""

from __future__ import annotations

import torch
from torch import nn

from tests.convert.originals_musicnn import Conv1dBlock

# layer1..11: (channels in units of n_channels, kernel, stride, pooling)
LAYERS = ((1, 3, 3, 1), (1, 3, 1, 3), (1, 3, 1, 3), *[(2, 3, 1, 3)] * 6, (4, 3, 1, 3),
          (4, 1, 1, 1))


class ResSE1d(nn.Module):
    """modules.py ResSE_1d: conv -> BN -> ReLU -> conv -> BN, times its SE
    (mean over time -> Linear(C, C) -> ReLU -> Linear(C, C) -> sigmoid),
    plus the input or a strided conv -> BN of it, ReLU, max-pool."""

    def __init__(self, input_channels, output_channels, shape=3, stride=1, pooling=3):
        super().__init__()
        self.conv_1 = nn.Conv1d(input_channels, output_channels, shape, stride=stride,
                                padding=shape // 2)
        self.bn_1 = nn.BatchNorm1d(output_channels)
        self.conv_2 = nn.Conv1d(output_channels, output_channels, shape, padding=shape // 2)
        self.bn_2 = nn.BatchNorm1d(output_channels)
        self.dense1 = nn.Linear(output_channels, output_channels)
        self.dense2 = nn.Linear(output_channels, output_channels)
        self.diff = stride != 1 or input_channels != output_channels
        if self.diff:
            self.conv_3 = nn.Conv1d(input_channels, output_channels, shape, stride=stride,
                                    padding=shape // 2)
            self.bn_3 = nn.BatchNorm1d(output_channels)
        self.relu = nn.ReLU()
        self.mp = nn.MaxPool1d(pooling)

    def forward(self, x):
        out = self.bn_2(self.conv_2(self.relu(self.bn_1(self.conv_1(x)))))
        se = nn.AvgPool1d(out.size(-1))(out).squeeze(-1)
        se = torch.sigmoid(self.dense2(self.relu(self.dense1(se))))
        out = out * se.unsqueeze(-1)
        if self.diff:
            x = self.bn_3(self.conv_3(x))
        return self.mp(self.relu(x + out))


class SampleCNN(nn.Module):
    """model.py SampleCNN (and, with `se=True`, SampleCNNSE): input (b, 59049)."""

    def __init__(self, n_channels=128, n_class=50, se=False):
        super().__init__()
        self.se = se
        block = ResSE1d if se else Conv1dBlock
        previous = 1
        for i, (units, kernel, stride, pooling) in enumerate(LAYERS, start=1):
            setattr(self, f"layer{i}", block(previous, units * n_channels, shape=kernel,
                                             stride=stride, pooling=pooling))
            previous = units * n_channels
        self.dropout = nn.Dropout(0.5)
        if se:
            self.dense1 = nn.Linear(previous, previous)
            self.bn = nn.BatchNorm1d(previous)
            self.dense2 = nn.Linear(previous, n_class)
        else:
            self.dense = nn.Linear(previous, n_class)

    def forward(self, x):
        x = x.unsqueeze(1)
        for i in range(1, len(LAYERS) + 1):
            x = getattr(self, f"layer{i}")(x)
        x = x.squeeze(-1)  # one step left at 59049 samples
        if self.se:
            x = self.dropout(torch.relu(self.bn(self.dense1(x))))
            return torch.sigmoid(self.dense2(x))
        return torch.sigmoid(self.dense(self.dropout(x)))


def SampleCNNSE(n_channels=128, n_class=50):  # noqa: N802
    return SampleCNN(n_channels, n_class, se=True)
