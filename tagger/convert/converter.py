"""One kind of original release and how it converts, defined in the kind's
own module and registered in `tagger.convert.CONVERTERS`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a converter: `--<name>`, one of `values`."""

    name: str  # the flag without its dashes, and the registry entries' option key
    values: tuple
    required: bool = False  # else None: read from the file
    help: str = ""  # convert_weights.py's help for this converter


@dataclasses.dataclass(frozen=True)
class Converter:
    """`convert(path, **options) -> (model, info)`: the original at `path`
    (a file, or also a folder where `reads_folder`) as a model of ours and
    its info (model, model_args, sample_rate, window_segments, logmel,
    default_tags, ...); only the options given are passed.
    `default_tags(options)`: those tag names, in output order, without
    converting (a pretrained entry's tags; `options` a dict)."""

    name: str  # --from NAME
    convert: Callable
    default_tags: Callable[[dict], tuple]
    options: tuple = ()  # Option, in the order they are checked
    reads_folder: bool = False

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)
