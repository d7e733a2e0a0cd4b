"""Won et al. 2020's CRNN in PyTorch, written from the facts of
minzwon/sota-music-tagging-models `training/model.py` (CRNN) and
`training/modules.py` (Conv_2d), with the release's state-dict keys; the
front end and blocks are those of `originals`.

Only imported by test modules that have already skipped when torch is missing.
"""

from __future__ import annotations

from torch import nn

from tests.convert.originals import Conv2dBlock, _SotaSpectrogram


class CRNN(_SotaSpectrogram):
    """model.py CRNN: four Conv_2d of n_channels x (1, 2, 2, 2) with poolings
    (2,2), (3,3), (4,4), (4,4); the one mel bin squeezed; a 2-layer GRU of
    `rnn_units` (32) over time, its last step -> dropout -> dense."""

    def __init__(self, n_channels=64, n_mels=96, n_class=50, rnn_units=32):
        super().__init__(n_mels)
        previous = 1
        for i, (unit, pool) in enumerate(((1, (2, 2)), (2, (3, 3)), (2, (4, 4)),
                                          (2, (4, 4))), start=1):
            setattr(self, f"layer{i}", Conv2dBlock(previous, unit * n_channels, pooling=pool))
            previous = unit * n_channels
        self.layer5 = nn.GRU(previous, rnn_units, 2, batch_first=True)
        self.dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(rnn_units, n_class)

    def forward(self, x):
        x = self.image(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        x = x.squeeze(2).permute(0, 2, 1)  # (b, time, channels)
        x, _ = self.layer5(x)
        return self.dense(self.dropout(x[:, -1, :])).sigmoid()
