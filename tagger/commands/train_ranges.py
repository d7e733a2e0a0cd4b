"""The range of every numeric train.py flag: what training's arithmetic
holds, checked when the command line is parsed and said in `--help`
(`say_ranges`) and docs/commands/train.md.

Counts (epochs, stages, steps, batches) stop at 2^31 - 1, what int32 holds
(JAX's step counters, the tensors' shapes); a model's sizes at 46340 (a
square kernel of that many units has just under 2^31 values); the seed
at 2^32 - 1 (NumPy's and Keras's seeds are 32 bits). A number that scales
the loss or the steps stays where float32 keeps the losses and updates
finite and the updates above its rounding of the weights: a learning rate
under 1e-10 changes no weight (float32 keeps 24 bits, 6e-8 of a weight),
and over 10 throws the weights past any loss; a pseudo-label weight
scales its term of the loss and its gradients (over 1e3 that term alone
steers the steps; 1e38 overflows float32), as weight decay does its own
(over 1); a width of 16 keeps samplecnn's widest SE kernel (C x 16 C
values, C = 512 x width) within int32's count; a temperature T outside [1e-3, 1e3]
only moves T^2 and the logits over T towards float32's ends (at 1e-3 the
softened targets are already hard labels, at 1e3 all within 0.004 of
0.5). Values a config file gives bypass these: a run stops at its first
non-finite loss instead (`training.epoch_steps`).
"""

from __future__ import annotations

import argparse
import dataclasses

from tagger.cli import number_in_range, parser_actions

INT32_MAX = 2**31 - 1
SEED_MAX = 2**32 - 1  # NumPy's and Keras's seeds are 32 bits
FLOAT32_ROOM = 1e38  # a float flag of unknown use: within float32 (3.4e38)
SMALLEST_RATE = 1e-10  # a learning rate whose steps change float32 weights at all


@dataclasses.dataclass(frozen=True)
class Range:
    """A flag's values: `kind` from `low` to `high` (`low_open`,
    `high_open`: that end excluded)."""

    kind: type
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def parse(self):
        """The argparse type taking the range's values, its words as
        `range_words` (for `say_ranges`)."""
        parse = number_in_range(self.kind, self.low, self.high, low_open=self.low_open,
                                high_open=self.high_open)
        parse.range_words = (f"{'(' if self.low_open else '['}{_number(self.low)}, "
                             f"{_number(self.high)}{')' if self.high_open else ']'}")
        return parse


def _number(value) -> str:
    return {INT32_MAX: "2^31 - 1", SEED_MAX: "2^32 - 1"}.get(value, f"{value:g}")


COUNT = Range(int, 1, INT32_MAX)
COUNT_FROM_0 = Range(int, 0, INT32_MAX)
SIZE = Range(int, 1, 46340)  # units: a square kernel of them counts its values in int32
RATE = Range(float, SMALLEST_RATE, 10)

# Flags whose range is their own; the others take their kind's (`BY_KIND`).
RANGES = {
    "lr": RATE, "fine_tune_lr": RATE,
    "lr_decay": Range(float, 0, 1, low_open=True),
    "momentum": Range(float, 0, 1, high_open=True),
    "seed": Range(int, 0, SEED_MAX),
    "patience": COUNT_FROM_0, "initial_stage": COUNT_FROM_0, "head_units": COUNT_FROM_0,
    "pseudo_label_weight": Range(float, 0, 1000),
    "temperature": Range(float, 1e-3, 1000),
    "weight_decay": Range(float, 0, 1),
    "width": Range(float, 0, 16, low_open=True),  # 16 x the paper's channels
    "dropout": Range(float, 0, 1, high_open=True),
}
# A model flag's range by its declared kind (`ModelFlag.type`).
BY_KIND = {"positive_int": SIZE, "positive_float": Range(float, 0, FLOAT32_ROOM, low_open=True),
           "non_negative_float": Range(float, 0, FLOAT32_ROOM), "fraction": Range(float, 0, 1)}


def ranged(dest: str, kind: str | None = None):
    """The argparse type of flag `dest`: its own range, else that of its
    model flag `kind` (`BY_KIND`), else a count's."""
    return RANGES.get(dest, BY_KIND[kind] if kind else COUNT).parse()


def say_ranges(parser) -> None:
    """Each option of `parser` whose type has a range says it in its help
    ('global mini-batch size, in [1, 2^31 - 1]')."""
    for action in parser_actions(parser):
        words = getattr(action.type, "range_words", None)
        text = action.help
        if not words or not text or text == argparse.SUPPRESS or words in text:
            continue
        default = text.rfind(" (default") if text.endswith(")") else -1
        at = default if default >= 0 else len(text)  # before the default, where stated
        action.help = f"{text[:at]}, in {words}{text[at:]}"


def check_last_rate(lr: float, lr_decay: float, num_stages: int) -> str | None:
    """Why the staged schedule's last stage, at lr x lr_decay^(num_stages - 1),
    would not train (its rate under SMALLEST_RATE), or None."""
    last = lr * lr_decay ** (num_stages - 1)
    if last >= SMALLEST_RATE:
        return None
    return (f"--lr {lr:g} x --lr-decay {lr_decay:g}^{num_stages - 1} = {last:.3g}, the "
            f"rate of the last of the {num_stages} stages, is under {SMALLEST_RATE:g}, "
            "where float32 weights no longer change; give fewer --num-stages or a larger "
            "--lr-decay")
