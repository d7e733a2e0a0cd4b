"""The noisy-student augmentation chain of Won, Choi, Serra 2021 (parameters
of torchaudio-augmentations 0.2.4), in order, each transform applied to each
example on its own with its probability:

| transform | p | parameters |
| --- | --- | --- |
| polarity inversion | 0.8 | x -> -x |
| Gaussian noise | 0.3 | std U[0.3, 0.5] of the crop's std |
| gain | 0.2 | U[-20, -1] dB |
| high-pass or low-pass | 0.8 | 1/2 each: cutoff U[200, 1200] Hz or U[2200, 4000] Hz |
| delay | 0.5 | 200..450 ms in 50 ms steps, (x + 0.5 delayed) / 2 |
| pitch shift | 0.4 | U[-7, 7] semitones, by resampling (see pitch_shift.py) |
| reverb | 0.3 | synthetic impulse response (see reverb.py) |

(The original's first step, a random crop to the input's own length, is a
no-op and left out.)
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tagger.augment import delay, filters, gain, noise, pitch_shift, polarity, reverb
from tagger.augment.common import ALG, split_seed


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The probability of each transform (0 switches one off)."""

    polarity: float = polarity.PROBABILITY
    noise: float = noise.PROBABILITY
    gain: float = gain.PROBABILITY
    filter: float = filters.PROBABILITY
    delay: float = delay.PROBABILITY
    pitch_shift: float = pitch_shift.PROBABILITY
    reverb: float = reverb.PROBABILITY

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"probability of {field.name} must lie in [0, 1], "
                                 f"got {value}")

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(**{f.name: 0.0 for f in dataclasses.fields(cls)})


def augment(x, seed, sample_rate: int, config: AugmentConfig = AugmentConfig()):
    """Waveforms (batch, samples) -> the augmented batch, float32; `seed` (2,)
    int tensor. Transforms with probability 0 are left out of the graph."""
    x = tf.cast(x, tf.float32)
    seeds = split_seed(seed, 7)
    steps = (
        (config.polarity, lambda x, s, p: polarity.polarity_inversion(x, s, p)),
        (config.noise, lambda x, s, p: noise.gaussian_noise(x, s, p)),
        (config.gain, lambda x, s, p: gain.gain(x, s, p)),
        (config.filter, lambda x, s, p: filters.high_low_pass(x, s, sample_rate, p)),
        (config.delay, lambda x, s, p: delay.delay(x, s, sample_rate, p)),
        (config.pitch_shift, lambda x, s, p: pitch_shift.pitch_shift(x, s, p)),
        (config.reverb, lambda x, s, p: reverb.reverb(x, s, sample_rate, p)),
    )
    for i, (p, transform) in enumerate(steps):
        if p > 0:
            x = transform(x, seeds[i], p)
    return x


def step_seed(seed, step, stream: int = 0):
    """The augmentation seed (2,) of training step `step` (a tensor, e.g. the
    optimizer's iteration count) of a run seeded with `seed`, for this
    replica: reproducible, the same after a resume, different on every
    replica and for every `stream` (e.g. the schedule's stage)."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.cast(stream, tf.int64)])
    base = tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64), alg=ALG)
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    return tf.random.experimental.stateless_fold_in(base, tf.cast(replica, tf.int64), alg=ALG)


@keras.saving.register_keras_serializable(package="tagger")
class AudioAugmentation(keras.layers.Layer):
    """The chain as a Keras layer on waveforms (batch, samples): applied when
    called with training=True (a fresh seed per call from a SeedGenerator
    seeded with `seed`), the identity otherwise."""

    def __init__(self, sample_rate: int, seed: int | None = None,
                 probabilities: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = sample_rate
        self.seed = seed
        self.probabilities = dict(probabilities or {})
        self.augment_config = AugmentConfig(**self.probabilities)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        return tf.cast(augment(x, seed, self.sample_rate, self.augment_config), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "seed": self.seed,
                "probabilities": self.probabilities}


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The chain as used by a training step: `(windows, step) -> windows`, seeded
    per step and replica by `step_seed(seed, step, stream)`."""

    sample_rate: int  # the records'
    seed: int = 0
    stream: int = 0
    config: AugmentConfig = AugmentConfig()

    def __call__(self, x, step):
        seed = step_seed(self.seed, step, self.stream)
        return tf.cast(augment(x, seed, self.sample_rate, self.config), x.dtype)
