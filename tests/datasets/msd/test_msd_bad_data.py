"""build_msd.py on data of the wrong type or too small to split: one line
each, exit 2, never a silent wrong build or a numpy traceback."""

from __future__ import annotations

import os
import shutil
import sqlite3

import numpy as np
import pytest

from tagger.commands import build_msd
from tagger.datasets.pickle2 import dump_py2, load_py2


def _copy(data_dir, tmp_path):
    """A copy of the synthetic MSD's files (audio linked, not copied)."""
    copy = tmp_path / "msd"
    copy.mkdir()
    for name in os.listdir(data_dir):
        source = os.path.join(data_dir, name)
        if name == "audio":
            os.symlink(source, copy / name)
        elif os.path.isdir(source):
            shutil.copytree(source, copy / name)
        else:
            shutil.copy(source, copy / name)
    return copy


def _error(capsys, argv, tmp_path):
    code = build_msd.main([*argv, "--out-dir", str(tmp_path / "out"), "--no-progress",
                           "--workers", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out" / "dataset_info.json").exists()
    return err


def test_tag_values_stored_as_text_are_refused(synthetic_msd, tmp_path, capsys):
    data_dir = _copy(synthetic_msd[0], tmp_path)
    con = sqlite3.connect(data_dir / "lastfm_tags.db")
    con.executescript("ALTER TABLE tid_tag RENAME TO old; "
                      "CREATE TABLE tid_tag (tid INT, tag INT, val TEXT); "
                      "INSERT INTO tid_tag SELECT tid, tag, "
                      "CAST(CAST(val AS INT) AS TEXT) FROM old; "
                      "DROP TABLE old;")
    con.commit()
    con.close()
    err = _error(capsys, ["--data-dir", str(data_dir)], tmp_path)
    assert "lastfm_tags.db': column 'val' of table 'tid_tag' holds text (e.g. '" in err
    assert "expected numbers from 0 to 100" in err


def test_a_7digital_id_that_is_not_a_number_is_refused(synthetic_msd, tmp_path, capsys):
    data_dir = _copy(synthetic_msd[0], tmp_path)
    con = sqlite3.connect(data_dir / "track_metadata.db")
    con.execute("UPDATE songs SET track_7digitalid = 'n/a' WHERE ROWID = 3")
    con.commit()
    con.close()
    err = _error(capsys, ["--data-dir", str(data_dir)], tmp_path)
    assert ("track_metadata.db': column 'track_7digitalid' of table 'songs' holds text "
            "(e.g. 'n/a')") in err


def test_one_artist_cannot_be_split_by_artist(synthetic_msd, tmp_path, capsys):
    data_dir = _copy(synthetic_msd[0], tmp_path)
    con = sqlite3.connect(data_dir / "track_metadata.db")
    con.execute("UPDATE songs SET artist_id = 'ARONLYONEARTIST000'")
    con.commit()
    con.close()
    err = _error(capsys, ["--data-dir", str(data_dir)], tmp_path)
    assert "the lastfm split leaves val and test empty (tracks: train " in err
    assert ", val 0, test 0)" in err and "found 1" in err


def test_cals_split_files_that_leave_a_split_empty_are_refused(synthetic_msd, tmp_path,
                                                               capsys):
    data_dir = _copy(synthetic_msd[0], tmp_path)
    np.save(data_dir / "cals" / "valid_ids.npy", np.array([], "<U18"))
    np.save(data_dir / "cals" / "valid_binaries.npy", np.zeros((0, 50), np.uint8))
    err = _error(capsys, ["--data-dir", str(data_dir), "--split", "cals",
                          str(data_dir / "cals")], tmp_path)
    assert "the cals split leaves val empty (tracks: train " in err and ", val 0, test " in err


def test_cals_binaries_stored_as_text_are_refused(synthetic_msd, tmp_path, capsys):
    data_dir = _copy(synthetic_msd[0], tmp_path)
    path = data_dir / "cals" / "test_binaries.npy"
    np.save(path, np.load(path).astype(str))
    err = _error(capsys, ["--data-dir", str(data_dir), "--split", "cals",
                          str(data_dir / "cals")], tmp_path)
    assert f"{str(path)!r} holds text (e.g. '" in err and ", a <U3 array; " in err
    assert "expected a (" in err and "matrix of 0/1 numbers" in err


def test_classic_tag_vectors_of_text_are_refused(synthetic_msd, tmp_path, capsys):
    data_dir = _copy(synthetic_msd[0], tmp_path)
    path = data_dir / "classic" / "msd_id_to_tag_vector.cP"
    vectors = load_py2(path.read_bytes())
    path.write_bytes(dump_py2({k: [str(int(x)) for x in np.ravel(v)]
                               for k, v in vectors.items()}))
    err = _error(capsys, ["--data-dir", str(data_dir), "--split", "classic",
                          str(data_dir / "classic")], tmp_path)
    assert "in msd_id_to_tag_vector.cP holds text (e.g. '" in err
    assert "expected 50 numbers (0 or 1)" in err


@pytest.mark.parametrize("case, message", [
    ("folder", "50tagList.txt' is a folder; expected the classic split's tag list"),
    ("latin-1", "50tagList.txt' is not UTF-8 text (byte 12); expected the classic split's "
                "tag list"),
    ("twice", "50tagList.txt': tag 'rock' is listed twice (lines 1 and 3); each tag must "
              "appear once"),
])
def test_a_classic_tag_list_that_cannot_name_the_tags_is_refused(synthetic_msd, tmp_path,
                                                                capsys, case, message):
    data_dir = _copy(synthetic_msd[0], tmp_path)
    path = data_dir / "classic" / "50tagList.txt"
    names = path.read_text().splitlines()
    assert names[:3] == ["rock", "pop", "alternative"] and len(names) == 50
    path.unlink()
    if case == "folder":
        path.mkdir()
    else:
        names[2] = "rock" if case == "twice" else "caf\xe9"  # é, not UTF-8 in latin-1
        path.write_bytes("\n".join(names).encode("latin-1"))
    err = _error(capsys, ["--data-dir", str(data_dir), "--split", "classic",
                          str(data_dir / "classic")], tmp_path)
    assert message in err, err
