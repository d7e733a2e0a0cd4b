"""The musicnn package's Musicnn and VGG (`pons_musicnn`, `pons_vgg`):
counts equal the package's checkpoints' variables, shapes at its 187-frame
input, the layer order of its graph, tiny configurations train, save and
load, and train.py reads records of its 48128-sample windows at 16 kHz."""

import dataclasses

import keras
import numpy as np
import pytest

from tagger.config import LogMelConfig
from tagger.models.pons_musicnn import LOGMEL, SEGMENT_LENGTH, build_pons_musicnn
from tagger.models.pons_vgg import build_pons_vgg
from tests.models.common import (
    check_mixed_precision,
    check_raw_logmel_parity,
    check_tiny_waveform_tagger,
    check_train_reads_16_khz_records,
    trainable_count,
    waveforms,
)

# Measured from the package's checkpoints (tf.train.load_checkpoint on
# musicnn-0.1.0's MTT_musicnn / MTT_vgg; the MSD ones have the same shapes):
# trainable variables, and batch-norm moving means + variances, leaving out
# Adam's slots and beta powers.
COUNTS = {build_pons_musicnn: (787_159, 4_920), build_pons_vgg: (605_748, 1_282)}
# 16 mel bins (timbral filters 6 and 11 high), 27 uncentred frames a 59049-sample
# segment at hop 2048.
TINY_LOGMEL = dataclasses.replace(LOGMEL, n_mels=16, hop_length=2048)
TINY_MUSICNN = dict(timbral_filters=4, temporal_filters=2, midend_channels=4, dense_units=8,
                    logmel=TINY_LOGMEL, segment_length=59049, sample_rate=22050)
TINY_VGG = dict(filters=4, logmel=TINY_LOGMEL, segment_length=59049, sample_rate=22050)


def buffer_count(model):
    return int(sum(np.prod(w.shape) for w in model.non_trainable_weights))


@pytest.mark.parametrize("build", list(COUNTS), ids=lambda b: b.__name__)
def test_counts_equal_the_packages_checkpoints(build):
    model = build()  # the package's size, built, not run
    assert (trainable_count(model), buffer_count(model)) == COUNTS[build]
    assert model.input.shape == (None, SEGMENT_LENGTH) == (None, 48128)
    assert model.get_layer("log_mel").output.shape == (None, 187, 96)
    assert model.output.shape == (None, 50)


def test_musicnn_shapes_at_the_packages_input():
    model = build_pons_musicnn()
    shapes = {"to_image": (187, 96, 1), "timbral1_conv": (187, 59, 204),
              "timbral2_conv": (187, 30, 204), "temporal1_conv": (187, 96, 51),
              "temporal3_squeeze": (187, 51), "front_end": (187, 561),
              "midend_concat": (187, 753), "max_pool": (753,), "pooled": (1506,),
              "embedding": (200,)}
    for name, shape in shapes.items():
        assert model.get_layer(name).output.shape == (None, *shape), name
    assert model.get_layer("timbral1_conv").kernel.shape == (7, 38, 1, 204)
    assert model.get_layer("timbral2_conv").kernel.shape == (7, 67, 1, 204)
    assert [model.get_layer(f"temporal{j}_conv").kernel.shape[0] for j in (1, 2, 3)] == [
        128, 64, 32]
    assert model.get_layer("midend1_conv").kernel.shape == (7, 561, 64)


def test_vgg_shapes_at_the_packages_input():
    model = build_pons_vgg()
    pools = [model.get_layer(f"pool{i}").output.shape[1:3] for i in range(1, 6)]
    assert pools == [(92, 48), (46, 24), (23, 12), (11, 6), (2, 1)]
    assert model.get_layer("embedding").output.shape == (None, 256)


def test_musicnn_order_of_the_packages_graph():
    """Convolutions apply ReLU before their batch norm; the mid end's second
    and third layers add their input; the pooled vector interleaves the max
    and the mean over time per channel."""
    model = build_pons_musicnn(num_tags=3, input_kind="logmel", num_frames=20,
                               **{k: v for k, v in TINY_MUSICNN.items()
                                  if k not in ("segment_length", "sample_rate")})
    for layer in model.layers:  # batch norms with statistics that move the output
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights([np.full(size, 2.0, "float32"), np.full(size, -1.0, "float32"),
                               np.zeros(size, "float32"), np.ones(size, "float32")])
    x = np.random.default_rng(0).standard_normal((2, 20, 16)).astype("float32")
    names = ["timbral1_conv", "timbral1_bn", "front_end", "midend1_bn", "midend2_bn",
             "midend2_add", "midend3_add", "pooled"]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    conv, bn, front, mid1, mid2, res2, res3, pooled = [np.asarray(t) for t in probe(x)]
    assert conv.min() >= 0.0 and bn.min() < 0.0  # ReLU, then BN (gamma 2, beta -1)
    np.testing.assert_allclose(bn, 2.0 * conv / np.sqrt(1.0 + 1e-3) - 1.0, atol=1e-5)
    np.testing.assert_allclose(res2, mid2 + mid1, atol=1e-6)
    features = np.concatenate([front, mid1, res2, res3], axis=-1)  # (2, 20, 561')
    expected = np.stack([features.max(axis=1), features.mean(axis=1)], axis=-1)
    np.testing.assert_allclose(pooled, expected.reshape(2, -1), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("build, tiny", [(build_pons_musicnn, TINY_MUSICNN),
                                         (build_pons_vgg, TINY_VGG)],
                         ids=["musicnn", "vgg"])
def test_tiny_trains_saves_and_loads(build, tiny, tmp_path):
    keras.utils.set_random_seed(0)
    model = build(num_tags=5, segments=2, dropout=0.0, **tiny)
    check_tiny_waveform_tagger(model, 2, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("build, tiny", [(build_pons_musicnn, TINY_MUSICNN),
                                         (build_pons_vgg, TINY_VGG)],
                         ids=["musicnn", "vgg"])
def test_raw_and_logmel_inputs_agree(build, tiny):
    check_raw_logmel_parity(build, TINY_LOGMEL, segments=2,
                            **{k: v for k, v in tiny.items() if k != "logmel"})


def test_mixed_precision():
    check_mixed_precision(build_pons_musicnn, waveforms(2, 1), num_tags=3, **TINY_MUSICNN)
    check_mixed_precision(build_pons_vgg, waveforms(2, 1), num_tags=3, **TINY_VGG)


@pytest.mark.parametrize("build, kwargs, message", [
    (build_pons_musicnn, dict(midend_channels=0), "midend_channels"),
    (build_pons_musicnn, dict(dropout=1.0), "dropout"),
    (build_pons_musicnn, dict(input_length=48000), "multiple of the 48128"),
    (build_pons_musicnn, dict(logmel=LogMelConfig(n_mels=2)), "at least 3 bins"),
    (build_pons_vgg, dict(filters=2.5), "filters"),
])
def test_bad_arguments(build, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


@pytest.mark.parametrize("family", ["pons_musicnn", "pons_vgg"])
def test_train_reads_records_of_187_frames_at_16_khz(family):
    check_train_reads_16_khz_records(family, 48128)
