"""`model_fingerprint`: the key of a model's stored results, int8 models and
distillation targets. Local fingerprints keep the values they always had;
a model in another file system (gs://, here TensorFlow's ram://) has its
local copy's; a folder whose names are not valid UTF-8 is hashed by their
bytes."""

from __future__ import annotations

import hashlib
import os

import pytest

from tagger.inference.common import model_fingerprint

# a SavedModel folder's layout, a block over 1 MiB among its files (no file
# named as a folder beside it plus a suffix: ram:// lists a folder by prefix)
SAVED_MODEL = {
    "saved_model.pb": b"graph " * 300, "fingerprint.pb": b"\x01\x02\x03",
    "variables/variables.index": b"index",
    "variables/variables.data-00000-of-00001": bytes(range(256)) * 5000,
    "assets/tags.txt": "rock\npop\n\u00e9lectro\n".encode(), "assets/a-b.txt": b"",
    "keras_metadata.pb": b"beside",
}
MODEL_FILE = b"PK\x03\x04" + bytes(range(256)) * 4100
# the values of the fingerprint before it read other file systems: stored
# caches are keyed on them
SAVED_MODEL_FINGERPRINT = "c6d46690e81ebf686f1246783b86203745127dd4afbb05e31a693c88c8f2f8d1"
MODEL_FILE_FINGERPRINT = "ff7966bd8252a536d409f33445f249466361e748a075b866e748f57adc9be7b4"


def write_local(folder):
    """SAVED_MODEL under `folder` (a path, text or bytes), and an empty subfolder."""
    folder = os.fsencode(folder)
    for name, data in SAVED_MODEL.items():
        path = os.path.join(folder, name.encode())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(data)
    os.makedirs(os.path.join(folder, b"empty"))


def test_local_fingerprints_keep_their_values(tmp_path):
    write_local(tmp_path / "saved")
    (tmp_path / "model.keras").write_bytes(MODEL_FILE)
    assert model_fingerprint(str(tmp_path / "saved")) == SAVED_MODEL_FINGERPRINT
    assert model_fingerprint(tmp_path / "saved") == SAVED_MODEL_FINGERPRINT
    assert model_fingerprint(str(tmp_path / "model.keras")) == MODEL_FILE_FINGERPRINT
    assert MODEL_FILE_FINGERPRINT == hashlib.sha256(MODEL_FILE).hexdigest()


def test_a_model_in_another_file_system_has_its_local_copys_fingerprint(tmp_path):
    tf = pytest.importorskip("tensorflow")
    root = f"ram://fingerprint{tmp_path.name}"  # ram:// lives as long as the process
    for name, data in SAVED_MODEL.items():
        tf.io.gfile.makedirs(os.path.dirname(f"{root}/saved/{name}"))
        with tf.io.gfile.GFile(f"{root}/saved/{name}", "wb") as file:
            file.write(data)
    tf.io.gfile.makedirs(f"{root}/saved/empty")
    with tf.io.gfile.GFile(f"{root}/model.keras", "wb") as file:
        file.write(MODEL_FILE)
    try:
        assert model_fingerprint(f"{root}/saved") == SAVED_MODEL_FINGERPRINT
        assert model_fingerprint(f"{root}/saved/") == SAVED_MODEL_FINGERPRINT
        assert model_fingerprint(f"{root}/model.keras") == MODEL_FILE_FINGERPRINT
        with pytest.raises(tf.errors.NotFoundError):
            model_fingerprint(f"{root}/missing.keras")
    finally:
        tf.io.gfile.rmtree(root)


def test_a_teacher_in_another_file_system(tmp_path):
    """`--teacher ram://.../model.keras` (as gs://): found, fingerprinted
    as its local copy, its tags read."""
    tf = pytest.importorskip("tensorflow")
    from tagger.training.teacher_targets import Teacher
    from tests.checks import tiny_teacher

    local = tiny_teacher(tmp_path / "teacher.keras", ["rock", "pop"], seed=0)
    remote = f"ram://teacher{tmp_path.name}/teacher.keras"
    tf.io.gfile.makedirs(os.path.dirname(remote))
    tf.io.gfile.copy(local, remote)
    try:
        teacher = Teacher(remote, progress=False, log=lambda line: None)
        assert teacher.fingerprint == model_fingerprint(local)
        assert teacher.tag_names == ["rock", "pop"]
    finally:
        tf.io.gfile.rmtree(os.path.dirname(remote))


def test_names_that_are_not_utf8_are_hashed_by_their_bytes(tmp_path):
    root = os.path.join(os.fsencode(tmp_path), b"model\xff\xfe")  # the folder's own name
    write_local(root)
    assert model_fingerprint(os.fsdecode(root)) == SAVED_MODEL_FINGERPRINT

    odd = os.path.join(os.fsencode(tmp_path), b"odd")
    os.makedirs(os.path.join(odd, b"sub\xfe"))
    for name, data in ((b"bad\xff.bin", b"one"), (b"sub\xfe/x.bin", b"two"),
                       (b"caf\xc3\xa9.bin", b"three")):
        with open(os.path.join(odd, name), "wb") as file:
            file.write(data)
    # each folder's files sorted by their bytes, then its subfolders
    expected = hashlib.sha256(b"bad\xff.bin\0one" b"caf\xc3\xa9.bin\0three"
                              b"sub\xfe/x.bin\0two").hexdigest()
    assert model_fingerprint(os.fsdecode(odd)) == expected
    file = os.fsdecode(os.path.join(odd, b"bad\xff.bin"))
    assert model_fingerprint(file) == hashlib.sha256(b"one").hexdigest()


def test_a_local_model_is_read_once_while_its_files_stay_the_same(tmp_path, monkeypatch):
    from tagger.inference import common

    reads = []
    hashing = common._fingerprint
    monkeypatch.setattr(common, "_fingerprint",
                        lambda path, local: reads.append(path) or hashing(path, local))
    path = tmp_path / "model.keras"
    path.write_bytes(MODEL_FILE)
    assert model_fingerprint(path) == model_fingerprint(str(path)) == MODEL_FILE_FINGERPRINT
    assert len(reads) == 1
    changed = tmp_path / "changed.keras"
    changed.write_bytes(MODEL_FILE[:-1] + b"\x00")
    os.replace(changed, path)  # the same name, other bytes
    assert model_fingerprint(path) == hashlib.sha256(MODEL_FILE[:-1] + b"\x00").hexdigest()
    assert len(reads) == 2
    write_local(tmp_path / "saved")
    assert model_fingerprint(tmp_path / "saved") == SAVED_MODEL_FINGERPRINT
    (tmp_path / "saved" / "assets" / "more.txt").write_bytes(b"")  # a file added
    assert model_fingerprint(tmp_path / "saved") != SAVED_MODEL_FINGERPRINT
    assert len(reads) == 4
