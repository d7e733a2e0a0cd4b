"""tagger.registry: one rule for every kind of thing found by name."""

from __future__ import annotations

import pytest

from tagger.errors import UserError
from tagger.registry import Registry, UnknownName


def test_a_name_is_registered_once_and_listed_in_order():
    colours = Registry("colour")
    assert colours.register("red", 1) == 1
    colours.register("blue", 2)
    with pytest.raises(ValueError, match="^colour 'red' is registered already$"):
        colours.register("red", 3)
    assert colours.names() == ("red", "blue") == tuple(colours)
    assert colours.items() == [("red", 1), ("blue", 2)]
    assert colours.get("red") == 1 and "blue" in colours and "green" not in colours


def test_an_unknown_name_lists_the_names_there_are():
    colours = Registry("colour")
    colours.register("red", 1)
    colours.register("blue", 2)
    with pytest.raises(UnknownName) as unknown:
        colours.get("green")
    assert str(unknown.value) == "unknown colour 'green'; valid: red, blue"
    assert isinstance(unknown.value, UserError) and isinstance(unknown.value, ValueError)
    with pytest.raises(UnknownName, match="^unknown colour 'green'; valid: red, blue$"):
        colours.unregister("green")
    colours.unregister("red")
    assert colours.names() == ("blue",)
    colours.register("red", 3)  # free again
    assert colours.get("red") == 3


def test_a_loaded_entry_is_made_when_it_is_asked_for():
    loaded = []
    modules = Registry("module", load=lambda entry: loaded.append(entry) or entry.upper())
    modules.register("a", "pkg.a")
    assert modules.names() == ("a",) and loaded == []
    assert modules.get("a") == "PKG.A" and loaded == ["pkg.a"]
