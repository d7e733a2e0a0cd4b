"""CNNSA (Won et al. 2019 as Won et al. 2020 trained it: short-chunk ResNet
front end + BERT encoder): counts equal the original's, shapes at the
paper's 15 s input, attention access, tiny configurations train, save and
load."""

import keras
import numpy as np
import pytest

from tagger.config import LogMelConfig
from tagger.models import family
from tagger.models.cnnsa import build_cnnsa
from tests.models.attention_checks import (
    check_attention_outputs,
    check_contributions,
    check_natural_override,
)
from tests.models.common import (
    check_mixed_precision,
    check_raw_logmel_parity,
    check_tiny_waveform_tagger,
    check_train_reads_16_khz_records,
    logmel_batch,
    trainable_count,
    waveforms,
)

# 16 mel bins, 58 frames per 59049-sample segment.
TINY_LOGMEL = LogMelConfig(n_mels=16, n_fft=512, hop_length=1024, mel_scale="htk")
TINY = dict(family("cnnsa").tiny, logmel=TINY_LOGMEL)  # width 4, 2 heads


def batch_norm_statistics(model):
    return sum(int(np.prod(layer.moving_mean.shape)) + int(np.prod(layer.moving_variance.shape))
               for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))


def test_counts_equal_the_original():
    """../shared/reference/sota_zoo.md, measured from the original code (50
    tags): trainable parameters and batch-norm running mean + var; the fixed
    [CLS] vector is a weight here, a plain tensor there."""
    model = build_cnnsa()  # paper size, built, not run
    assert trainable_count(model) == 10_521_652
    assert batch_norm_statistics(model) == 9_218
    token = model.get_layer("cls_token")
    assert not token.trainable_weights and token.token.shape == (256,)
    assert model.output.shape == (None, 50)


def test_shapes_at_the_papers_input():
    model = build_cnnsa()
    assert model.input.shape == (None, 240000)  # 15 s at 16 kHz
    assert model.get_layer("log_mel").output.shape == (None, 938, 128)
    assert [model.get_layer(f"block{i}_relu").output.shape[1:3] for i in range(1, 8)] == [
        (64, 469), (32, 235), (16, 118), (8, 118), (4, 118), (2, 118), (1, 118)]
    assert model.get_layer("block7_relu").output.shape[-1] == 256
    assert model.get_layer("cls_token").output.shape == (None, 119, 256)
    assert model.get_layer("encoder1").output[1].shape == (None, 8, 119, 119)
    assert model.get_layer("encoder0").intermediate.units == 1024
    assert model.get_layer("embedding").output.shape == (None, 256)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return build_cnnsa(num_tags=5, input_kind="logmel", num_frames=58, hidden_dropout=0.0,
                       attention_dropout=0.0, dropout=0.0, **TINY)


@pytest.fixture(scope="module")
def batch():
    return logmel_batch(58)


@pytest.mark.slow
def test_attention_and_contributions(tiny, batch):
    x, _ = batch
    outputs = check_attention_outputs(tiny, x, heads=2, layers=2)
    assert outputs["encoder0_attention"].shape == (4, 2, 9, 9)  # 58 -> 29 -> 15 -> 8 frames
    check_natural_override(tiny, x, outputs)
    check_contributions(tiny, x, norm_first=False)


@pytest.mark.slow
def test_tiny_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_cnnsa(num_tags=5, segments=2, segment_length=59049, sample_rate=22050,
                        hidden_dropout=0.0, attention_dropout=0.0, dropout=0.0, **TINY)
    check_tiny_waveform_tagger(model, 2, tmp_path)


def test_raw_and_logmel_inputs_agree():
    tiny = {k: v for k, v in TINY.items() if k != "logmel"}
    check_raw_logmel_parity(build_cnnsa, TINY_LOGMEL, segments=2, segment_length=59049,
                            sample_rate=22050, **tiny)


def test_mixed_precision():
    check_mixed_precision(build_cnnsa, waveforms(2, 1), num_tags=3, segment_length=59049,
                          sample_rate=22050, **TINY)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_channels=0), "n_channels"),
    (dict(attention_heads=3), "multiple of attention_heads"),
    (dict(attention_dropout=1.0), "dropout"),
    (dict(logmel=LogMelConfig(n_mels=256)), "at most 128"),
    (dict(input_length=59049), "multiple of the 240000"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_cnnsa(**kwargs)


def test_train_reads_records_of_15_s_at_16_khz():
    check_train_reads_16_khz_records("cnnsa", 240000)
