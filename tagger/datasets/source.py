"""What a dataset source is, in the shape of a TFDS builder: a name, a
version, a settings dataclass (validated in its `__post_init__`), the
manual-download instructions, and `plan(data_dir, settings, progress)` ->
`DatasetPlan`. MagnaTagATune (tagger.datasets.mtt) and the Million Song
Dataset (tagger.datasets.msd) are the two sources; a third dataset is one
more module that defines a `DatasetSource` and one line in `SOURCES`.

`tagger.datasets.build.build` writes any source's plan as records.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

SOURCES = {"mtt": "tagger.datasets.mtt", "msd": "tagger.datasets.msd.plan"}


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """One dataset. `plan(data_dir, settings, progress)` reads its
    annotations and returns the `DatasetPlan`; `settings_type()` is its
    settings dataclass with the paper's choices as defaults; `version`
    changes when the same files and settings would give another plan;
    `located`: settings that say where the data lies, not what it is, left
    out of dataset_info.json so that a copy of the data elsewhere (gs://, a
    second disk) builds the same bytes."""

    name: str
    version: str
    settings_type: type
    plan: Callable
    manual_download: str
    located: tuple = ()

    def describe_settings(self, settings) -> dict:
        """The settings as dataset_info.json records them (JSON types)."""
        return {name: value for name, value in dataclasses.asdict(settings).items()
                if name not in self.located}


def source(name: str) -> DatasetSource:
    """The source `name` (mtt, msd); a ValueError listing the valid names."""
    if name not in SOURCES:
        raise ValueError(f"unknown dataset source {name!r}; valid: {', '.join(SOURCES)}")
    return importlib.import_module(SOURCES[name]).SOURCE
