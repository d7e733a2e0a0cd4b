"""The labels CSV: the tags of some files of a folder, one writer and one
reader (build_folder.py --labels reads it; `beet musictag --labels` and
train.py --suggest's suggested.csv write it).

    path,tags
    rock/album1/01.mp3,rock;guitar
    jazz/02.flac,

Paths relative to the folder, tags separated by ';' (a file with none
allowed: labelled, no tag). A path is written as `fileio.path_text`
writes it: a byte of a name that is not UTF-8 as `\\xNN`, a backslash
doubled, so the file is UTF-8 text a spreadsheet keeps. The reader maps
such a path back (`fileio.path_from_text`); it also takes a path as a
user or a spreadsheet writes it: the name's bytes themselves, and a
backslash not doubled where the path so read names no file and the
path as written does. Cells may be separated by commas, semicolons or
tabs (`user_table`).

    labels_text(rows) -> str                 the CSV of (path, [tag, ...]) rows
    read_labels(path, files) -> {path: set}  the tags of the listed files

`-` as the path reads the CSV from the standard input, once a process
(`beet musictag --labels genres | build_folder.py FOLDER --labels -`).
"""

from __future__ import annotations

import csv
import functools
import io
import sys

from tagger import fileio
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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LABELS_HEADER)
    for path, tags in rows:
        for tag in tags:
            if TAG_SEPARATOR in tag or not fileio.is_utf8(tag):
                raise ValueError(f"the tag {fileio.path_text(tag)!r} of "
                                 f"{fileio.path_text(path)} "
                                 + ("holds a ';', which separates tags in a labels CSV"
                                    if TAG_SEPARATOR in tag else "is not UTF-8 text"))
        writer.writerow([fileio.path_text(path), TAG_SEPARATOR.join(t.strip() for t in tags)])
    return out.getvalue()


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
        name = fileio.path_from_text(written)
        if name not in known and written in known:
            name = written  # a backslash as a user types it
        problem = unsafe_path_reason(name)
        if problem is None and name not in known:
            problem = "is not an audio file of the folder"
        if problem:
            raise UserError(f"--labels {path!r} line {line}: path {written!r} {problem}; paths "
                            "are relative to the folder, e.g. album/01.mp3")
        if name in tags:
            raise UserError(f"--labels {path!r} line {line}: {written!r} is listed twice")
        tags[name] = {t.strip() for t in row[1].split(TAG_SEPARATOR) if t.strip()}
    if not tags:
        raise UserError(f"--labels {path!r} lists no file; expected one row per labelled "
                        "file after the header path,tags")
    return tags
