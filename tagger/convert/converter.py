"""One kind of original release and how it converts: `Converter`, defined
in the kind's own module and registered in `tagger.convert.CONVERTERS`.

`convert_weights.py --from NAME` and a pretrained registry entry's
`converter` name it; its `options` are the flags (`--block`, `--model`,
...) and the registry entries' options it reads, checked by
`tagger.convert.convert` before `convert` runs.
"""

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
    its info (model, model_args, sample_rate, ...); only the options given
    are passed. `default_tags(options)`: the output order's tag names for
    those options (a dict), the names the converted model carries unless
    others are given."""

    name: str  # --from NAME
    convert: Callable
    default_tags: Callable[[dict], tuple]
    options: tuple = ()  # Option, in the order they are checked
    reads_folder: bool = False

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)
