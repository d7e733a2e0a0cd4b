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

Written in keras.ops: the same chain runs in a TensorFlow step (eager, in a
`tf.function`, XLA-compiled, in a tf.distribute replica) and inside
`jax.jit`, and draws the same numbers from the same key on both
(`threefry`; the stream is defined in docs/semi_supervised.md, "The
draws").
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from tagger.augment import delay, filters, gain, noise, pitch_shift, polarity, reverb
from tagger.augment.threefry import as_key, fold_in, split, uint32


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
    integers (a key: `threefry.as_key`). Transform i of the table above
    draws from `fold_in(key, i)` (i from 0, in the table's order, whichever
    are on). Transforms with probability 0 are left out of the graph; the
    others transform every example and keep the output where they apply."""
    x = ops.cast(x, "float32")
    steps = (
        (config.polarity, lambda x, k, p: polarity.polarity_inversion(x, k, p)),
        (config.noise, lambda x, k, p: noise.gaussian_noise(x, k, p)),
        (config.gain, lambda x, k, p: gain.gain(x, k, p)),
        (config.filter, lambda x, k, p: filters.high_low_pass(x, k, sample_rate, p)),
        (config.delay, lambda x, k, p: delay.delay(x, k, sample_rate, p)),
        (config.pitch_shift, lambda x, k, p: pitch_shift.pitch_shift(x, k, p)),
        (config.reverb, lambda x, k, p: reverb.reverb(x, k, sample_rate, p)),
    )
    keys = split(as_key(seed), len(steps))  # (7, 2)
    for i, (p, transform) in enumerate(steps):
        if p > 0:
            x = transform(x, keys[i], p)
    return x


def step_seed(seed: int, step, stream: int = 0, replica=0):
    """The augmentation key (2,) uint32 of training step `step` (an int or
    an integer scalar tensor, e.g. the optimizer's iteration count) of a run
    seeded with `seed`, for `stream` (e.g. the schedule's stage) and
    `replica` (the index of the replica whose examples it augments; 0 where
    one step augments the global batch):

        fold_in(fold_in((seed, stream), step), replica)

    each modulo 2**32. Reproducible, the same after a resume, the same on
    every backend, different for every step, stream, run seed and replica.
    `seed` and `stream` may be integer scalar tensors too (a compiled step
    given them as inputs, so that one program serves every stage)."""
    root = ops.stack([word(seed), word(stream)])
    return fold_in(fold_in(root, step), replica)


def word(value):
    """An int (modulo 2**32) or an integer scalar tensor as a uint32 scalar."""
    return uint32(value) if isinstance(value, int) else ops.cast(value, "uint32")


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
        key = as_key(self.seed_generator.next())
        return ops.cast(augment(x, key, self.sample_rate, self.augment_config), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "seed": self.seed,
                "probabilities": self.probabilities}


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The chain as used by a training step: `(windows, step, replica) ->
    windows`, keyed per step and replica by `step_seed(seed, step, stream,
    replica)`."""

    sample_rate: int  # the records'
    seed: int = 0
    stream: int = 0
    config: AugmentConfig = AugmentConfig()

    def __call__(self, x, step, replica=0):
        key = step_seed(self.seed, step, self.stream, replica)
        return ops.cast(augment(x, key, self.sample_rate, self.config), x.dtype)
