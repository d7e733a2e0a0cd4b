"""Won et al. 2020's CNNSA in PyTorch, written from the facts of
minzwon/sota-music-tagging-models `training/model.py` (CNNSA),
`training/modules.py` (Res_2d) and `training/attention_modules.py`
(BertEncoder, BertPooler), with the release's state-dict keys; the front
end, the Res_2d block and the BERT layer are `originals`'.

Only imported by test modules that have already skipped when torch is missing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tests.convert.originals import Res2dBlock, _Encoder, _Linear, _SotaSpectrogram

# layer1..7: (channels in units of n_channels, stride (mel, time))
BLOCKS = ((1, 2), (1, 2), (2, 2), (2, (2, 1)), (2, (2, 1)), (2, (2, 1)), (2, (2, 1)))


class CNNSA(_SotaSpectrogram):
    """model.py CNNSA: seven Res_2d, [CLS] (numpy seed 0, not a parameter)
    prepended to the 2 x n_channels wide frames, BERT layers (8 heads,
    feed-forward 4 x width), pooler, dropout, dense. Input (b, 240000)."""

    def __init__(self, n_channels=128, n_mels=128, n_class=50, heads=8, layers=2):
        super().__init__(n_mels)
        previous = 1
        for i, (units, stride) in enumerate(BLOCKS, start=1):
            setattr(self, f"layer{i}", Res2dBlock(previous, units * n_channels, stride=stride))
            previous = units * n_channels
        self.encoder = _Encoder(previous, heads, layers)
        self.pooler = _Linear(previous, previous)
        np.random.seed(0)
        self.vec_cls = torch.Tensor(np.random.random((1, previous)))  # not a parameter
        self.dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(previous, n_class)

    def forward(self, x):
        x = self.image(x)
        for i in range(1, len(BLOCKS) + 1):
            x = getattr(self, f"layer{i}")(x)
        x = x.squeeze(2).permute(0, 2, 1)  # (b, frames, channels): one mel bin left
        x = torch.cat([self.vec_cls.expand(x.shape[0], 1, -1), x], dim=1)
        for layer in self.encoder.layer:
            x = layer(x)
        x = torch.tanh(self.pooler.dense(x[:, 0]))
        return torch.sigmoid(self.dense(self.dropout(x)))
