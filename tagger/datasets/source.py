"""What a dataset source is, in the shape of a TFDS builder: a name, a
version, a settings dataclass (validated in its `__post_init__`, its fields
declared with `setting` as the flags of the source's build command), the
manual-download instructions, and `plan(data_dir, settings, progress)` ->
`DatasetPlan`. MagnaTagATune (tagger.datasets.mtt), the Million Song
Dataset (tagger.datasets.msd) and a folder of audio (tagger.datasets.folder)
are the sources; another dataset is one more module that defines a
`DatasetSource` and one registration in `tagger.datasets.SOURCES`, and a
console script.

`tagger.datasets.build.build` writes any source's plan as records;
`tagger.commands.build_flags` makes any source's build command. Every
source refuses a path from its annotations that would leave its audio
folder (`unsafe_path_reason`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable


def setting(default, help: str, **flag):
    """A field of a settings dataclass that is also a flag of the build
    command: `--name-with-dashes` (or `flag="--other"`) with `default` and
    `help`. The flag's type is the default's (a bool is a switch), checked
    against `low`/`high` when given; `metavar`, `choices`, `nargs` and
    `action` go to argparse as they are. `only_with=(field, value, why)`:
    the flag applies only when that setting has that value (it is None
    unless given: let `help` state its default); `why`, a format string
    over the flags' values, says why in the error. (One such condition per
    source.)"""
    return dataclasses.field(default=default, metadata={"flag": dict(help=help, **flag)})


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """One dataset. `plan(data_dir, settings, progress)` reads its
    annotations and returns the `DatasetPlan`; `settings_type()` is its
    settings dataclass with the paper's choices as defaults; `version`
    changes when the same files and settings would give another plan;
    `located`: settings that say where the data lies, not what it is, left
    out of dataset_info.json so that a copy of the data elsewhere (gs://, a
    second disk) builds the same bytes. For the build command: `title`
    (what it turns into records), `data_dir_help` and `data_dir_default`
    (None: the data dir is a required argument, FOLDER) and `max_seconds`,
    the default cut of long files."""

    name: str
    version: str
    settings_type: type
    plan: Callable
    manual_download: str
    title: str
    data_dir_help: str
    data_dir_default: str | None = "dataset"
    max_seconds: float = 60.0
    located: tuple = ()

    def describe_settings(self, settings) -> dict:
        """The settings as dataset_info.json records them (JSON types)."""
        return {name: value for name, value in dataclasses.asdict(settings).items()
                if name not in self.located}


def unsafe_path_reason(path: str) -> str | None:
    """Why a relative audio path from an annotations file must not be
    opened (it is empty, absolute, or climbs out of the audio folder), or
    None when it is safe."""
    if not path.strip():
        return "is empty"
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or "://" in path:
        return "is absolute"
    if "\0" in path:
        return "holds a NUL character"
    if any(part == ".." for part in re.split(r"[/\\]", path)):
        return "climbs out of the audio folder"
    return None
