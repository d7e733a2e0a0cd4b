"""The MSD build from and to a tf.io.gfile file system (gs:// in real use;
TensorFlow's in-memory ram:// here): the same plan and the same bytes as a
local build; a remote SQLite file is read through a local temporary copy."""

from __future__ import annotations

import hashlib
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from tagger.datasets.msd import layout
from tagger.datasets.msd.plan import MsdSettings, plan_msd
from tagger.errors import UserError
from tests.checks import build_msd, copy_to_gfile

REMOTE = "ram://msd_gfile"


@pytest.fixture(scope="module")
def remote_msd(synthetic_msd):
    data_dir, _ = synthetic_msd
    copy_to_gfile(data_dir, REMOTE)
    yield REMOTE
    tf.io.gfile.rmtree(REMOTE)


def _same_plans(a, b):
    assert a.tag_names == b.tag_names and a.known_broken == b.known_broken
    assert a.notes == b.notes and a.origin == b.origin
    for split in a.splits:
        assert np.array_equal(a.splits[split].clip_ids, b.splits[split].clip_ids)
        assert np.array_equal(a.splits[split].paths, b.splits[split].paths)
        if a.splits[split].labels is None:
            assert b.splits[split].labels is None
        else:
            assert np.array_equal(a.splits[split].labels, b.splits[split].labels)


@pytest.mark.parametrize("source", ["lastfm", "cals", "classic"])
def test_remote_plan_equals_the_local_plan(synthetic_msd, remote_msd, source, tmp_path,
                                           monkeypatch):
    data_dir, _ = synthetic_msd
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where SQLite copies go
    local = plan_msd(data_dir, MsdSettings(source, None if source == "lastfm"
                                           else f"{data_dir}/{source}"), progress=False)
    remote = plan_msd(remote_msd, MsdSettings(source, None if source == "lastfm"
                                              else f"{remote_msd}/{source}"), progress=False)
    assert remote.audio_root == f"{remote_msd}/audio"
    # tracks without a preview are found by listing the remote folder
    assert sum(local.notes["tracks_without_audio"].values()) > 0
    _same_plans(local, remote)
    assert os.listdir(tmp_path) == []  # the temporary copies are gone


def test_remote_build_writes_the_local_bytes(msd_builds, remote_msd):
    records_dir, local_info, _ = msd_builds["cals"]
    out = f"{remote_msd}/records"
    info = build_msd(remote_msd, out, MsdSettings("cals", f"{remote_msd}/cals"))
    assert info == local_info
    names = sorted(n for n in os.listdir(records_dir)
                   if n.endswith((".tfrecord", ".framing")) or n == "dataset_info.json")
    assert sorted(n for n in tf.io.gfile.listdir(out) if not n.startswith(".")) == names
    for name in names:
        with open(os.path.join(records_dir, name), "rb") as f:
            want = hashlib.sha256(f.read()).hexdigest()
        got = hashlib.sha256(tf.io.gfile.GFile(f"{out}/{name}", "rb").read()).hexdigest()
        assert got == want, name


def test_remote_layouts_are_detected():
    root = "ram://msd_layouts"
    for name in ("by_id/Q/R/S/TRQRSAB128F4211111.wav", "by_id/Q/R/T/TRQRTAB128F4211112.wav",
                 "digital/8/9/8947470.clip.mp3"):
        tf.io.gfile.makedirs(f"{root}/{name.rsplit('/', 1)[0]}")
        tf.io.gfile.GFile(f"{root}/{name}", "wb").write(b"x")
    try:
        assert layout.detect(f"{root}/by_id") == ("msd", "wav")
        assert layout.detect(f"{root}/digital") == ("7digital", "mp3")
        paths = np.array([b"Q/R/S/TRQRSAB128F4211111.wav", b"Q/R/S/TRQRSAB128F4299999.wav",
                          b""], dtype="S40")
        assert layout.missing(f"{root}/by_id", paths).tolist() == [False, True, True]
        with pytest.raises(UserError, match="audio folder 'ram://msd_layouts/none' does "
                                            "not exist"):
            layout.detect(f"{root}/none")
    finally:
        tf.io.gfile.rmtree(root)


def test_missing_or_foreign_remote_database_is_one_line(remote_msd, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings = MsdSettings(audio_dir=f"{remote_msd}/audio")
    with pytest.raises(UserError, match="cals/track_metadata.db' not found"):
        plan_msd(f"{remote_msd}/cals", settings, progress=False)
    tf.io.gfile.GFile(f"{remote_msd}/cals/track_metadata.db", "wb").write(b"not sqlite" * 20)
    try:
        with pytest.raises(UserError, match="track_metadata.db' is not a readable SQLite"):
            plan_msd(f"{remote_msd}/cals", settings, progress=False)
    finally:
        tf.io.gfile.remove(f"{remote_msd}/cals/track_metadata.db")
    assert os.listdir(tmp_path) == []
