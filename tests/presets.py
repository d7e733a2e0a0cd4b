"""The tiny settings tests share: small enough that a test runs in seconds.

The model families' tiny arguments live in the registry
(`tagger.models.family(name).tiny`); here are the rest: the synthetic
datasets the session fixtures make, tiny log-mel front ends, tiny models'
arguments and a tiny training run.
"""

from __future__ import annotations

from tagger.config import LogMelConfig, TrainConfig
from tagger.models import family

# The shared synthetic MagnaTagATune (tests/conftest.py): 40 clips of 6 s
# (two 59049-sample segments each at 22050 Hz), 4 clips a shard.
SYNTHETIC_CLIPS = 40
SYNTHETIC_SECONDS = 6.0
CLIPS_PER_SHARD = 4

# The shared synthetic MSD (tests/datasets/msd/conftest.py): 60 tracks of 4 s
# (one 59049-sample segment each).
MSD_TRACKS = 60
MSD_SECONDS = 4.0
MSD_CLIPS_PER_SHARD = 8

# The records' audio: 59049-sample segments at 22050 Hz.
SAMPLE_RATE = 22050
SEGMENT = 59049

# A log-mel front end for tiny spectrogram models: 58 frames a segment.
TINY_LOGMEL = LogMelConfig(n_mels=16, n_fft=512, hop_length=1024)
# The shared log-mel records (tests/conftest.py `logmel_records`).
RECORDS_LOGMEL = LogMelConfig(n_mels=32, n_fft=512, hop_length=256, f_max=8000.0)

# Tiny models' arguments for the records' 59049-sample segments.
TINY_SE = {"block": "se", "multi": True, "alpha": 2, "width": 1 / 16}
TINY_SAMPLECNN = family("samplecnn").tiny
# The tiny sample-level CNN of the tests of a training run (its loop, stages,
# checkpoints, resuming, strategies): basic blocks, which build and compile
# in half the CPU time of the family's tiny residual SE ones (their training
# is the tests of tests/models and test_training_graph.py); the head's
# dropout keeps the masks' seeds in every step.
TINY_RUN_SAMPLECNN = {**TINY_SAMPLECNN, "block": "basic"}
TINY_SELF_ATTENTION = {"conv_channels": 2, "attention_channels": 16, "attention_heads": 2,
                       "attention_layers": 2}
TINY_TRANSFORMER = {"conv_ndim": 4, "attention_ndim": 16, "attention_heads": 2,
                    "attention_layers": 2}


def tiny_train_config(records, train_dir, **overrides) -> TrainConfig:
    """Two stages of one three-step epoch of the tiny sample-level CNN, batch 8,
    shuffled in blocks of 64 segments: the default block, 2000 segments of
    59049 int16 samples (236 MB, held while the next is assembled), is many
    passes over the synthetic dataset for three steps."""
    settings = dict(data_dir=records, train_dir=str(train_dir), model="samplecnn",
                    model_args=dict(TINY_RUN_SAMPLECNN), batch_size=8, num_stages=2,
                    max_epochs_per_stage=1, steps_per_epoch=3, strategy="default",
                    shuffle_segments=64, progress=False)
    settings.update(overrides)
    return TrainConfig(**settings)


# The tagging tests' tiny taggers and their folder of audio
# (tests/inference/conftest.py: `music`, `cnn`, `spectrogram`).
TAGGER_TAGS = ["guitar", "classical", "slow", "techno", "strings", "drums", "electronic",
               "rock"]
MUSIC_TOP_LEVEL = ["a.wav", "b.flac", "c.ogg", "d.mp3", "long.flac", "short.wav"]
MUSIC_NESTED = ["sub/a.wav", "sub/e.aiff"]
# name: (seconds, sample rate, channels, soundfile format, subtype, tone Hz)
MUSIC_AUDIO = {
    "a.wav": (7.0, 22050, 1, "WAV", "PCM_16", 220.0),
    "b.flac": (6.5, 44100, 2, "FLAC", "PCM_16", 440.0),
    "c.ogg": (8.0, 16000, 1, "OGG", "VORBIS", 880.0),
    "d.mp3": (9.0, 16000, 1, "MP3", "MPEG_LAYER_III", 330.0),
    "long.flac": (60.0, 22050, 1, "FLAC", "PCM_16", 1200.0),
    "short.wav": (0.5, 22050, 1, "WAV", "FLOAT", 660.0),
    ".hidden.wav": (1.0, 22050, 1, "WAV", "PCM_16", 100.0),
    "sub/a.wav": (3.0, 11025, 1, "WAV", "PCM_16", 150.0),
    "sub/e.aiff": (4.0, 22050, 1, "AIFF", "PCM_16", 2000.0),
}
