import numpy as np
import pytest

from tagger.layers import LogMel
from tests.checks import check_layer


def test_shape_and_frames():
    layer = LogMel(sample_rate=22050, n_fft=512, hop_length=256, n_mels=32)
    x = np.random.default_rng(0).standard_normal((2, 5000)).astype("float32")
    y = np.asarray(layer(x))
    assert y.shape == (2, 1 + 5000 // 256, 32)
    assert layer.frames_for(5000) == y.shape[1]


def test_sine_peaks_in_its_mel_band():
    sr = 22050
    t = np.arange(sr) / sr
    low = np.sin(2 * np.pi * 200 * t)
    high = np.sin(2 * np.pi * 4000 * t)
    layer = LogMel(sample_rate=sr, n_fft=1024, hop_length=512, n_mels=64)
    y = np.asarray(layer(np.stack([low, high]).astype("float32")))
    peak_low = y[0].mean(axis=0).argmax()
    peak_high = y[1].mean(axis=0).argmax()
    assert peak_low < peak_high
    # 0 dB is the power of a full-scale sine's bin; silence sits at -100 dB.
    silent = np.asarray(layer(np.zeros((1, 4096), "float32")))
    np.testing.assert_allclose(silent, -100.0)


def test_per_example_top_db_ignores_batch_mates():
    rng = np.random.default_rng(1)
    quiet = 1e-3 * rng.standard_normal(8000)
    loud = rng.standard_normal(8000)
    layer = LogMel(n_fft=512, hop_length=256, n_mels=32, top_db=60.0)
    alone = np.asarray(layer(quiet[None].astype("float32")))
    together = np.asarray(layer(np.stack([quiet, loud]).astype("float32")))
    np.testing.assert_allclose(together[0], alone[0], atol=1e-4)
    assert alone.max() - alone.min() <= 60.0 + 1e-4


def test_segment_wise_equals_concatenated_segments():
    rng = np.random.default_rng(2)
    segment = 3000
    x = rng.standard_normal((2, 3 * segment)).astype("float32")
    whole = LogMel(n_fft=512, hop_length=256, n_mels=16, segment_length=segment)
    single = LogMel(n_fft=512, hop_length=256, n_mels=16)
    y = np.asarray(whole(x))
    parts = [np.asarray(single(x[:, i * segment:(i + 1) * segment])) for i in range(3)]
    np.testing.assert_allclose(y, np.concatenate(parts, axis=1), atol=1e-4)
    assert y.shape[1] == whole.frames_for(3 * segment)


def test_standard_layer_checks(tmp_path):
    check_layer(lambda: LogMel(n_fft=256, hop_length=128, n_mels=8,
                               segment_length=1000), (2000,), tmp_path)


def _numpy_log_mel(x, n_fft, hop, bank, power, multiplier, amin):
    """Centred (reflect-padded) periodic-Hann STFT in numpy, then the bank."""
    padded = np.pad(x, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i:i + n_fft] * window
                       for i in range(0, len(padded) - n_fft + 1, hop)])
    spectrum = np.abs(np.fft.rfft(frames, axis=-1)) ** power
    return multiplier * np.log10(np.maximum(spectrum @ bank, amin))


@pytest.mark.parametrize("scale,norm,power,multiplier,amin", [
    ("htk", None, 2.0, 10.0, 1e-10),      # torchaudio MelSpectrogram + AmplitudeToDB
    ("slaney", "slaney", 2.0, 20.0, 1e-5),  # librosa amplitude_to_db(melspectrogram)
    ("htk", "slaney", 1.0, 20.0, 1e-5),
])
def test_other_toolkits_front_ends_match_a_numpy_stft(scale, norm, power, multiplier, amin):
    from tagger.layers.mel_filters import mel_filter_bank

    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(4000)).astype("float32")
    layer = LogMel(sample_rate=16000, n_fft=512, hop_length=256, n_mels=24, f_max=8000.0,
                   mel_scale=scale, mel_norm=norm, power=power,
                   db_multiplier=multiplier, amin=amin)
    bank = mel_filter_bank(16000, 512, 24, 0.0, 8000.0, scale=scale, norm=norm)
    expected = _numpy_log_mel(x.astype(np.float64), 512, 256, bank, power, multiplier, amin)
    got = np.asarray(layer(x[None]))[0]
    assert got.shape == expected.shape == (1 + 4000 // 256, 24)
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_mel_filter_banks_follow_their_scales():
    from tagger.layers.mel_filters import hz_to_mel, mel_filter_bank, mel_to_hz

    assert hz_to_mel(1000.0, "slaney") == pytest.approx(15.0)
    assert hz_to_mel(700.0, "htk") == pytest.approx(2595 * np.log10(2))
    for scale in ("htk", "slaney"):
        f = np.array([0.0, 440.0, 999.0, 1000.0, 4000.0, 11025.0])
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, atol=1e-6)
    bank = mel_filter_bank(22050, 2048, 40, 0.0, 11025.0, scale="htk")
    assert bank.shape == (1025, 40) and bank.max() <= 1.0 and bank.min() == 0.0
    corners = mel_to_hz(np.linspace(0, hz_to_mel(11025.0, "htk"), 42), "htk")
    bins = np.linspace(0, 11025, 1025)
    # each filter peaks at the bin nearest its centre corner frequency
    np.testing.assert_array_equal(bank.argmax(axis=0),
                                  np.abs(bins[:, None] - corners[1:-1]).argmin(axis=0))
    area = mel_filter_bank(22050, 2048, 40, 0.0, 11025.0, "slaney", "slaney")
    # equal-area filters: integral over Hz is 1 for filters wide against the bins
    np.testing.assert_allclose(area[:, 10:].sum(axis=0) * (bins[1] - bins[0]), 1.0, rtol=0.02)


def test_front_end_options_round_trip(tmp_path):
    check_layer(lambda: LogMel(n_fft=256, hop_length=128, n_mels=8, segment_length=1000,
                               mel_scale="slaney", mel_norm="slaney", power=1.0,
                               db_multiplier=20.0, amin=1e-5, top_db=80.0),
                (2000,), tmp_path)
    with pytest.raises(ValueError, match="mel_norm"):
        LogMel(mel_norm="slaney")
    with pytest.raises(ValueError, match="mel_scale"):
        LogMel(mel_scale="librosa")
