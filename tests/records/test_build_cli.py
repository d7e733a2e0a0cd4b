"""build_mtt.py's command line: a summary on success; one line and exit 2 for bad input."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tagger.commands import build_flags, build_mtt  # noqa: E402
from tests.checks import one_line_error

ROOT = pathlib.Path(__file__).parents[2]


def run_main(capsys, *argv):
    try:
        code = build_mtt.main(list(argv) + ["--no-progress", "--workers", "1"])
    except SystemExit as exit_info:  # argparse rejected a flag
        code = exit_info.code
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


def test_split_lists_that_overlap_or_are_folders(synthetic_mtt, tmp_path, capsys):
    from tagger.datasets.mtt import plan_mtt

    paths = {s: [c.path for c in clips] for s, clips in plan_mtt(synthetic_mtt[0]).splits.items()}
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("\n".join(paths["train"]))
    (lists / "valid.txt").write_text("\n".join(paths["val"]))
    (lists / "test.txt").write_text("\n".join(paths["test"] + paths["train"][3:5]))
    argv = ["--data-dir", synthetic_mtt[0], "--top-k", "10", "--out-dir",
            str(tmp_path / "out"), "--split", str(lists)]
    code, _, err = run_main(capsys, *argv)
    one_line_error(code, err, "train.txt and test.txt both list 2 clip(s), e.g. "
                              f"{paths['train'][3]!r}")
    os.remove(lists / "train.txt")
    (lists / "train.txt").mkdir()
    code, _, err = run_main(capsys, *argv)
    one_line_error(code, err, f"split list {str(lists / 'train.txt')!r} is a folder")
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
    assert not out.exists()  # no shard, no manifest, no dataset_info.json, no folder


def test_bad_flag_values(tmp_path, capsys):
    code, _, err = run_main(capsys, "--num-audios-per-shard", "0", "--data-dir", str(tmp_path))
    assert code == 2 and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        build_flags.parse_args("mtt", ["--features", "mfcc"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_real_command_line_reports_missing_data(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "build_mtt.py"), "--data-dir",
                             str(tmp_path / "nope")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("build_mtt.py: error: data dir")
    assert len(result.stderr.strip().splitlines()) == 1


def write_annotations(data, text):
    (data / "mp3").mkdir(parents=True, exist_ok=True)
    (data / "annotations_final.csv").write_text(text)
    return data


HEADER = '"clip_id"\t"guitar"\t"rock"\t"mp3_path"\n'


@pytest.mark.parametrize("text,message", [
    ("", "is empty (0 bytes)"),
    ("\n\n", "is empty (2 bytes)"),
    (HEADER, "has a header but no clips"),
    (HEADER + '"2"\t"0"\t"0"\t"0/a.mp3"\n"3"\t"0"\t"0"\t"c/b.mp3"\n',
     "no clip of"),
    (HEADER + '"2"\t"1"\t"0"\t"0/a.mp3"\n"2"\t"0"\t"1"\t"c/b.mp3"\n',
     "clip_id 2 appears twice (lines 2 and 3)"),
    (HEADER + '"2"\t"1"\t"0"\t"0/a.mp3"\n"3"\t"0"\t"1"\t"0/a.mp3"\n',
     "mp3_path 0/a.mp3 appears twice"),
    (HEADER + '"2"\t"1"\t"0"\t"../../etc/passwd"\n', "climbs out of the audio folder"),
    (HEADER + '"2"\t"1"\t"0"\t"0/../../x.mp3"\n', "clip 2 has mp3_path '0/../../x.mp3'"),
    (HEADER + '"2"\t"1"\t"0"\t"/etc/passwd"\n', "is absolute"),
])
def test_bad_annotations_say_what_is_wrong_and_leave_nothing(tmp_path, capsys, text, message):
    data = write_annotations(tmp_path / "data", text)
    out = tmp_path / "out"
    code, _, err = run_main(capsys, "--data-dir", str(data), "--out-dir", str(out),
                            "--top-k", "2")
    one_line_error(code, err, message)
    assert "no clip could be decoded" not in err
    assert not out.exists() and not (data / "tfrecord").exists()


@pytest.mark.parametrize("flags,message", [
    (["--top-k", "0"], "--top-k: expected a number >= 1, got '0'"),
    (["--top-k", "-3"], "--top-k: expected a number >= 1"),
    (["--workers", "0"], "--workers: expected a number in [1, 256]"),
    (["--n-fft", "0", "--features", "logmel"], "--n-fft: expected a number in [2, 65536]"),
    (["--hop-length", "0", "--features", "logmel"], "--hop-length: expected a number >= 1"),
    (["--n-mels", "0", "--features", "logmel"], "--n-mels"),
    (["--segment-length", "0"], "--segment-length: expected a number >= 1"),
    (["--num-audios-per-shard", "-1"], "--num-audios-per-shard: expected a number >= 1"),
    (["--sample-rate", "0"], "--sample-rate: expected a number in [1000, 384000]"),
    (["--max-file-mb", "0"], "--max-file-mb: expected a number > 0"),
    (["--max-seconds", "nan"], "--max-seconds: expected a number > 0"),
    (["--max-seconds", "1"], "max_seconds (--max-seconds) must be a finite number >= 2.67"),
    (["--unlabelled-fraction", "1"], "must lie in [0, 1)"),
    (["--features", "logmel", "--sample-rate", "16000", "--f-max", "9000"],
     "at most the Nyquist frequency 8000 Hz"),
    (["--features", "logmel", "--n-fft", "100000"], "--n-fft: expected a number in"),
    (["--features", "logmel", "--segment-length", "512"],
     "n_fft (--n-fft) must be at most the segment length 512"),
    (["--n-mels", "64"], "--n-mels applies to --features logmel only"),
    (["--f-max", "8000"], "--f-max applies to --features logmel only"),
    (["--features", "logmel", "--dtype", "float32"], "--dtype applies to --features raw only"),
])
def test_bad_numbers_and_flags_that_do_not_apply(tmp_path, capsys, flags, message):
    code, _, err = run_main(capsys, "--data-dir", str(tmp_path / "nope"), *flags)
    one_line_error(code, err, message)
    assert not (tmp_path / "nope").exists()


def test_config_checks_its_values():
    from tagger.config import AudioConfig, BuildConfig, FeatureConfig, LogMelConfig
    from tagger.datasets.msd.plan import MsdSettings
    from tagger.datasets.mtt import MttSettings

    for bad in (dict(workers=0), dict(clips_per_shard=0), dict(max_file_mb=0.0),
                dict(max_seconds=float("inf"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BuildConfig(**bad)
    for bad in (dict(top_k=0), dict(seed=-1), dict(unlabelled_fraction=1.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MttSettings(**bad)
    for bad in (dict(top_k=0), dict(seed=-1), dict(min_tag_value=100.0)):
        with pytest.raises(ValueError, match=next(iter(bad)).replace("_", "-")):
            MsdSettings(**bad)
    for bad in (dict(n_fft=0), dict(hop_length=0), dict(n_mels=0), dict(f_min=-1.0),
                dict(f_max=0.0), dict(top_db=float("nan"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LogMelConfig(**bad)
    with pytest.raises(ValueError, match="Nyquist"):
        BuildConfig(audio=AudioConfig(16000, 59049),
                    features=FeatureConfig("logmel", "float32", LogMelConfig(f_max=8001.0)))
    BuildConfig(audio=AudioConfig(16000, 59049),  # f_max at Nyquist is fine
                features=FeatureConfig("logmel", "float32", LogMelConfig(f_max=8000.0)))


def test_a_read_only_out_dir_is_one_line(synthetic_mtt, capsys):
    from tests.checks import read_only_path

    out = read_only_path("records")
    code, _, err = run_main(capsys, "--data-dir", synthetic_mtt[0], "--out-dir", out)
    one_line_error(code, err, f"cannot write to out dir '{out}': permission denied")
    assert not os.path.exists(out)
