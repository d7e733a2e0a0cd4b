"""What a model family is, in one place: its factory, the window and front
end it reads by default, its training schedule, which training flags it
takes, its embedding layer, the engines and analyses that apply, and the
demo and tiny settings. Each model module defines one `FAMILY`; the
registry in `tagger.models` collects them, and train.py, demo.py, tag.py,
the benches and the tests read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tagger.config import LogMelConfig

ANALYSES = ("excitations", "attention")


@dataclasses.dataclass(frozen=True)
class ModelFlag:
    """A train.py flag destination read by a family: `dest` (argparse) sets
    the factory's keyword `argument`; `negate` for a `--no-X` switch."""

    dest: str
    argument: str | None = None  # default: dest
    negate: bool = False

    def value(self, given):
        return (not given) if self.negate else given

    @property
    def keyword(self) -> str:
        return self.argument or self.dest


@dataclasses.dataclass(frozen=True)
class Preset:
    """Factory arguments and training settings of a small configuration."""

    model_args: dict
    batch_size: int = 8
    lr: float = 1e-3
    epochs: int = 6


@dataclasses.dataclass(frozen=True)
class BenchCase:
    """One paper-size row of bench/bench_models.py."""

    label: str
    model_args: dict
    batch_size: int


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """One model family.

    `window_segments`: 59049-sample segments per input window by default;
    `logmel`: the in-graph front end when the model is given raw audio (None:
    a raw-waveform model, which takes `input_length` instead of
    `input_kind`/`segments`/`logmel`); `schedule`: "staged" (Kim 2018) or
    "won" (Won 2019); `flags`: the train.py flags it reads, in order (a flag
    left at None is not passed, so the factory's default applies);
    `embedding_layer`: the layer whose output is the clip embedding;
    `int8`: whether full int8 quantisation keeps its scores (tag.py
    `--engine tflite-int8`, export.py `--quantization int8`); `analyses`:
    which of ANALYSES apply (excitations need SE blocks); `demo`: demo.py's
    setting; `tiny`: the smallest factory arguments the tests build.
    `segment_length`: samples per record segment that a spectrogram
    family's window counts in (59049 but for a paper that read another
    unit: FCN's 29 s at 16 kHz); train.py refuses records of another
    length. `sample_rate`: the rate of the paper's front end and window
    (None: the paper's is the datasets' 22050 Hz); records built at it
    (`build_mtt.py --sample-rate`) reproduce the paper's input.
    """

    name: str
    build: Callable
    paper: str
    window_segments: int
    logmel: LogMelConfig | None
    schedule: str
    flags: tuple[ModelFlag, ...]
    embedding_layer: str
    int8: bool
    analyses: tuple[str, ...]
    demo: Preset
    tiny: dict
    bench: tuple[BenchCase, ...]
    segment_length: int = 59049
    sample_rate: int | None = None

    @property
    def raw_waveform(self) -> bool:
        return self.logmel is None

    def model_args(self, values) -> dict:
        """Factory arguments from parsed flags (`values.<dest>`): every flag
        of this family whose value is not None."""
        args = {}
        for flag in self.flags:
            given = getattr(values, flag.dest)
            if given is not None:
                args[flag.keyword] = flag.value(given)
        return args

    @property
    def flag_dests(self) -> tuple[str, ...]:
        return tuple(flag.dest for flag in self.flags)
