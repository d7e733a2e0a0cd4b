"""Harmonic spectrogram with learnable triangular filters (Won, Chun,
Nieto, Serra, ICASSP 2020, "Data-driven harmonic filters for audio
representation learning")."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

LOWEST_MIDI = 24  # C1, the lowest centre frequency
BW_ALPHA, BW_BETA = 0.1079, 24.7  # ERB: 0.1079 f + 24.7 Hz (Glasberg, Moore 1990)


def harmonic_frequencies(sample_rate: int, n_harmonic: int,
                         semitone_scale: int) -> tuple[np.ndarray, int]:
    """(centre frequencies `(n_harmonic * level,)` float32 Hz, `level`).

    `level` fundamentals spaced 1 / `semitone_scale` semitone apart from C1
    up to (not including) the MIDI note nearest `sample_rate / (2 *
    n_harmonic)`, so that the highest harmonic stays below Nyquist; then
    the same fundamentals times 2, 3, ..., `n_harmonic`, harmonic-major.
    At 16 kHz, 6 harmonics and 2 steps per semitone: C1 to E6, 128 x 6.
    """
    top = 12.0 * np.log2(sample_rate / (2.0 * n_harmonic) / 440.0) + 69.0
    high_midi = int(np.round(top))  # the nearest note, as a note name rounds
    level = (high_midi - LOWEST_MIDI) * semitone_scale
    if level <= 0:
        raise ValueError(f"no fundamentals between C1 and {sample_rate / (2 * n_harmonic):g} "
                         f"Hz: raise sample_rate or lower n_harmonic ({n_harmonic})")
    midi = np.linspace(LOWEST_MIDI, high_midi, level + 1)[:-1]
    fundamentals = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    harmonics = np.concatenate([fundamentals * h for h in range(1, n_harmonic + 1)])
    return harmonics.astype("float32"), level


@keras.saving.register_keras_serializable(package="tagger")
class HarmonicSTFT(keras.layers.Layer):
    """Waveform -> harmonic spectrogram in dB, `(batch, samples)` ->
    `(batch, level, frames, n_harmonic)`: the fundamental axis first, time,
    and one channel per harmonic (an image for Conv2D).

    Power spectrum of a centred (reflect-padded) periodic-Hann STFT, `n_fft`
    bins, hop `n_fft // 2` unless given: `1 + samples // hop` frames. Each
    centre frequency f (`harmonic_frequencies`) has a triangular filter
    over the STFT bins, peak 1 at f and zero beyond f +- bw / 2 with
    bandwidth bw = (0.1079 f + 24.7) / Q; Q is one weight shared by all
    filters (initial `bw_q`), trainable when `learn_bandwidth` (the
    original's learn_bw='only_Q'; False: 'fix'). Then 10 log10(max(x,
    `amin`)) (torchaudio's AmplitudeToDB()).
    """

    def __init__(self, sample_rate=16000, n_fft=512, hop_length=None, n_harmonic=6,
                 semitone_scale=2, bw_q=1.0, learn_bandwidth=True, amin=1e-10, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = self.n_fft // 2 if hop_length is None else int(hop_length)
        self.n_harmonic = int(n_harmonic)
        self.semitone_scale = int(semitone_scale)
        self.bw_q = float(bw_q)
        self.learn_bandwidth = bool(learn_bandwidth)
        self.amin = float(amin)
        if min(self.n_fft, self.hop_length, self.n_harmonic, self.semitone_scale) <= 0 \
                or self.bw_q <= 0 or self.amin <= 0:
            raise ValueError("n_fft, hop_length, n_harmonic, semitone_scale, bw_q and amin "
                             "must be positive")
        self.centres, self.level = harmonic_frequencies(
            self.sample_rate, self.n_harmonic, self.semitone_scale)
        # STFT bin frequencies, 0 .. sample_rate // 2 Hz: (bins, 1)
        self.bins = np.linspace(0, self.sample_rate // 2, 1 + self.n_fft // 2,
                                dtype="float32")[:, None]

    def build(self, input_shape):
        self.q = self.add_weight(name="bw_q", shape=(1,),
                                 initializer=keras.initializers.Constant(self.bw_q),
                                 trainable=self.learn_bandwidth)
        self.built = True

    def frames_for(self, num_samples):
        return 1 + num_samples // self.hop_length

    def filter_bank(self):
        """`(1 + n_fft // 2, n_harmonic * level)`: the triangles at the current Q."""
        centres = ops.convert_to_tensor(self.centres[None, :])  # (1, bands)
        bins = ops.convert_to_tensor(self.bins)  # (bins, 1)
        bandwidth = (BW_ALPHA * centres + BW_BETA) / ops.cast(self.q, "float32")
        rising = bins * (2.0 / bandwidth) + 1.0 - 2.0 * centres / bandwidth
        falling = bins * (-2.0 / bandwidth) + 1.0 + 2.0 * centres / bandwidth
        return ops.maximum(0.0, ops.minimum(rising, falling))

    def call(self, waveform):
        waveform = ops.cast(waveform, "float32")  # (batch, samples)
        real, imag = ops.stft(waveform, self.n_fft, self.hop_length, self.n_fft,
                              window="hann", center=True)  # (batch, frames, bins)
        power = ops.square(real) + ops.square(imag)
        bands = ops.matmul(power, self.filter_bank())  # (batch, frames, n_harmonic * level)
        shape = ops.shape(bands)
        bands = ops.reshape(bands, (shape[0], shape[1], self.n_harmonic, self.level))
        bands = ops.transpose(bands, (0, 3, 1, 2))  # (batch, level, frames, n_harmonic)
        return 10.0 * ops.log10(ops.maximum(bands, self.amin))

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.frames_for(samples)
        return (input_shape[0], self.level, frames, self.n_harmonic)

    def get_config(self):
        return dict(super().get_config(), sample_rate=self.sample_rate, n_fft=self.n_fft,
                    hop_length=self.hop_length, n_harmonic=self.n_harmonic,
                    semitone_scale=self.semitone_scale, bw_q=self.bw_q,
                    learn_bandwidth=self.learn_bandwidth, amin=self.amin)
