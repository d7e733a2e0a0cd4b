import keras
import pytest

from tagger.config import LogMelConfig
from tagger.models import build_model, family
from tagger.models.self_attention import build_self_attention
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

# 16 mel bins, 58 frames per segment: tiny front end and encoder.
TINY_LOGMEL = LogMelConfig(n_mels=16, n_fft=512, hop_length=1024, top_db=40.0)
TINY = family("self_attention").tiny


def original_parameters(n_mels=96, c=16, d=512, layers=2, tags=50):
    """Trainable parameters of minzwon/self-attention-music-tagging
    (`pons_won`): weights + biases, batch norms gamma + beta; the [CLS]
    vector and the sinusoidal table are not parameters."""
    high, low = int(0.9 * n_mels), int(0.4 * n_mels)  # 86, 38
    vertical = sum(h * w * m * c + m * c + 2 * m * c      # conv + bias + BN
                   for h in (high, low) for w, m in ((7, 1), (3, 2), (1, 4)))
    horizontal = sum(k * m * c + m * c + 2 * m * c
                     for k, m in ((165, 1), (129, 2), (65, 4), (33, 8)))
    front = 2 + vertical + horizontal + (29 * c * d + d) + 2 * d  # input BN, 1x1 conv, BN
    layer = 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d
    return front + layers * layer + (d * d + d) + (d * tags + tags)


def test_trainable_parameters_equal_the_original():
    assert original_parameters() == 289_378 + 2 * 3_152_384 + 262_656 + 25_650
    assert original_parameters() == 6_882_452
    paper = build_self_attention(input_kind="logmel", num_frames=256)
    assert paper.input.shape == (None, 256, 96)
    assert trainable_count(paper) == 6_882_452
    assert not paper.get_layer("cls_token").trainable_weights
    assert paper.get_layer("vertical0_conv").kernel.shape == (86, 7, 1, 16)
    assert paper.get_layer("vertical3_conv").kernel.shape == (38, 7, 1, 16)
    assert paper.get_layer("frontend_concat").output.shape == (None, 256, 29 * 16)
    assert paper.get_layer("encoder1").output[1].shape == (None, 8, 257, 257)


def test_released_variant_has_the_learned_table():
    """visualize/vismodel.py: conv_channels 8, BERT embeddings (a learned
    table of 271 rows + layer norm) instead of the sinusoidal table."""
    model = build_self_attention(input_kind="logmel", num_frames=256, conv_channels=8,
                                 positions="learned", max_positions=271)
    assert trainable_count(model) == original_parameters(c=8) + 271 * 512 + 2 * 512
    assert model.get_layer("positions").embeddings.shape == (271, 512)
    assert model.get_layer("positions_norm").epsilon == 1e-12
    assert model.get_layer("frontend_concat").output.shape == (None, 256, 29 * 8)


def test_default_window():
    model = build_self_attention()
    assert model.input.shape == (None, 2 * 59049)
    assert model.get_layer("log_mel").output.shape == (None, 336, 96)
    assert model.get_layer("embedding").output.shape == (None, 512)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return build_self_attention(num_tags=5, input_kind="logmel", num_frames=24,
                                logmel=TINY_LOGMEL, attention_dropout=0.0,
                                fc_dropout=0.0, **TINY)


@pytest.fixture(scope="module")
def batch():
    return logmel_batch(24)


@pytest.mark.slow
def test_train_then_save_and_load(tiny, batch, tmp_path):
    check_trains_saves_and_loads(tiny, *batch, tmp_path)


@pytest.mark.slow
def test_attention_and_contributions(tiny, batch):
    x, _ = batch
    outputs = check_attention_outputs(tiny, x, heads=2, layers=2)
    assert outputs["encoder0_attention"].shape == (4, 2, 25, 25)
    check_natural_override(tiny, x, outputs)
    check_contributions(tiny, x, norm_first=False)


@pytest.mark.slow
def test_raw_and_logmel_inputs_agree():
    check_raw_logmel_parity(build_self_attention, TINY_LOGMEL, segments=1, **TINY)


def test_registry_and_mixed_precision():
    model = build_model("self_attention", num_tags=3, input_kind="logmel",
                        num_frames=8, logmel=TINY_LOGMEL, **TINY)
    assert model.output.shape == (None, 3)
    check_mixed_precision(build_self_attention, waveforms(2, 1), num_tags=3,
                          segments=1, logmel=TINY_LOGMEL, **TINY)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_kind="spectrogram"), "input_kind"),
    (dict(input_length=59049 + 1), "multiple of the 59049"),
    (dict(input_kind="raw", num_frames=100), "num_frames"),
    (dict(logmel=LogMelConfig(n_mels=2)), "3 mel bins"),
    (dict(attention_channels=100), "multiple of attention_heads"),
    (dict(positions="rotary"), "positions must be"),
    (dict(positions="learned", max_positions=300), "max_positions=300"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_self_attention(**kwargs)
