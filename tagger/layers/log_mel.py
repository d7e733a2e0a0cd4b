"""Log-mel spectrogram front end shared by every spectrogram model."""

from __future__ import annotations

import keras
from keras import ops

_MIN_POWER = 1e-10


@keras.saving.register_keras_serializable(package="tagger")
class LogMel(keras.layers.Layer):
    """Waveform -> log-mel frames, `(batch, samples)` -> `(batch, frames, n_mels)`.

    Built on `keras.layers.MelSpectrogram` (power spectrum, centred STFT,
    Hann window) followed by 10 * log10(max(power, 1e-10)). Keras's own dB
    step is not used: its `top_db` clamp takes the maximum over the whole
    batch, which would make an example's features depend on its batch
    mates. Here `top_db` (None by default: no clamp) is applied per example.

    With `segment_length` set, the input is cut into consecutive segments
    of that many samples and each segment is transformed on its own, the
    frames concatenated in time. This is how `build_mtt.py --features
    logmel` computes its records, so a model fed those records and the
    same model fed raw waveforms see identical features.
    """

    def __init__(self, sample_rate=22050, n_fft=1024, hop_length=512,
                 n_mels=128, f_min=0.0, f_max=None, top_db=None,
                 segment_length=None, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.f_min = float(f_min)
        self.f_max = None if f_max is None else float(f_max)
        self.top_db = None if top_db is None else float(top_db)
        self.segment_length = None if segment_length is None else int(segment_length)
        self.mel = keras.layers.MelSpectrogram(
            fft_length=self.n_fft,
            sequence_stride=self.hop_length,
            sequence_length=self.n_fft,
            sampling_rate=self.sample_rate,
            num_mel_bins=self.n_mels,
            min_freq=self.f_min,
            max_freq=self.f_max,
            power_to_db=False,
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
            return 1 + num_samples // self.hop_length
        segments = num_samples // self.segment_length
        return segments * (1 + self.segment_length // self.hop_length)

    def call(self, waveform):
        waveform = ops.cast(waveform, "float32")  # (batch, samples)
        if self.segment_length is not None:
            batch = ops.shape(waveform)[0]
            segments = waveform.shape[-1] // self.segment_length
            waveform = ops.reshape(
                waveform[:, :segments * self.segment_length],
                (-1, self.segment_length))  # (batch * segments, segment)
        power = self.mel(waveform)  # (b, n_mels, frames)
        log_mel = 10.0 * ops.log10(ops.maximum(power, _MIN_POWER))
        log_mel = ops.transpose(log_mel, (0, 2, 1))  # (b, frames, n_mels)
        if self.top_db is not None:
            peak = ops.max(log_mel, axis=(1, 2), keepdims=True)
            log_mel = ops.maximum(log_mel, peak - self.top_db)
        if self.segment_length is not None:
            frames = log_mel.shape[1]
            log_mel = ops.reshape(log_mel, (batch, segments * frames, self.n_mels))
        return log_mel

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.frames_for(samples)
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        config = super().get_config()
        config.update(
            sample_rate=self.sample_rate, n_fft=self.n_fft,
            hop_length=self.hop_length, n_mels=self.n_mels, f_min=self.f_min,
            f_max=self.f_max, top_db=self.top_db,
            segment_length=self.segment_length)
        return config
