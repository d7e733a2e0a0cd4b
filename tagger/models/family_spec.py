"""What a model family is, in one place: its factory, its input side (a
`Preprocessor`: window, sample rate, front end), its training schedule,
the train.py flags it takes (declared here: train.py builds its parser
from them), its embedding layer, the engines and analyses that apply, and
the demo and tiny settings. Each model module defines one `FAMILY`; the
registry in `tagger.models` collects them, and train.py, demo.py, tag.py,
the benches and the tests read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

ANALYSES = ("excitations", "attention")


@dataclasses.dataclass(frozen=True)
class ModelFlag:
    """A train.py flag, declared: `dest` (`--n-channels` for "n_channels")
    sets the factory keyword `argument` (default: dest); `type`: a value
    kind of train_ranges.BY_KIND (tagger/commands), "choice" (of `choices`) or "switch" (a
    `--no-X` flag passing False); `default` None: not passed, the factory's
    applies. Families sharing a flag share its declaration (the constants
    below) and may give it their own `argument` and `help`."""

    dest: str
    type: str = "positive_int"
    help: str = ""
    argument: str | None = None
    default: object = None
    choices: tuple | None = None
    metavar: str | None = None

    def value(self, given):
        return (not given) if self.type == "switch" else given

    @property
    def keyword(self) -> str:
        return self.argument or self.dest



DROPOUT_FLAG = ModelFlag("dropout", "fraction", "dropout before the output, in [0, 1)",
                    metavar="DO")
N_CHANNELS_FLAG = ModelFlag("n_channels", help="channel unit of the blocks", metavar="N")
ATTENTION_LAYERS_FLAG = ModelFlag("attention_layers", help="encoder layers", metavar="N")
ATTENTION_HEADS_FLAG = ModelFlag("attention_heads", help="attention heads", metavar="N")


@dataclasses.dataclass(frozen=True)
class Preset:
    """Factory arguments and training settings of a small configuration."""

    model_args: dict
    batch_size: int = 8
    lr: float = 1e-3
    epochs: int = 6


@dataclasses.dataclass(frozen=True)
class BenchCase:
    """One paper-size row of bench/bench_models.py; `hand_flops`: check the
    graph's FLOP count against a hand count (1-D convolutions, dense)."""

    label: str
    model_args: dict
    batch_size: int
    hand_flops: bool = False


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """One model family.

    `preprocessor`: its input (`spectrogram_input.Preprocessor`: default
    window, the records' segment length and the paper's sample rate, the
    log-mel front end or None for a raw-waveform model, which takes
    `input_length`); train.py refuses records of another segment length.
    `schedule`: one of `tagger.config.SCHEDULES` (default: adam_then_sgd);
    `flags`: its train.py flags; `embedding_layer`: the layer whose output
    is the clip embedding (default: `embedding`); `int8`: whether full int8
    quantisation keeps its scores (tag.py `--engine tflite-int8`, export.py
    `--quantization int8`; default: no, int8 quantises only the
    convolutions over the log-mel image, `quantize.int8_scope`);
    `analyses`: which of ANALYSES
    apply (default: none); `se_blocks`: for a family with a `block`
    argument, the block types with SE excitations (the excitations apply
    to those only); `run_name_args`: the factory arguments that name a
    run folder after the family (a string value as itself, True as the
    argument's name; samplecnn-rese-multi); `demo`: demo.py's setting;
    `tiny`: the smallest factory arguments the tests build.
    """

    name: str
    build: Callable
    paper: str
    preprocessor: Preprocessor
    flags: tuple[ModelFlag, ...]
    demo: Preset
    tiny: dict
    bench: tuple[BenchCase, ...]
    schedule: str = "adam_then_sgd"
    embedding_layer: str = EMBEDDING_LAYER
    int8: bool = False
    analyses: tuple[str, ...] = ()
    se_blocks: tuple[str, ...] = ()
    run_name_args: tuple[str, ...] = ()

    # The preprocessor's settings, read by name across the project.
    raw_waveform = property(lambda self: self.preprocessor.raw_waveform)
    logmel = property(lambda self: self.preprocessor.logmel)
    window_segments = property(lambda self: self.preprocessor.segments)
    segment_length = property(lambda self: self.preprocessor.segment_length)
    sample_rate = property(lambda self: self.preprocessor.sample_rate)  # the paper's, in Hz

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

    def default(self, argument: str):
        """The value a configuration has for factory `argument` when it is
        not given: its flag's default, else the factory's."""
        import inspect

        for flag in self.flags:
            if flag.keyword == argument and flag.default is not None:
                return flag.default
        parameter = inspect.signature(self.build).parameters.get(argument)
        return None if parameter is None else parameter.default

    def block(self, model_args: dict) -> str | None:
        """The block type of a configuration (None: the family has no
        `block` argument)."""
        if "block" not in self.flag_dests:
            return None
        return model_args.get("block", self.default("block"))

    def analyses_for(self, model_args: dict) -> tuple[str, ...]:
        """The analyses that apply to a configuration: without SE blocks,
        no excitations."""
        block = self.block(model_args)
        return tuple(a for a in self.analyses if a != "excitations" or block is None
                     or block in self.se_blocks)

    def run_name(self, model_args: dict) -> str:
        """The run folder's name: the family, then `run_name_args`."""
        parts = [self.name]
        for argument in self.run_name_args:
            value = model_args.get(argument, self.default(argument))
            if isinstance(value, str):
                parts.append(value)
            elif value is True:
                parts.append(argument)
        return "-".join(parts)
