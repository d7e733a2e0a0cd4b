"""A table a user wrote (a labels CSV, MagnaTagATune's annotations), read
as a spreadsheet saves it: UTF-8 with or without a byte-order mark, or
UTF-16 (`fileio.names_text`); Windows, Unix or old Mac (CR) line ends;
cells separated by commas, semicolons (European Excel) or tabs, whichever
the header line uses most, and quoted where a cell holds the separator.

    read_table(path, what) -> Table     the file's rows, how they were read
    parse_table(text, what) -> Table    the same, of its text
"""

from __future__ import annotations

import csv
import io
import re
from typing import NamedTuple

from tagger import fileio
from tagger.errors import UserError

SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
READ_AS = "commas, semicolons or tabs"  # for messages: the separators read


class Table(NamedTuple):
    """The rows of a table, its header first (an empty line is an empty
    row), the separator its cells were read with, and the line of the
    file each row starts on (from 1, blank lines counted: the numbers an
    editor shows)."""

    rows: list
    separator: str
    lines: tuple = ()

    @property
    def dialect(self) -> str:
        """How the table was read, for a message: 'semicolon-separated'."""
        return f"{SEPARATORS[self.separator]}-separated"

    @property
    def header_line(self) -> str:
        """The header as it was read, its cells joined by the separator."""
        return self.separator.join(self.rows[0]) if self.rows else ""


def header_separator(line: str) -> str:
    """The separator of `SEPARATORS` that `line` holds most (a comma for
    a tie, or for none)."""
    counts = {separator: line.count(separator) for separator in SEPARATORS}
    return max(counts, key=counts.get)  # the first of the most: a comma on a tie


def parse_table(text: str, what: str) -> Table:
    """The rows of `text`, a table; `what` names it in the UserError of a
    text the csv module cannot read (a NUL byte)."""
    separator = header_separator(re.match(r"[^\r\n]*", text).group())  # the first line
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    rows, lines, start = [], [], 1
    try:
        for row in reader:  # a quoted cell may span lines: a row starts after the last row
            rows.append(row)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise UserError(f"{what} cannot be read as {SEPARATORS[separator]}-separated "
                        f"text ({error}); save it as CSV from the spreadsheet") from None
    return Table(rows, separator, tuple(lines))


def read_table(path: str, what: str) -> Table:
    """The rows of the table file at `path` (a path's bytes that are not
    UTF-8 kept as `fileio.names_text` keeps them)."""
    return parse_table(fileio.names_text(fileio.read_bytes(path)), what)
