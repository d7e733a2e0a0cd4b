"""The labels CSV (tagger/datasets/labels_csv.py): what its one writer
writes its one reader reads back, for names that are not UTF-8, hold a
backslash, or are another name's escaped text; what a user or a
spreadsheet writes is read too."""

from __future__ import annotations

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
