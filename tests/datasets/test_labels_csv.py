"""The labels CSV (tagger/datasets/labels_csv.py): what its one writer
writes its one reader reads back, for names that are not UTF-8, hold a
backslash, or are another name's escaped text; what a user or a
spreadsheet writes is read too."""

from __future__ import annotations

import io
import os

import pytest

from tagger.datasets.labels_csv import labels_text, read_labels
from tagger.errors import UserError

# names as the file system gives them (bytes), each a file of the folder
NAMES = [b"a/01.mp3", b"b/\xff\xfe.flac", b"c\\d.ogg", b"c\\\\d.ogg", b"e\\xff.wav",
         b"f,g \xc3\xa9.wav", b"h;i.wav"]
FILES = [os.fsdecode(name) for name in NAMES]


def write(tmp_path, data: bytes):
    path = tmp_path / "labels.csv"
    path.write_bytes(data)
    return str(path)


def test_what_is_written_is_read_back_name_for_name(tmp_path):
    rows = [(name, [f"tag{i}", "new age"] if i % 2 else []) for i, name in enumerate(NAMES)]
    text = labels_text(rows)
    assert text.encode("utf-8").decode("utf-8") == text  # UTF-8 text, nothing else
    assert text.splitlines()[:6] == ["path,tags", "a/01.mp3,", r"b/\xff\xfe.flac,tag1;new age",
                                     r"c\\d.ogg,", r"c\\\\d.ogg,tag3;new age", r"e\\xff.wav,"]
    read = read_labels(write(tmp_path, text.encode()), FILES)
    assert {os.fsencode(path): tags for path, tags in read.items()} == {
        name: set(tags) for name, tags in rows}


def test_a_tag_the_reader_would_refuse_is_refused():
    with pytest.raises(ValueError, match="holds a ';'"):
        labels_text([("a.mp3", ["rock;pop"])])
    with pytest.raises(ValueError, match=r"the tag 'r\\\\xf6ck' of a.mp3 is not UTF-8 text"):
        labels_text([("a.mp3", [os.fsdecode(b"r\xf6ck")])])


def test_a_path_as_a_user_writes_it_is_read(tmp_path):
    """The name's bytes themselves, and a single backslash (a name with no
    escaped twin among the files)."""
    files = [os.fsdecode(b"x\xe9.mp3"), "y\\z.mp3", "w\\xff.mp3"]
    read = read_labels(write(tmp_path, b"path,tags\nx\xe9.mp3,rock\ny\\z.mp3,jazz\n"
                                       b"w\\xff.mp3,pop\n"), files)
    assert read == {files[0]: {"rock"}, files[1]: {"jazz"}, files[2]: {"pop"}}


def test_cr_line_ends_are_lines(tmp_path):
    """An old Mac spreadsheet ends its lines with CR alone: each is a row, and
    the header's comma, not the tags' semicolons, is the separator."""
    read = read_labels(write(tmp_path, b"path,tags\ra/01.mp3,rock;pop;jazz\r"
                                       b"h;i.wav,a;b;c\r\r"), FILES)
    assert read == {"a/01.mp3": {"rock", "pop", "jazz"}, "h;i.wav": {"a", "b", "c"}}


def test_a_path_of_no_file_names_its_line(tmp_path):
    with pytest.raises(UserError, match=r"line 3: path 'b/\\\\xff.flac' is not an audio file "
                                        "of the folder"):
        read_labels(write(tmp_path, b"path,tags\na/01.mp3,\nb/\\xff.flac,\n"), FILES[:1])


def test_a_bad_row_is_named_by_its_line_in_the_file(tmp_path):
    """A quoted cell that spans lines and a blank line before the bad row:
    the line a user sees in the file is named, not the row's number."""
    path = write(tmp_path, b'path,tags\n"a/01.mp3","rock;\npop"\n\nnot/there.mp3,jazz\n')
    with pytest.raises(UserError, match=r"line 5: path 'not/there.mp3' is not an audio file"):
        read_labels(path, FILES)


@pytest.mark.slow
def test_build_folder_reads_the_labels_from_its_standard_input(tmp_path):
    """build_folder.py --labels -: the CSV another command writes, piped
    in; its tags are the records' tags."""
    import json
    import subprocess
    import sys

    from tests.checks import ROOT, write_audio

    music = tmp_path / "music"
    music.mkdir()
    for i in range(6):
        write_audio(music / f"{i}.wav", 22050 * 3, seed=i)
    csv_text = labels_text([(f"{i}.wav", ["low" if i % 2 else "high"]) for i in range(6)])
    done = subprocess.run([sys.executable, str(ROOT / "build_folder.py"), str(music),
                           "--out-dir", str(tmp_path / "records"), "--labels", "-",
                           "--no-progress"], input=csv_text, capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "records" / "dataset_info.json").read_text())
    assert sorted(info["tag_names"]) == ["high", "low"]
    assert sum(split["clips"] for split in info["splits"].values()) == 6


