"""Log-mel spectrogram front end shared by every spectrogram model."""

from __future__ import annotations

import math

import keras
from keras import ops

from tagger.config import COMPRESSIONS, stft_frames
from tagger.layers.mel_filters import MEL_NORMS, MEL_SCALES, mel_filter_bank

FLOAT16_MAX = 65504.0


@keras.saving.register_keras_serializable(package="tagger")
class LogMel(keras.layers.Layer):
    """Waveform -> log-mel frames, `(batch, samples)` -> `(batch, frames, n_mels)`.

    Built on `keras.layers.MelSpectrogram` (power spectrum, centred STFT,
    Hann window) followed by 10 * log10(max(power, 1e-10)). Keras's own dB
    step is not used: its `top_db` clamp takes the maximum over the whole
    batch, which would make an example's features depend on its batch
    mates. Here `top_db` (None by default: no clamp) is applied per example.

    Options for reproducing the features other toolkits compute (the
    defaults are the settings above): `mel_scale` "keras" (Keras's filter
    bank, triangles in the mel domain), "htk" (torchaudio's default) or
    "slaney" (librosa's default), both with triangles in Hz; `mel_norm`
    None or "slaney" (librosa's equal-area filters; "htk"/"slaney" scales
    only); `power` 2 (power spectrum) or 1 (magnitude); the log is
    `db_multiplier * log10(max(mel, amin))`: 10 and 1e-10 are
    torchaudio's `AmplitudeToDB()` on a power mel, 20 and 1e-5 are
    librosa's `amplitude_to_db` applied to a power mel (as the
    self-attention tagger's release did). `top_db` is on that output scale.
    `compression="logc"` takes `log10(1 + log_c * mel)` instead (Pons and
    Serra's musicnn: C = 10000), and `mel_float16` rounds the mel energies
    to float16 first, as musicnn stored and fed them (saturating at
    float16's largest value, 65504, where a cast would give infinity).

    `center=False` takes the frames from the first sample on, unpadded: a
    window of `(F - 1) * hop + n_fft` samples gives F frames. Cut from a
    file padded once by `n_fft // 2` at its edges (what `tag.py` does for
    such a model, `tagger.models.saved.window_grid`), consecutive windows
    then give exactly the frames of one centred STFT over the whole file.

    With `segment_length` set, the input is cut into consecutive segments
    of that many samples and each segment is transformed on its own, the
    frames concatenated in time. This is how `build_mtt.py --features
    logmel` computes its records, so a model fed those records and the
    same model fed raw waveforms see identical features.
    """

    def __init__(self, sample_rate, n_fft=1024, hop_length=512,
                 n_mels=128, f_min=0.0, f_max=None, top_db=None,
                 segment_length=None, mel_scale="keras", mel_norm=None,
                 power=2.0, db_multiplier=10.0, amin=1e-10, compression="db",
                 log_c=10000.0, mel_float16=False, center=True, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.f_min = float(f_min)
        self.f_max = None if f_max is None else float(f_max)
        self.top_db = None if top_db is None else float(top_db)
        self.segment_length = None if segment_length is None else int(segment_length)
        if mel_scale not in MEL_SCALES:
            raise ValueError(f"mel_scale must be one of {MEL_SCALES}, got {mel_scale!r}")
        if mel_norm not in MEL_NORMS or (mel_norm and mel_scale == "keras"):
            raise ValueError(f"mel_norm must be None or 'slaney' (with mel_scale 'htk' or "
                             f"'slaney'), got {mel_norm!r} with {mel_scale!r}")
        if not (float(power) > 0 and float(db_multiplier) > 0 and float(amin) > 0):
            raise ValueError(f"power, db_multiplier and amin must be positive, got "
                             f"{power}, {db_multiplier}, {amin}")
        if compression not in COMPRESSIONS or not float(log_c) > 0:
            raise ValueError(f"compression must be one of {COMPRESSIONS} and log_c positive, "
                             f"got {compression!r}, {log_c}")
        self.mel_scale = mel_scale
        self.mel_norm = mel_norm
        self.power = float(power)
        self.db_multiplier = float(db_multiplier)
        self.amin = float(amin)
        self.compression = compression
        self.log_c = float(log_c)
        self.mel_float16 = bool(mel_float16)
        self.center = bool(center)
        if not self.center and self.segment_length is not None \
                and self.segment_length < self.n_fft:
            raise ValueError(f"an uncentred STFT needs segments of at least n_fft "
                             f"({self.n_fft}) samples, got {self.segment_length}")
        self.filter_bank = None
        if mel_scale != "keras":
            self.filter_bank = mel_filter_bank(
                self.sample_rate, self.n_fft, self.n_mels, self.f_min, self.f_max,
                scale=mel_scale, norm=mel_norm)  # (1 + n_fft // 2, n_mels)
        elif not self.center:
            raise ValueError("center=False needs mel_scale 'htk' or 'slaney' (Keras's "
                             "MelSpectrogram always centres)")
        self.mel = keras.layers.MelSpectrogram(
            fft_length=self.n_fft,
            sequence_stride=self.hop_length,
            sequence_length=self.n_fft,
            sampling_rate=self.sample_rate,
            num_mel_bins=self.n_mels,
            min_freq=self.f_min,
            max_freq=self.f_max,
            power_to_db=False,
            mag_exp=self.power,
            dtype="float32",
            name="mel",
        )

    def build(self, input_shape):
        samples = self.segment_length or input_shape[-1]
        self.mel.build((None, samples))
        self.built = True

    def frames_for(self, num_samples):
        """Number of output frames for `num_samples` input samples."""
        if self.segment_length is None:
            return stft_frames(num_samples, self.n_fft, self.hop_length, self.center)
        segments = num_samples // self.segment_length
        return segments * stft_frames(self.segment_length, self.n_fft, self.hop_length,
                                      self.center)

    def call(self, waveform):
        waveform = ops.cast(waveform, "float32")  # (batch, samples)
        if self.segment_length is not None:
            batch = ops.shape(waveform)[0]
            segments = waveform.shape[-1] // self.segment_length
            waveform = ops.reshape(
                waveform[:, :segments * self.segment_length],
                (-1, self.segment_length))  # (batch * segments, segment)
        log_mel = self._compress(self._mel(waveform))  # (b, frames, n_mels)
        if self.top_db is not None:
            peak = ops.max(log_mel, axis=(1, 2), keepdims=True)
            log_mel = ops.maximum(log_mel, peak - self.top_db)
        if self.segment_length is not None:
            frames = log_mel.shape[1]
            log_mel = ops.reshape(log_mel, (batch, segments * frames, self.n_mels))
        return log_mel

    def _compress(self, mel):
        """Mel energies -> their log (dB, or log10(1 + C x))."""
        if self.mel_float16:
            mel = round_to_float16(mel)
        if self.compression == "logc":
            return ops.log10(1.0 + self.log_c * mel)
        return self.db_multiplier * ops.log10(ops.maximum(mel, self.amin))

    def _mel(self, waveform):
        """Mel energies `(b, frames, n_mels)` of `(b, samples)`."""
        if self.filter_bank is None:
            return ops.transpose(self.mel(waveform), (0, 2, 1))
        real, imag = ops.stft(waveform, self.n_fft, self.hop_length, self.n_fft,
                              window="hann", center=self.center)  # (b, frames, bins)
        spectrum = ops.sqrt(ops.square(real) + ops.square(imag))
        if self.power != 1.0:
            spectrum = ops.power(spectrum, self.power)
        return ops.matmul(spectrum, ops.convert_to_tensor(self.filter_bank))

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.frames_for(samples)
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        return dict(
            super().get_config(),
            sample_rate=self.sample_rate, n_fft=self.n_fft,
            hop_length=self.hop_length, n_mels=self.n_mels, f_min=self.f_min,
            f_max=self.f_max, top_db=self.top_db,
            segment_length=self.segment_length, mel_scale=self.mel_scale,
            mel_norm=self.mel_norm, power=self.power,
            db_multiplier=self.db_multiplier, amin=self.amin,
            compression=self.compression, log_c=self.log_c,
            mel_float16=self.mel_float16, center=self.center)


def round_to_float16(x):
    """Non-negative float32 `x` rounded to the nearest float16 value (ties
    to even, as numpy's `astype(float16)`), kept in float32 and saturated at
    float16's largest value (65504) instead of overflowing to infinity.
    Plain arithmetic, so every engine runs it (no float16 kernel, no
    bitwise op TFLite lacks): a normal float16 number 2^e <= x < 2^(e+1)
    keeps 10 bits after its leading one, a step of 2^(e - 10); below 2^-14
    (float16's subnormals) the step is 2^-24. Dividing and multiplying by
    powers of two is exact, and `round` rounds halves to even."""
    x = ops.minimum(ops.cast(x, "float32"), FLOAT16_MAX)
    tiny = x < 2.0 ** -14
    normal = ops.where(tiny, 1.0, x)
    exponent = ops.floor(ops.log(normal) / math.log(2.0))
    power = ops.power(2.0, exponent)  # mend log's rounding at the edges of an octave
    exponent = ops.where(normal >= 2.0 * power, exponent + 1.0,
                         ops.where(normal < power, exponent - 1.0, exponent))
    step = ops.power(2.0, exponent - 10.0)
    rounded = ops.round(normal / step) * step
    return ops.where(tiny, ops.round(x * 2.0 ** 24) * 2.0 ** -24, rounded)
