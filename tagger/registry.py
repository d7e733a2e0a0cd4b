"""Things of one kind found by name: model families, tagging engines,
converters of released weights, dataset sources. Each kind is one
`Registry`, and one rule holds for all: a name is registered once (a
second registration of it is a ValueError), an unknown name is an
`UnknownName` error that lists the names there are, and `names()` lists
them in the order they came.

    ENGINES = Registry("engine")
    ENGINES.register("keras", Engine("keras", make))
    ENGINES.get("keras")   # the Engine
    ENGINES.names()        # ("keras",)

With `load`, an entry is registered as the name of the module that
defines the thing and `get` imports it then: listing the names imports no
module of them.
"""

from __future__ import annotations

from collections.abc import Callable

from tagger.errors import UserError


class UnknownName(UserError, ValueError):
    """A name that no entry of a registry has; the message lists those it
    has. A user's mistake where a user typed it, and a bad argument to a
    library call."""


class Registry:
    """Things of one `kind` (as messages name it: "model family") by name;
    `load(entry) -> thing`, where given, makes the thing of a registered
    entry on every `get`."""

    def __init__(self, kind: str, load: Callable | None = None):
        self.kind = kind
        self._load = load
        self._entries: dict = {}

    def register(self, name: str, entry):
        """Adds `entry` under `name`, which no entry may have already;
        returns `entry`."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Takes the entry of `name` out (a plug-in's, a test's)."""
        del self._entries[self._known(name)]

    def get(self, name: str):
        """The thing registered as `name`; UnknownName listing the names."""
        entry = self._entries[self._known(name)]
        return entry if self._load is None else self._load(entry)

    def _known(self, name: str) -> str:
        if name not in self._entries:
            raise UnknownName(f"unknown {self.kind} {name!r}; valid: "
                              f"{', '.join(self._entries)}")
        return name

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> list[tuple]:
        """(name, thing) of every entry, in order."""
        return [(name, self.get(name)) for name in self._entries]

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):  # the names: a registry is argparse's `choices` as it is
        return iter(self.names())
