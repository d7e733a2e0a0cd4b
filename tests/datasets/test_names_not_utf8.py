"""The builders on audio whose file name is not valid UTF-8 (written on a
system with another encoding, `bad\\xff\\xfe`): the file is read like the
others and its records keep the name's bytes exactly; the summary and
dataset_info.json show such a name with its undecodable bytes as \\xNN.

build_folder.py walks the folder. (build_msd.py names its audio by track
id: tests/datasets/msd/test_build_msd.py builds in a folder named so.)"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from tagger.commands import build_folder
from tagger.records.info import load_info
from tagger.records.reader import clip_dataset
from tests.checks import call_main, tone

NAME = b"bad\xff\xfe.wav"  # a copy of a.wav
BROKEN = b"broken\xe9.mp3"  # not audio
RATE = 8000
FLAGS = ["--sample-rate", str(RATE), "--segment-length", str(RATE), "--workers", "1",
         "--no-progress"]


def odd(folder, name: bytes) -> str:
    """The path of `name` in `folder`, as Python holds a name of such bytes."""
    return os.fsdecode(os.path.join(os.fsencode(str(folder)), name))


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """a.wav, c.wav and d.wav, 2 s each; NAME, a copy of a.wav; BROKEN, text."""
    import soundfile

    root = tmp_path_factory.mktemp("music")
    for n, name in enumerate(("a.wav", "c.wav", "d.wav")):
        soundfile.write(str(root / name), tone(2.0, RATE, 1, 300 + 200 * n, seed=n), RATE)
    shutil.copy(root / "a.wav", odd(root, NAME))
    with open(odd(root, BROKEN), "w") as f:
        f.write("not audio\n" * 20)
    return root


def read_records(out) -> dict:
    """{path bytes: (tags, segments)} of every clip of the records in `out`."""
    info = load_info(str(out))
    return {clip["path"]: (tuple(clip["tags"].astype(int)), clip["segments"])
            for split in info.splits
            for clip in clip_dataset(str(out), split, info).as_numpy_iterator()}


def test_build_folder_reads_the_file_and_keeps_its_name(music, tmp_path, capsys):
    from tagger.interpret.attention_maps import split_audio_files

    out = tmp_path / "records"
    code, printed, err = call_main(build_folder.main, capsys, music, "--out-dir", out, *FLAGS)
    assert code == 0, err
    assert printed.startswith(f"dataset 'folder' in {out}: 0 tags")
    assert "    broken\\xe9.mp3: not decodable audio (Format not recognised)" in \
        printed.splitlines()
    assert [(s["path"], s["reason"]) for s in load_info(str(out)).skipped] == [
        ("broken\\xe9.mp3", "not decodable audio (Format not recognised)")]
    clips = read_records(out)
    assert sorted(clips) == sorted([b"a.wav", b"c.wav", b"d.wav", NAME])
    np.testing.assert_array_equal(clips[NAME][1], clips[b"a.wav"][1])
    assert clips[NAME][1].shape == (2, RATE)
    found = [f for split in ("train", "val", "test")
             for f in split_audio_files(str(out), str(music), split, count=-1)]
    assert sorted(found) == sorted(odd(music, n) for n in (b"a.wav", b"c.wav", b"d.wav", NAME))

