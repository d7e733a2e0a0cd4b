"""Sample-level CNN with residual squeeze-and-excitation blocks (Kim, Lee,
Nam, ICASSP 2018) as Won, Ferraro, Bogdanov, Serra (SMC 2020) trained it on
raw 16 kHz waveforms: the original's SampleCNNSE. The architecture, its
differences from our `samplecnn` and the counts are in
`tagger.models.sample_level`, shared with `sample_level`.

The SE layers are named as `samplecnn`'s (`block{i}_se_excite` the
excitation), so the excitation analysis reads them: depth 0 is layer 1.
"""

from __future__ import annotations

from tagger.config import SEGMENT_LENGTH
from tagger.models.lazy import keras
from tagger.models.sample_level import (
    DROPOUT,
    N_CHANNELS,
    sample_level_family,
    sample_level_model,
)


def build_sample_level_se(num_tags=50, *, input_length=SEGMENT_LENGTH, n_channels=N_CHANNELS,
                          dropout=DROPOUT) -> keras.Model:
    """Builds the sample-level CNN with ResSE blocks (the original's
    SampleCNNSE); the arguments are `build_sample_level`'s."""
    return sample_level_model("res_se", num_tags, input_length=input_length,
                              n_channels=n_channels, dropout=dropout,
                              name="sample_level_se")


FAMILY = sample_level_family("sample_level_se", build_sample_level_se, "Kim, Lee, Nam 2018",
                             "Sample-level CNN + SE", analyses=("excitations",))
