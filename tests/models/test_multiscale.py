import keras
import numpy as np
import pytest

from tagger.config import LogMelConfig
from tagger.models import build_model
from tagger.models.multiscale import build_multiscale
from tests.checks import check_saved_model
from tests.models.common import (
    check_mixed_precision,
    check_raw_logmel_parity,
    check_training_lowers_loss,
    trainable_count,
    waveforms,
)
from tests.presets import TINY_LOGMEL as TINY  # 16 mel bins, 58 frames a segment

# 2 segments = 116 frames (>= 64).

# The original (many-facedgod/Music-Tagger, Theano; amalad/Multi-Scale-Music-
# Tagger, PyTorch) on 128 mel bins x 628 frames, weights + biases:
ORIGINAL_CONVS = [
    1 * 3 * 7 * 50 + 50,      # scale 1: conv 50 (3x7)         1,100
    50 * 3 * 5 * 100 + 100,   #          conv 100 (3x5)       75,100
    100 * 3 * 3 * 70 + 70,    #          conv 70 (3x3)        63,070
    1 * 3 * 5 * 100 + 100,    # scale 2: conv 100 (3x5)        1,600
    100 * 3 * 3 * 70 + 70,    #          conv 70 (3x3)        63,070
    1 * 3 * 3 * 70 + 70,      # scale 3: conv 70 (3x3)           700
    210 * 3 * 3 * 70 + 70,    # merge: conv 70 on 210 ch     132,370
    70 * 3 * 3 * 70 + 70,     #        conv 70                44,170
]
# mel 128 -> 64 -> 32 -> 16 -> 8; time 628 -> 157 -> 39 -> 19 -> 9
FLAT = 70 * 8 * 9                                   # 5,040 (= BatchNorm1d(5040))
ORIGINAL = (sum(ORIGINAL_CONVS) + 2 * FLAT          # BN gamma + beta
            + FLAT * 500 + 500 + 500 * 50 + 50)     # fc1, fc2
assert ORIGINAL == 2_936_810


def test_trainable_parameters_equal_the_original():
    paper = build_multiscale(input_kind="logmel", num_frames=628)
    assert paper.input.shape == (None, 628, 128)
    assert trainable_count(paper) == ORIGINAL
    # The default window (10 segments = 580 frames) pools to the same 8 x 9.
    default = build_multiscale()
    assert default.input.shape == (None, 10 * 59049)
    assert default.get_layer("log_mel").output.shape == (None, 580, 128)
    assert default.get_layer("flatten").output.shape == (None, FLAT)
    assert trainable_count(default) == ORIGINAL


@pytest.mark.slow
def test_train_then_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_multiscale(num_tags=5, segments=2, logmel=TINY, dropout=0.0)
    x = waveforms(4, 2)
    y = (np.arange(20).reshape(4, 5) % 3 == 0).astype("float32")
    assert model.predict(x, verbose=0).shape == (4, 5)
    check_training_lowers_loss(model, x, y)
    check_saved_model(model, x, tmp_path)
    assert model.get_layer("embedding").output.shape == (None, 500)


def test_raw_and_logmel_inputs_agree():
    check_raw_logmel_parity(build_multiscale, TINY, segments=2)


def test_registry_and_mixed_precision():
    model = build_model("multiscale", num_tags=3, input_kind="logmel", num_frames=64,
                        logmel=TINY)
    assert model.output.shape == (None, 3)
    check_mixed_precision(build_multiscale, waveforms(2, 2), num_tags=3, segments=2,
                          logmel=TINY)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_kind="mfcc"), "input_kind"),
    (dict(input_length=100000), "multiple of the 59049"),
    (dict(segments=0), "segments"),
    (dict(input_kind="raw", num_frames=100), "num_frames"),
    (dict(logmel=LogMelConfig(n_mels=8)), "16 mel bins"),
    (dict(input_kind="logmel", num_frames=40, logmel=TINY), "64 frames"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_multiscale(**kwargs)
