"""Two train.py runs with one --run-name: the second refuses, naming the
first (the run folder's lock, tagger.folder_lock)."""

import json
import os
import socket

from tagger.commands import train as train_cli
from tests.checks import call_main, one_line_error


def test_a_second_run_into_a_held_run_folder_refuses_naming_the_owner(raw_records, tmp_path,
                                                                      capsys):
    records, _ = raw_records
    run_dir = tmp_path / "same"
    run_dir.mkdir()
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": "2026-01-01T00:00Z"}
    (run_dir / ".lock.json").write_text(json.dumps(owner))  # a live process holds it
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--train-dir",
                             tmp_path, "--run-name", "same", "--strategy", "default",
                             "--no-progress")
    one_line_error(code, err, f"another training run (pid {os.getpid()} on "
                   f"{socket.gethostname()}, started 2026-01-01T00:00Z) is writing to "
                   f"{str(run_dir)!r}", "another --run-name")
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock.json"]
