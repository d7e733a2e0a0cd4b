"""Short-chunk CNN, Short-chunk ResNet and FCN (Won et al. 2020): counts
equal the original's, shapes at the paper's inputs, tiny configurations
train, save and load."""

import keras
import numpy as np
import pytest

from tagger.config import LogMelConfig
from tagger.models import build_model
from tagger.models.fcn import build_fcn
from tagger.models.short_cnn import build_short_cnn
from tagger.models.short_res import build_short_res
from tests.models.common import (
    check_mixed_precision,
    check_raw_logmel_parity,
    check_tiny_waveform_tagger,
    trainable_count,
    waveforms,
)

# ../shared/reference/sota_zoo.md, measured from the original code (50 tags):
# trainable parameters and batch-norm running mean + var.
COUNTS = {
    "short_cnn": (3_687_348, 4_610),
    "short_res": (12_104_244, 11_778),
    "fcn": (447_732, 1_026),
}
# 16 mel bins, 58 frames per 59049-sample segment.
TINY = LogMelConfig(n_mels=16, n_fft=512, hop_length=1024, mel_scale="htk")


def buffer_count(model):
    return int(sum(np.prod(w.shape) for w in model.non_trainable_weights))


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_equal_the_original(name):
    model = build_model(name)  # paper size, built, not run
    assert (trainable_count(model), buffer_count(model)) == COUNTS[name]
    assert model.output.shape == (None, 50)


def test_shapes_at_the_papers_inputs():
    short = build_short_cnn()
    assert short.input.shape == (None, 59049)  # one chunk at 16 kHz
    assert short.get_layer("log_mel").output.shape == (None, 231, 128)
    assert short.get_layer("input_bn").output.shape == (None, 128, 231, 1)
    assert short.get_layer("block7_pool").output.shape == (None, 1, 1, 512)
    assert short.get_layer("embedding").output.shape == (None, 512)
    res = build_short_res()
    assert res.get_layer("block1_relu").output.shape == (None, 64, 116, 128)
    assert res.get_layer("block7_relu").output.shape == (None, 1, 2, 512)
    fcn = build_fcn()
    assert fcn.input.shape == (None, 464000)  # 29 s at 16 kHz
    assert fcn.get_layer("log_mel").output.shape == (None, 1813, 96)
    assert [fcn.get_layer(f"block{i}_pool").output.shape[1:3] for i in range(1, 6)] == [
        (48, 453), (24, 113), (12, 28), (4, 5), (1, 1)]
    assert fcn.get_layer("embedding").output.shape == (None, 64)


@pytest.mark.slow
@pytest.mark.parametrize("build", [build_short_cnn, build_short_res, build_fcn])
def test_tiny_trains_saves_and_loads(build, tmp_path):
    keras.utils.set_random_seed(0)
    kwargs = dict(segment_length=59049) if build is build_fcn else {}
    model = build(num_tags=5, segments=2, logmel=TINY, n_channels=4, dropout=0.0,
                  sample_rate=22050, **kwargs)
    check_tiny_waveform_tagger(model, 2, tmp_path)


def test_raw_and_logmel_inputs_agree():
    check_raw_logmel_parity(build_short_res, TINY, segments=2, sample_rate=22050,
                            n_channels=4)


def test_mixed_precision():
    check_mixed_precision(build_short_cnn, waveforms(2, 1), num_tags=3, logmel=TINY,
                          n_channels=4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_channels=0), "n_channels"),
    (dict(dropout=1.0), "dropout"),
    (dict(input_length=100000), "multiple of the 59049"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_short_cnn(**kwargs)


def test_fcn_window_counts_in_its_segments():
    with pytest.raises(ValueError, match="multiple of the 464000"):
        build_fcn(input_length=59049, n_channels=4)
    model = build_fcn(num_tags=3, input_kind="logmel", n_channels=4)
    assert model.input.shape == (None, 1813, 96)


def test_train_reads_records_at_the_familys_segment_length():
    from tagger.config import TrainConfig
    from tagger.errors import UserError
    from tagger.training import model_setup
    from tests.checks import records_info

    def info(segment_length):
        return records_info([f"t{i}" for i in range(50)], 16000, segment_length)

    args = model_setup.model_arguments(TrainConfig(model="fcn"), info(464000), 1)
    assert args == {"num_tags": 50, "input_kind": "raw", "segments": 1,
                    "sample_rate": 16000}
    with pytest.raises(UserError, match="'fcn' reads 464000-sample segments but the "
                       "dataset has 59049; rebuild it with --segment-length 464000 "
                       "--sample-rate 16000"):
        model_setup.model_arguments(TrainConfig(model="fcn"), info(59049), 1)
    with pytest.raises(UserError, match="--segment-length 59049 --sample-rate 16000"):
        model_setup.model_arguments(TrainConfig(model="short_res"), info(464000), 1)
