"""Measured figures live in docs/performance.md only: a speed-up written
into a docstring or a comment goes stale while the code reads as true."""

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).parents[1]
# a measured speed: "1.08x faster", "four times slower", "0.6x the keras
# engine's speed", "112 GFLOP/s"
FIGURE = re.compile(
    r"\b\d+(\.\d+)?x (faster|slower)\b"
    r"|\b(\d+(\.\d+)?|two|three|four|five|six|seven|eight|nine|ten) times (faster|slower)\b"
    r"|\b\d+(\.\d+)?(-\d+(\.\d+)?)?x the [\w' -]*speed\b"
    r"|\b\d+(\.\d+)? ?[GT]FLOP/s\b", re.IGNORECASE)


def prose(source: str):
    """(line, text) of each comment and docstring of a module's `source`."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                yield node.body[0].lineno, docstring


def figures_in(root: Path) -> list:
    """'path:line: the figure' of every measured figure in the comments and
    docstrings of the Python files under `root`'s tagger/ and bench/."""
    found = []
    for path in sorted([*(root / "tagger").rglob("*.py"), *(root / "bench").rglob("*.py")]):
        for line, text in prose(path.read_text(encoding="utf-8")):
            for match in FIGURE.finditer(" ".join(text.split())):
                found.append(f"{path.relative_to(root)}:{line}: {match.group(0)}")
    return found


def test_no_measured_figure_is_written_into_the_code():
    assert figures_in(ROOT) == [], "move these to docs/performance.md"


def test_the_figures_it_finds(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "tagger").mkdir()
    (tmp_path / "tagger" / "a.py").write_text(
        '"""A layer: 1.08x faster,\nits step four times\nslower."""\n'
        "WIDTH = 4  # 112 GFLOP/s here\n"
        "def f():\n    '''At 0.6x the keras engine's speed; several times faster.'''\n"
        "    print('1.5x faster')  # a figure printed is a measurement's output\n")
    assert figures_in(tmp_path) == [
        "tagger/a.py:4: 112 GFLOP/s", "tagger/a.py:1: 1.08x faster",
        "tagger/a.py:1: four times slower", "tagger/a.py:6: 0.6x the keras engine's speed"]
