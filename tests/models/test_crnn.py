"""CRNN (Choi et al. 2017, as Won et al. 2020 trained it): counts equal the
original's, shapes at the paper's 29 s input, tiny configurations train,
save and load."""

import keras
import numpy as np
import pytest

from tagger.config import LogMelConfig
from tagger.models.crnn import build_crnn
from tests.models.common import (
    check_mixed_precision,
    check_raw_logmel_parity,
    check_tiny_waveform_tagger,
    trainable_count,
    waveforms,
)

# ../shared/reference/sota_zoo.md, measured from the original code (50 tags):
# trainable parameters and batch-norm running mean + var.
COUNTS = (394_100, 898)
# 16 mel bins, 58 frames per 59049-sample segment.
TINY_LOGMEL = LogMelConfig(n_mels=16, n_fft=512, hop_length=1024, mel_scale="htk")
TINY = dict(n_channels=4, rnn_units=4, logmel=TINY_LOGMEL, segment_length=59049,
            sample_rate=22050)


def test_counts_equal_the_original():
    model = build_crnn()  # paper size, built, not run
    buffers = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    assert (trainable_count(model), buffers) == COUNTS
    assert model.output.shape == (None, 50)


def test_shapes_at_the_papers_input():
    model = build_crnn()
    assert model.input.shape == (None, 464000)  # 29 s at 16 kHz
    assert model.get_layer("log_mel").output.shape == (None, 1813, 96)
    assert [model.get_layer(f"block{i}_pool").output.shape[1:] for i in range(1, 5)] == [
        (48, 906, 64), (16, 302, 128), (4, 75, 128), (1, 18, 128)]
    assert model.get_layer("to_sequence").output.shape == (None, 18, 128)
    assert model.get_layer("gru1").output.shape == (None, 18, 32)
    assert model.get_layer("embedding").output.shape == (None, 32)


@pytest.mark.slow
def test_tiny_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_crnn(num_tags=5, segments=2, dropout=0.0, **TINY)
    check_tiny_waveform_tagger(model, 2, tmp_path)


def test_raw_and_logmel_inputs_agree():
    tiny = {k: v for k, v in TINY.items() if k != "logmel"}
    check_raw_logmel_parity(build_crnn, TINY_LOGMEL, segments=2, **tiny)


def test_mixed_precision():
    check_mixed_precision(build_crnn, waveforms(2, 1), num_tags=3, **TINY)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_channels=0), "n_channels"),
    (dict(rnn_units=-1), "rnn_units"),
    (dict(dropout=1.0), "dropout"),
    (dict(input_length=59049), "multiple of the 464000"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_crnn(**kwargs)
