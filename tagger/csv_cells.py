"""CSV as the project writes it: one cell writer for every CSV file (the
tag report, the taggram index, the library export, the labels CSV,
eval.py's per-tag table, a run's history).

A text cell that starts with `=`, `+`, `-`, `@`, a quote or whitespace
gets a quote (TEXT_MARK) before it, so a spreadsheet keeps it as text
rather than run it as a formula (OWASP's remedy for CSV injection,
CWE-1236); `from_text_cell` drops it again, so `=1+2.wav` reads back as
itself. A number (int, float, NumPy's) is written as it is, a negative one
too: a number is no formula. None is an empty cell. A cell holding a
comma, a quote or a line end (a CR too, which the csv module's writer
leaves bare when its lines end in LF) is quoted, its quotes doubled.

    csv_line(cells) -> str        one line of cells, ending in LF
    csv_text(rows) -> str         the lines of `rows`
    frame_text(frame) -> str      a pandas DataFrame's columns and rows (no index)
    text_cell(text) -> str        `text` as a cell a spreadsheet keeps as text
    from_text_cell(cell) -> str   the text `text_cell` made `cell` of
"""

from __future__ import annotations

import numbers

QUOTE = '"'  # a CSV's
TEXT_MARK = "'"  # before a cell a spreadsheet would read as a formula: it keeps it as text
FORMULA_STARTS = "=+-@" + TEXT_MARK  # and whitespace (a tab, a CR, a space)


def text_cell(text: str) -> str:
    """`text` as a cell a spreadsheet keeps as text: with TEXT_MARK before
    it when it starts with one of FORMULA_STARTS or whitespace (a formula
    to a spreadsheet, or a start a reader would take for a user's
    spacing); `from_text_cell` undoes it."""
    return TEXT_MARK + text if _marked(text) else text


def from_text_cell(cell: str) -> str:
    """The text `text_cell` made `cell` of (a cell without its mark, as an
    earlier version wrote it or a spreadsheet saves it again, is itself)."""
    rest = cell[1:]
    return rest if cell[:1] == TEXT_MARK and _marked(rest) else cell


def _marked(text: str) -> bool:
    return bool(text) and (text[0] in FORMULA_STARTS or text[0].isspace())


def _cell(value) -> str:
    """One cell's text: a number as it is, None empty, any other value as
    a `text_cell`."""
    if value is None:
        return ""
    if isinstance(value, numbers.Number):
        return str(value)
    return text_cell(str(value))


def csv_line(cells) -> str:
    """A CSV line of `cells` (see the module docstring), ending in LF."""
    texts = (_cell(value) for value in cells)
    return ",".join(f'{QUOTE}{text.replace(QUOTE, QUOTE * 2)}{QUOTE}' if any(
        c in text for c in ",\r\n" + QUOTE) else text for text in texts) + "\n"


def csv_text(rows) -> str:
    """The CSV lines of `rows` (each a sequence of cells), the header first."""
    return "".join(csv_line(row) for row in rows)


def frame_text(frame) -> str:
    """The CSV of a pandas DataFrame: its column names, then its rows,
    without the index, a missing value (NaN) an empty cell as pandas
    writes it."""
    cells = frame.astype(object).where(frame.notna(), None)
    return csv_text([list(frame.columns), *cells.itertuples(index=False)])
