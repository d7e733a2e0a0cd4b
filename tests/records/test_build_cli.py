"""build_mtt.py's command line: a summary on success; one line and exit 2 for bad input."""

import json
import shutil
import subprocess
import sys
import pathlib

import pytest

import build_mtt
from tests.checks import one_line_error

ROOT = pathlib.Path(__file__).parents[2]


def run_main(capsys, *argv):
    code = build_mtt.main(list(argv) + ["--no-progress", "--workers", "1"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def copy_dataset(synthetic_mtt, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(synthetic_mtt[0], target)
    return target


def test_summary_names_splits_and_skipped_files(synthetic_mtt, tmp_path, capsys):
    code, out, _ = run_main(capsys, "--data-dir", synthetic_mtt[0], "--out-dir",
                            str(tmp_path / "out"), "--top-k", "20")
    assert code == 0
    assert "20 tags" in out and "train" in out
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert info["skipped"]
    for skipped in info["skipped"]:
        assert f"{skipped['path']}: {skipped['reason']}" in out


def test_missing_data_dir(tmp_path, capsys):
    code, _, err = run_main(capsys, "--data-dir", str(tmp_path / "nope"))
    one_line_error(code, err, "does not exist")


def test_missing_annotations(tmp_path, capsys):
    (tmp_path / "mp3").mkdir()
    code, _, err = run_main(capsys, "--data-dir", str(tmp_path))
    one_line_error(code, err, "annotations_final.csv")
    assert not (tmp_path / "tfrecord").exists()


def test_csv_without_mp3_path(synthetic_mtt, tmp_path, capsys):
    data = copy_dataset(synthetic_mtt, tmp_path)
    csv = data / "annotations_final.csv"
    csv.write_text(csv.read_text().replace('"mp3_path"', '"path"', 1))
    code, _, err = run_main(capsys, "--data-dir", str(data))
    one_line_error(code, err, "no column 'mp3_path'")
    assert not (data / "tfrecord").exists()


def test_split_folder_with_unknown_clips(synthetic_mtt, tmp_path, capsys):
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (lists / name).write_text("0/not-a-clip-of-this-dataset.npy\n")
    code, _, err = run_main(capsys, "--data-dir", synthetic_mtt[0], "--out-dir",
                            str(tmp_path / "out"), "--split", str(lists))
    one_line_error(code, err, "not in the annotations")
    assert not (tmp_path / "out").exists()


def test_out_dir_that_cannot_be_written(synthetic_mtt, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    code, _, err = run_main(capsys, "--data-dir", synthetic_mtt[0], "--out-dir",
                            str(blocker / "out"))
    one_line_error(code, err, "cannot write to out dir")
    assert blocker.read_text() == "a file, not a folder"


def test_zero_decodable_clips(synthetic_mtt, tmp_path, capsys):
    data = copy_dataset(synthetic_mtt, tmp_path)
    for path in (data / "mp3").rglob("*.mp3"):
        path.write_bytes(b"not audio")
    out = tmp_path / "out"
    code, _, err = run_main(capsys, "--data-dir", str(data), "--out-dir", str(out))
    one_line_error(code, err, "no clip could be decoded")
    left = [p.name for p in out.rglob("*") if p.is_file()]
    assert left == []  # no shard, no manifest, no dataset_info.json


def test_bad_flag_values(tmp_path, capsys):
    code, _, err = run_main(capsys, "--num-audios-per-shard", "0", "--data-dir", str(tmp_path))
    assert code == 2 and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        build_mtt.parse_args(["--features", "mfcc"])
    assert exit_info.value.code == 2


def test_real_command_line_reports_missing_data(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "build_mtt.py"), "--data-dir",
                             str(tmp_path / "nope")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("build_mtt.py: error: data dir")
    assert len(result.stderr.strip().splitlines()) == 1