# pieces of names: spaces and line ends, the CSV's quote and separators, a
# spreadsheet's formula starts, backslashes and escapes, other scripts'
# spaces, bytes that are not UTF-8
PIECES = [c.encode() for c in " \t\r\n,;\"'=+-@\\x09af.é\u3000\u00a0"] + [
    b"\x80", b"\xc3", b"\xff", b"\\x", b"\\\\", b"\\xff", b"'=", b"' ", b".mp3"]


def random_names(count: int, seed: int) -> list:
    """`count` distinct relative names (bytes, a folder or two deep) made
    of PIECES, as a folder's listing can hold them: no `.` or `..` part,
    none `unsafe_path_reason` refuses (an absolute-looking `C:`)."""
    import numpy as np

    from tagger.datasets.source import unsafe_path_reason

    rng, names = np.random.default_rng(seed), {}
    while len(names) < count:
        parts = [b"".join(PIECES[i] for i in rng.integers(0, len(PIECES), rng.integers(1, 7)))
                 for _ in range(rng.integers(1, 3))]
        name = b"/".join(parts)
        if all(part not in (b".", b"..") for part in parts) and \
                unsafe_path_reason(os.fsdecode(name)) is None:
            names[name] = None
    return list(names)


def test_every_name_the_writer_writes_is_read_back_as_itself(tmp_path):
    """Random names of a wide alphabet, spaces at either end, quotes,
    formula starts and escapes included: each reads back as its own file,
    its tags with it, and no cell starts as a spreadsheet formula."""
    import csv

    names = random_names(400, seed=0)
    tags = ["rock", "=sum", "-5 dB", "@home", "'quoted", "new age"]
    rows = [(name, [tags[i % 6], tags[(i // 6) % 6]][:i % 3]) for i, name in enumerate(names)]
    text = labels_text(rows)
    assert text.encode("utf-8").decode("utf-8") == text
    for row in list(csv.reader(io.StringIO(text, newline="")))[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r\n" and not cell[0].isspace(), row
    read = read_labels(write(tmp_path, text.encode()), [os.fsdecode(n) for n in names])
    assert {os.fsencode(path): tags for path, tags in read.items()} == {
        name: set(tags) for name, tags in rows}


def test_formula_starts_and_spaces_are_written_as_text(tmp_path):
    """A spreadsheet keeps a cell after a quote as text (CWE-1236); a name
    that starts with a quote gets one more; spaces at the ends stay."""
    names = ["=1+1.mp3", "+x.mp3", "-x.mp3", "@x.mp3", "'q.mp3", "'=q.mp3", " intro.mp3",
             "outro.mp3 ", "\tx.mp3", "a'=.mp3"]
    text = labels_text([(name, ["=tag"] if name[0] == "=" else []) for name in names])
    assert text.splitlines()[1:] == ["'=1+1.mp3,'=tag", "'+x.mp3,", "'-x.mp3,", "'@x.mp3,",
                                     "''q.mp3,", "''=q.mp3,", "' intro.mp3,", "outro.mp3 ,",
                                     "'\tx.mp3,", "a'=.mp3,"]
    read = read_labels(write(tmp_path, text.encode()), names + ["intro.mp3", "outro.mp3"])
    assert read == {name: {"=tag"} if name[0] == "=" else set() for name in names}


def test_a_csv_an_earlier_version_wrote_reads_the_same(tmp_path):
    """Cells without the quote a spreadsheet formula start now gets, as an
    earlier version wrote them (or a spreadsheet saved them again), and
    names that start with a quote written as they are."""
    files = ["=x.mp3", "-y.mp3", "'q.mp3", "''r.mp3", "' s.mp3", "a/01.mp3"]
    read = read_labels(write(tmp_path, b"path,tags\n=x.mp3,=rock\n-y.mp3,\n'q.mp3,jazz\n"
                                       b"''r.mp3,\n' s.mp3,pop\n a/01.mp3 ,rock\n"), files)
    assert read == {"=x.mp3": {"=rock"}, "-y.mp3": set(), "'q.mp3": {"jazz"},
                    "''r.mp3": set(), "' s.mp3": {"pop"}, "a/01.mp3": {"rock"}}
