import keras
import pytest

from tagger.config import LogMelConfig
from tagger.models import MODELS, build_model, family
from tagger.models.transformer import build_transformer
from tests.models.attention_checks import (
    check_attention_outputs,
    check_contributions,
    check_natural_override,
)
from tests.models.common import (
    check_mixed_precision,
    check_raw_logmel_parity,
    check_trains_saves_and_loads,
    logmel_batch,
    trainable_count,
    waveforms,
)
from tests.presets import TINY_LOGMEL  # 16 mel bins, 58 frames a segment

TINY = family("transformer").tiny


def original_parameters(d, conv=128, n_mels=128, layers=4, max_len=512, tags=50):
    """Trainable parameters of minzwon/semi-supervised-music-tagging-
    transformer (`MusicTaggingTransformer(conv_ndim=128, attention_ndim=d)`):
    weights + biases, batch/layer norms gamma + beta."""
    conv3 = lambda cin, cout: 9 * cin * cout + cout  # noqa: E731
    bn = lambda ch: 2 * ch  # noqa: E731
    block1 = conv3(1, conv) + bn(conv) + conv3(conv, conv) + bn(conv) + conv3(1, conv) + bn(conv)
    block = conv3(conv, conv) + bn(conv) + conv3(conv, conv) + bn(conv)
    front = bn(1) + block1 + 2 * block + (n_mels // 8 * conv * d + d)
    embeddings = (max_len + 1) * d + d  # positions, [CLS]
    layer = (2 * d + 3 * d * d + d * d + d            # pre-norm, to_qkv (no bias), to_out
             + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d))  # pre-norm, MLP
    head = 2 * d + d * tags + tags
    return front + embeddings + layers * layer + head


def test_trainable_parameters_equal_the_original():
    assert original_parameters(256) == 4_567_732
    assert original_parameters(64) == 1_108_852
    for size, count in (("teacher", 4_567_732), ("student", 1_108_852)):
        paper = build_transformer(input_kind="logmel", num_frames=431, size=size)
        assert paper.input.shape == (None, 431, 128)
        assert trainable_count(paper) == count, size
    # attention_ndim=64 is the same student.
    student = build_transformer(input_kind="logmel", num_frames=431, attention_ndim=64)
    assert trainable_count(student) == 1_108_852
    assert student.get_layer("encoder3").output[1].shape == (None, 8, 108, 108)


def test_default_window():
    model = build_transformer()
    assert model.input.shape == (None, 4 * 59049)
    assert model.get_layer("log_mel").output.shape == (None, 464, 128)
    assert model.get_layer("encoder0").output[1].shape == (None, 8, 117, 117)
    assert model.get_layer("embedding").output.shape == (None, 256)


def test_stft_over_the_whole_window():
    """`stft_over="window"`: one STFT over the 4 segments (as the original
    computes it), equal to LogMel without segments. In the first segment
    the frames equal the per-segment default's; later ones sit elsewhere in
    time (59049 samples are not a whole number of hops). The log-mel-input
    twin takes the window's frame count."""
    import dataclasses

    import numpy as np

    from tagger.layers import LogMel

    window = build_transformer(num_tags=3, stft_over="window", logmel=TINY_LOGMEL, **TINY)
    segment = build_transformer(num_tags=3, logmel=TINY_LOGMEL, **TINY)
    frames = 1 + 4 * 59049 // TINY_LOGMEL.hop_length  # 231, against 4 x 58
    assert window.get_layer("log_mel").output.shape == (None, frames, TINY_LOGMEL.n_mels)
    assert segment.get_layer("log_mel").output.shape == (None, 232, TINY_LOGMEL.n_mels)
    assert window.get_layer("log_mel").segment_length is None
    x = waveforms(1, 4)
    ours = np.asarray(window.get_layer("log_mel")(x))
    whole = LogMel(sample_rate=22050, **dataclasses.asdict(TINY_LOGMEL))
    np.testing.assert_allclose(ours, np.asarray(whole(x)), atol=1e-4)
    per_segment = np.asarray(segment.get_layer("log_mel")(x))
    np.testing.assert_allclose(ours[:, :57], per_segment[:, :57], atol=1e-3)
    assert np.abs(ours[:, 60:] - per_segment[:, 60:frames]).max() > 0.1
    twin = build_transformer(num_tags=3, input_kind="logmel", stft_over="window",
                             logmel=TINY_LOGMEL, **TINY)
    assert twin.input.shape == (None, frames, TINY_LOGMEL.n_mels)
    twin.set_weights(window.get_weights())
    np.testing.assert_allclose(twin.predict(ours, verbose=0), window.predict(x, verbose=0),
                               atol=1e-5)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return build_transformer(num_tags=5, input_kind="logmel", num_frames=40,
                             logmel=TINY_LOGMEL, dropout=0.0, **TINY)


@pytest.fixture(scope="module")
def batch():
    return logmel_batch(40)


@pytest.mark.slow
def test_train_then_save_and_load(tiny, batch, tmp_path):
    check_trains_saves_and_loads(tiny, *batch, tmp_path)


@pytest.mark.slow
def test_attention_and_contributions(tiny, batch):
    x, _ = batch
    outputs = check_attention_outputs(tiny, x, heads=2, layers=2)
    assert outputs["encoder1_attention"].shape == (4, 2, 11, 11)  # 40 / 4 + [CLS]
    check_natural_override(tiny, x, outputs)
    check_contributions(tiny, x, norm_first=True)


@pytest.mark.slow
def test_raw_and_logmel_inputs_agree():
    check_raw_logmel_parity(build_transformer, TINY_LOGMEL, segments=1, **TINY)


def test_registry_and_mixed_precision():
    assert {"multiscale", "self_attention", "transformer"} <= set(MODELS)
    model = build_model("transformer", num_tags=3, input_kind="logmel", num_frames=8,
                        logmel=TINY_LOGMEL, **TINY)
    assert model.output.shape == (None, 3)
    with pytest.raises(ValueError, match="unknown model family 'transformers'; valid: "):
        build_model("transformers")
    check_mixed_precision(build_transformer, waveforms(2, 1), num_tags=3, segments=1,
                          logmel=TINY_LOGMEL, **TINY)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_kind="wave"), "input_kind"),
    (dict(input_length=4 * 59049 - 1), "multiple of the 59049"),
    (dict(input_kind="raw", num_frames=100), "num_frames"),
    (dict(logmel=LogMelConfig(n_mels=4)), "8 mel bins"),
    (dict(size="huge"), "size"),
    (dict(input_kind="logmel", num_frames=2100), "attention_max_len"),
    (dict(attention_ndim=60), "multiple of attention_heads"),
    (dict(stft_over="clip"), "stft_over"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_transformer(**kwargs)
