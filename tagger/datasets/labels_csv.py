"""The labels CSV: the tags of some files of a folder, one writer and one
reader (build_folder.py --labels reads it; `beet musictag --labels` and
train.py --suggest's suggested.csv write it).

    path,tags
    rock/album1/01.mp3,rock;guitar
    jazz/02.flac,

Paths relative to the folder, tags separated by ';' (a file with none
allowed: labelled, no tag). A path is written as `fileio.path_text`
writes it: a byte of a name that is not UTF-8 as `\\xNN`, a backslash
doubled, so the file is UTF-8 text a spreadsheet keeps; a cell that
starts with `=`, `+`, `-`, `@`, a quote or a space gets a quote before
it, so a spreadsheet keeps it as text rather than run it as a formula
(`tagger.csv_cells`, the writer of every CSV), and the reader drops that
quote. The reader maps such a path back (`fileio.path_from_text`), a
path's spaces at either end kept; it also takes a path as a user or a
spreadsheet writes it, where the path as written names no file: with
spaces around it, with the name's bytes themselves, with a backslash not
doubled, or with a quote that an earlier version did not add. Cells may
be separated by commas, semicolons or tabs (`user_table`).

    labels_text(rows) -> str                 the CSV of (path, [tag, ...]) rows
    tag_problem(tag) -> str | None           why a tag cannot be written
    read_labels(path, files) -> {path: set}  the tags of the listed files

`-` as the path reads the CSV from the standard input, once a process
(`beet musictag --labels genres | build_folder.py FOLDER --labels -`).
"""

from __future__ import annotations

import functools
import sys

from tagger import fileio
from tagger.csv_cells import csv_line, from_text_cell
from tagger.datasets.source import unsafe_path_reason
from tagger.datasets.user_table import READ_AS, SEPARATORS, parse_table, read_table
from tagger.errors import UserError

LABELS_HEADER = ["path", "tags"]
TAG_SEPARATOR = ";"
STANDARD_INPUT = "-"


@functools.cache
def _standard_input() -> str:
    """The standard input's text, read once (a name's bytes that are not
    UTF-8 kept as `fileio.names_text` keeps them)."""
    return fileio.names_text(sys.stdin.buffer.read())


def labels_text(rows) -> str:
    """The labels CSV of `rows` ((path relative to the folder, str or
    bytes, [tag, ...])); a tag holding the ';' that separates them, or
    that is not UTF-8 text (only a path may hold other bytes), is a
    ValueError."""
    lines = [csv_line(LABELS_HEADER)]
    for path, tags in rows:
        for tag in tags:
            problem = tag_problem(tag)
            if problem:
                raise ValueError(f"the tag {fileio.path_text(tag)!r} of "
                                 f"{fileio.path_text(path)} {problem}")
        lines.append(csv_line([fileio.path_text(path),
                               TAG_SEPARATOR.join(t.strip() for t in tags)]))
    return "".join(lines)


def tag_problem(tag: str) -> str | None:
    """Why `tag` cannot be a tag of a labels CSV (it holds the ';' that
    separates them, or is not UTF-8 text: only a path may hold other
    bytes), or None."""
    if TAG_SEPARATOR in tag:
        return "holds a ';', which separates tags in a labels CSV"
    return None if fileio.is_utf8(tag) else "is not UTF-8 text"


def read_labels(path: str, files: list) -> dict:
    """{relative path: set of tags} of the labels CSV at `path` (--labels),
    each path one of `files` (the folder's, as `os.fsdecode` holds them);
    a UserError names the line of anything else."""
    if path == STANDARD_INPUT:
        table = parse_table(_standard_input(), "--labels - (the standard input)")
    elif not fileio.exists(path) or fileio.isdir(path):
        raise UserError(f"--labels {path!r} is not a file; expected a CSV with a header "
                        "path,tags, or - for the standard input")
    else:
        table = read_table(path, f"--labels {path!r}")  # a path may hold any bytes
    rows = table.rows
    if not rows or [c.strip() for c in rows[0]] != LABELS_HEADER:
        raise UserError(f"--labels {path!r}: expected the header path,tags (its cells "
                        f"separated by {READ_AS}), got "
                        f"{table.header_line if rows else 'an empty file'!r}"
                        + (f", read as {table.dialect}" if rows else ""))
    known, tags = set(files), {}
    for line, row in zip(table.lines[1:], rows[1:]):  # the line each row starts on
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise UserError(f"--labels {path!r} line {line}: expected 2 columns "
                            f"(path{table.separator}tags), got {len(row)}; quote a cell "
                            f"that holds a {SEPARATORS[table.separator]}")
        written = row[0].strip()
        if not fileio.is_utf8(row[1]):
            raise UserError(f"--labels {path!r} line {line}: the tags of {written!r} are not "
                            "UTF-8 text; only a path may hold other bytes (a file's name as "
                            "another system wrote it)")
        name = _file_named(row[0], known)
        problem = unsafe_path_reason(name)
        if problem is None and name not in known:
            problem = "is not an audio file of the folder"
        if problem:
            raise UserError(f"--labels {path!r} line {line}: path {written!r} {problem}; paths "
                            "are relative to the folder, e.g. album/01.mp3")
        if name in tags:
            raise UserError(f"--labels {path!r} line {line}: {written!r} is listed twice")
        tags[name] = {t.strip() for t in from_text_cell(row[1].strip()).split(TAG_SEPARATOR)
                      if t.strip()}
    if not tags:
        raise UserError(f"--labels {path!r} lists no file; expected one row per labelled "
                        "file after the header path,tags")
    return tags


def _file_named(cell: str, known: set) -> str:
    """The file of `known` that the path cell `cell` names: as the writer
    wrote it (`csv_cells.text_cell`, `fileio.path_text`), else with the spaces
    around it dropped, else as it is (a backslash as a user types it, a
    quote an earlier version wrote without its mark). None naming a file:
    the second reading, for the message."""
    readings = [fileio.path_from_text(from_text_cell(text)) for text in (cell, cell.strip())]
    return next((name for name in [*readings, cell.strip()] if name in known), readings[1])
