"""The dataset sources by name: `SOURCES`, a `tagger.registry.Registry` of
each `DatasetSource` (`tagger.datasets.source`) as the name of the module
that defines it as `SOURCE`, imported when it is asked for. Another source
is its module plus its line here, or `SOURCES.register(name, module)` from
any module; its build command is `tagger.commands.build_flags.main(name)`.
`SOURCES.get(name)` is the source; an unknown name, an UnknownName error (a
ValueError) listing the names.
"""

from __future__ import annotations

import importlib

from tagger.registry import Registry

SOURCES = Registry("dataset source", load=lambda module: importlib.import_module(module).SOURCE)
SOURCES.register("mtt", "tagger.datasets.mtt")
SOURCES.register("msd", "tagger.datasets.msd.plan")
SOURCES.register("folder", "tagger.datasets.folder")

