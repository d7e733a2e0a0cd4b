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
    layer = LogMel(sample_rate=22050, n_fft=512, hop_length=256, n_mels=32, top_db=60.0)
    alone = np.asarray(layer(quiet[None].astype("float32")))
    together = np.asarray(layer(np.stack([quiet, loud]).astype("float32")))
    np.testing.assert_allclose(together[0], alone[0], atol=1e-4)
    assert alone.max() - alone.min() <= 60.0 + 1e-4


def test_segment_wise_equals_concatenated_segments():
    rng = np.random.default_rng(2)
    segment = 3000
    x = rng.standard_normal((2, 3 * segment)).astype("float32")
    whole = LogMel(sample_rate=22050, n_fft=512, hop_length=256, n_mels=16, segment_length=segment)
    single = LogMel(sample_rate=22050, n_fft=512, hop_length=256, n_mels=16)
    y = np.asarray(whole(x))
    parts = [np.asarray(single(x[:, i * segment:(i + 1) * segment])) for i in range(3)]
    np.testing.assert_allclose(y, np.concatenate(parts, axis=1), atol=1e-4)
    assert y.shape[1] == whole.frames_for(3 * segment)


def test_standard_layer_checks(tmp_path):
    check_layer(lambda: LogMel(sample_rate=22050, n_fft=256, hop_length=128, n_mels=8,
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
    check_layer(lambda: LogMel(sample_rate=22050, n_fft=256, hop_length=128, n_mels=8,
                               segment_length=1000,
                               mel_scale="slaney", mel_norm="slaney", power=1.0,
                               db_multiplier=20.0, amin=1e-5, top_db=80.0),
                (2000,), tmp_path)
    with pytest.raises(ValueError, match="mel_norm"):
        LogMel(sample_rate=22050, mel_norm="slaney")
    with pytest.raises(ValueError, match="mel_scale"):
        LogMel(sample_rate=22050, mel_scale="librosa")


MUSICNN_FRONT_END = dict(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96,
                         f_max=8000.0, mel_scale="slaney", mel_norm="slaney",
                         compression="logc", log_c=10000.0, mel_float16=True)


def test_uncentred_windows_of_a_padded_file_give_the_whole_files_frames():
    """center=False on windows cut from the file padded once by n_fft // 2
    (reflect) equals one centred STFT over the whole file, frame for frame;
    log10(1 + C x) of the float16-rounded mel as numpy computes it."""
    from tagger.layers.mel_filters import mel_filter_bank

    rng = np.random.default_rng(3)
    x = (0.3 * rng.standard_normal(9000)).astype("float32")
    frames, window = 12, 11 * 256 + 512  # (F - 1) * hop + n_fft
    whole = LogMel(**MUSICNN_FRONT_END)
    windowed = LogMel(**MUSICNN_FRONT_END, center=False)
    assert windowed.frames_for(window) == frames and windowed.frames_for(511) == 0
    padded = np.pad(x, 256, mode="reflect")
    starts = range(0, len(padded) - window + 1, frames * 256)
    got = np.concatenate([np.asarray(windowed(padded[None, s:s + window]))[0]
                          for s in starts])
    assert got.shape == (len(starts) * frames, 96) and len(starts) == 3
    expected = np.asarray(whole(x[None]))[0][:len(got)]
    np.testing.assert_allclose(got, expected, atol=2e-3)  # a float16 rounding step at most
    bank = mel_filter_bank(16000, 512, 96, 0.0, 8000.0, "slaney", "slaney")
    power = 10.0 ** (_numpy_log_mel(x.astype(np.float64), 512, 256, bank, 2.0, 10.0,
                                    1e-30) / 10.0)
    numpy_logc = np.log10(1.0 + 10000.0 * power.astype(np.float16).astype(np.float64))
    np.testing.assert_allclose(got, numpy_logc[:len(got)], atol=2e-3)
    assert np.mean(np.abs(got - numpy_logc[:len(got)]) < 1e-5) > 0.99


@pytest.mark.slow
def test_musicnn_front_end_equals_librosa_with_reflect_padding():
    """librosa's melspectrogram (Slaney scale and norm, power 2, centred,
    reflect padding as librosa 0.7 padded) rounded to float16, then
    log10(10000 x + 1): the musicnn package's features, within float16's
    rounding step on the mel energies."""
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(4)
    t = np.arange(32000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(len(t))).astype(
        "float32")
    mel = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=256, n_mels=96,
                                         pad_mode="reflect").T
    expected = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    got = np.asarray(LogMel(**MUSICNN_FRONT_END)(x[None]))[0]
    assert got.shape == expected.shape == (126, 96)
    difference = np.abs(got - expected)
    assert difference.max() < 1e-3 and np.mean(difference < 1e-5) > 0.99


def test_float16_rounding_equals_numpys_and_saturates():
    """Ties to even, subnormals and the largest value as numpy rounds them."""
    from tagger.layers.log_mel import round_to_float16

    rng = np.random.default_rng(5)
    halves = rng.uniform(1e-3, 6e4, 20000).astype(np.float16)
    above = np.nextafter(halves, np.float16(np.inf))
    ties = ((halves.astype(np.float64) + above) / 2).astype(np.float32)
    octaves = np.float32(2.0) ** np.arange(-14, 16, dtype=np.float32)  # and their neighbours
    x = np.concatenate([rng.uniform(0, 1e-4, 20000), 10 ** rng.uniform(-12, 4.8, 50000),
                        ties, octaves, np.nextafter(octaves, np.float32(0)),
                        np.nextafter(octaves, np.float32(np.inf)),
                        [0.0, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25, 65504.0]]).astype(
        np.float32)
    np.testing.assert_array_equal(np.asarray(round_to_float16(x)),
                                  x.astype(np.float16).astype(np.float32))
    assert float(np.asarray(round_to_float16(np.float32(1e6)))) == 65504.0


def test_float16_rounding_saturates_instead_of_overflowing():
    layer = LogMel(**dict(MUSICNN_FRONT_END, n_mels=8))
    loud = np.asarray(layer._compress(np.array([[[1e6, 6.6, 0.0]]], "float32")))[0, 0]
    np.testing.assert_allclose(loud, [np.log10(1 + 1e4 * 65504.0),
                                      np.log10(1 + 1e4 * float(np.float16(6.6))), 0.0], rtol=1e-6)
    plain = LogMel(**dict(MUSICNN_FRONT_END, n_mels=8, mel_float16=False))
    assert float(np.asarray(plain._compress(np.array([[[6.6]]], "float32"))).item()) == \
        pytest.approx(np.log10(1 + 66000.0), rel=1e-6)


def test_uncentred_and_logc_options_round_trip(tmp_path):
    check_layer(lambda: LogMel(sample_rate=22050, n_fft=256, hop_length=128, n_mels=8,
                               segment_length=1000,
                               mel_scale="slaney", mel_norm="slaney", compression="logc",
                               log_c=100.0, mel_float16=True, center=False),
                (2000,), tmp_path)
    layer = LogMel(sample_rate=22050, n_fft=256, hop_length=128, n_mels=8, segment_length=1000,
                   mel_scale="htk", center=False)
    assert layer.frames_for(2000) == 2 * (1 + (1000 - 256) // 128)
    with pytest.raises(ValueError, match="compression"):
        LogMel(sample_rate=22050, compression="log")
    with pytest.raises(ValueError, match="center=False needs mel_scale"):
        LogMel(sample_rate=22050, center=False)
    with pytest.raises(ValueError, match="at least n_fft"):
        LogMel(sample_rate=22050, n_fft=512, segment_length=300, mel_scale="htk", center=False)


def test_config_checks_and_counts_the_new_options():
    from tagger.config import LogMelConfig

    config = LogMelConfig(n_mels=96, n_fft=512, hop_length=256, mel_scale="slaney",
                          compression="logc", mel_float16=True, center=False)
    assert config.frames(186 * 256 + 512) == 187 and config.frames(511) == 0
    assert LogMelConfig(n_fft=512, hop_length=256).frames(48000) == 188
    for bad, message in ((dict(compression="ln"), "compression must be one of db, logc"),
                         (dict(log_c=0.0), "log_c"), (dict(center="no"), "center"),
                         (dict(mel_float16=1), "mel_float16")):
        with pytest.raises(ValueError, match=message):
            LogMelConfig(**bad)
