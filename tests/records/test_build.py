"""build_mtt on the synthetic dataset: contents, skipping, splits, resume, gfile paths."""

import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tagger.audio import INT16_SCALE, load_audio, segment
from tagger.datasets import mtt
from tagger.errors import UserError
from tagger.records import reader
from tests.checks import build_mtt, copy_to_gfile, files_digest, framing_of_file
from tests.presets import CLIPS_PER_SHARD

ROOT = pathlib.Path(__file__).parents[2]


def read_csv(data_dir):
    return pd.read_csv(os.path.join(data_dir, "annotations_final.csv"), sep="\t",
                       dtype={"mp3_path": str})


def expected_splits(data_dir, summary):
    """Clip ids per split computed straight from the CSV."""
    table = read_csv(data_dir)
    tags = [c for c in table.columns if c not in ("clip_id", "mp3_path")]
    counts = table[tags].sum()
    top = sorted(tags, key=lambda t: (-counts[t], tags.index(t)))[:50]
    broken = {b.mp3_path for b in summary.broken}
    split_of = {c: s for s, chars in mtt.DIRECTORY_SPLIT.items() for c in chars}
    out = {s: set() for s in split_of.values()}
    keep = table[top].any(axis=1) & ~table.mp3_path.isin(broken)
    for clip_id, path in zip(table.clip_id[keep], table.mp3_path[keep]):
        out[split_of[path[0]]].add(int(clip_id))
    return out, top, table


def layout(splits) -> dict:
    """The splits of a dataset_info without the shards' checksums: their
    clips, segments and shard names, whatever bytes the shards hold."""
    return {name: {k: v for k, v in split.items() if k != "shard_framing_sha256"}
            for name, split in splits.items()}


def test_split_sizes_tags_and_segments(synthetic_mtt, raw_records):
    data_dir, summary = synthetic_mtt
    records, info = raw_records
    expected, top, _ = expected_splits(data_dir, summary)
    assert list(info.tag_names) == top
    for split, ids in expected.items():
        got = {int(c["clip_id"]) for c in reader.clip_dataset(records, split).as_numpy_iterator()}
        assert got == ids
        assert info.splits[split]["clips"] == len(ids)
        assert info.splits[split]["segments"] == 2 * len(ids)  # 6 s -> 2 segments
        shards = info.splits[split]["shards"]
        planned = len(mtt.plan_mtt(data_dir).splits[split])
        assert len(shards) == max(1, -(-planned // CLIPS_PER_SHARD))
        assert all(os.path.exists(os.path.join(records, s)) for s in shards)
        assert shards[0].startswith(f"{split}-0000-of-{len(shards):04d}")
    assert info.sample_rate == 22050 and info.segment_length == 59049
    assert list(info.segment_shape) == [59049]
    assert info.features == {"kind": "raw", "dtype": "int16", "logmel": None}


def test_each_shards_framing_digest_is_recorded(raw_records):
    """In dataset_info.json, and with the shard file's size and time in its manifest."""
    records, info = raw_records
    for split in info.splits.values():
        assert "shard_sha256" not in split
        assert split["shard_framing_sha256"] == [
            hashlib.sha256(framing_of_file(pathlib.Path(records, name).read_bytes())).hexdigest()
            for name in split["shards"]]
        for name, digest in zip(split["shards"], split["shard_framing_sha256"]):
            manifest = json.loads(pathlib.Path(records, ".build", f"{name}.json").read_text())
            found = pathlib.Path(records, name).stat()
            assert (manifest["size"], manifest["mtime_ns"], manifest["framing_sha256"]) == (
                found.st_size, found.st_mtime_ns, digest)


@pytest.mark.parametrize("older", ["sha256", None])
def test_a_shard_finished_before_manifests_held_its_digest_is_read_back(
        older, synthetic_mtt, raw_records, tmp_path):
    """A build resumed from shards whose manifests hold no framing digest,
    size or time (written by an earlier version: the SHA-256 of the shard's
    bytes, or nothing) reads those shards back, keeps them and records
    their state in their manifests."""
    out = tmp_path / "resumed"
    shutil.copytree(raw_records[0], out)
    name = raw_records[1].splits["val"]["shards"][0]
    manifest = out / ".build" / f"{name}.json"
    stored = {k: v for k, v in json.loads(manifest.read_text()).items()
              if k not in ("framing_sha256", "size", "mtime_ns")}
    if older:
        stored[older] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    manifest.write_text(json.dumps(stored))
    (out / "dataset_info.json").unlink()
    mtime = (out / name).stat().st_mtime_ns
    info = build_mtt(synthetic_mtt[0], out)
    digest = hashlib.sha256(framing_of_file((out / name).read_bytes())).hexdigest()
    assert info.splits["val"]["shard_framing_sha256"][0] == digest
    assert info == raw_records[1]
    assert (out / name).stat().st_mtime_ns == mtime  # kept
    assert json.loads(manifest.read_text()) == {
        **stored, "framing_sha256": digest, "size": (out / name).stat().st_size,
        "mtime_ns": mtime}


def test_skipped_are_exactly_the_broken_files(synthetic_mtt, raw_records):
    data_dir, summary = synthetic_mtt
    _, info = raw_records
    expected, _, table = expected_splits(data_dir, summary)
    skipped = {s["path"]: s["reason"] for s in info.skipped}
    # Broken files that carry none of the top tags are dropped before decoding.
    tagged = set(table.mp3_path[table.clip_id.isin(
        [b.clip_id for b in summary.broken])])
    assert set(skipped) == {b.mp3_path for b in summary.broken} & tagged
    for path in mtt.KNOWN_BROKEN.values():
        if path in skipped:
            assert skipped[path] == "known broken MagnaTagATune MP3"
    assert all(reason for reason in skipped.values())


def test_labels_and_audio_equal_the_sources(synthetic_mtt, raw_records):
    data_dir, _ = synthetic_mtt
    records, info = raw_records
    table = read_csv(data_dir).set_index("clip_id")
    clips = list(reader.clip_dataset(records, "test").as_numpy_iterator())
    assert clips
    for clip in clips:
        row = table.loc[int(clip["clip_id"])]
        assert clip["path"].decode() == row["mp3_path"]
        np.testing.assert_array_equal(clip["tags"], row[list(info.tag_names)].to_numpy(float))
    for clip in clips[:3]:
        audio = load_audio(os.path.join(data_dir, "mp3", clip["path"].decode()), 22050)
        expected = np.clip(segment(audio, 59049), -1, 1)
        assert clip["segments"].shape == expected.shape
        np.testing.assert_allclose(clip["segments"], expected, atol=0.5 / INT16_SCALE + 1e-7)


def test_train_clips_are_shuffled_by_seed(synthetic_mtt, raw_records):
    data_dir, _ = synthetic_mtt
    order0, order1 = ([c.clip_id for c in mtt.plan_mtt(
        data_dir, mtt.MttSettings(seed=seed)).splits["train"]] for seed in (0, 1))
    assert sorted(order0) == sorted(order1) and order0 != order1
    ids, _ = reader.clip_labels(raw_records[0], "train")
    assert [int(i) for i in ids] == [i for i in order0 if i in set(ids.tolist())]


KILL_DRIVER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from tagger.records import writer
    from tests.checks import build_mtt
    mode, count, workers = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    calls = [0]
    if mode == "before_rename":  # shard and manifest written, not yet renamed
        original = writer.fileio.rename
        def rename(src, dst):
            if dst.endswith(".tfrecord"):
                calls[0] += 1
                if calls[0] == count:
                    os.kill(os.getpid(), signal.SIGKILL)
            original(src, dst)
        writer.fileio.rename = rename
    elif mode == "mid_record":  # half way through appending a record to a shard
        original = writer._open_record_writer
        class Dying:
            def __init__(self, path):
                self.file = original(path)
            def write(self, part):
                calls[0] += 1
                if calls[0] == count:
                    self.file.write(part[:len(part) // 2])
                    self.file.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
                self.file.write(part)
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                self.file.close()
        writer._open_record_writer = Dying
    else:  # in the middle of writing a shard (one worker decodes in this process)
        original = writer.decode_clip
        def decode(task):
            calls[0] += 1
            if calls[0] == count:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(task)
        writer.decode_clip = decode
    if __name__ == "__main__":  # not where the workers' fork server imports it
        build_mtt(sys.argv[1], sys.argv[2], workers=workers)
""")


@pytest.mark.slow
@pytest.mark.parametrize("mode,count,workers", [
    ("before_rename", 3, 1), ("mid_shard", 10, 1),
    ("mid_record", 29, 2),  # the 10th record's payload: workers frame, this process appends
])
def test_resume_after_sigkill_is_byte_identical(synthetic_mtt, raw_records, tmp_path,
                                                mode, count, workers):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    driver = tmp_path / "driver.py"
    driver.write_text(KILL_DRIVER.format(root=str(ROOT)))
    killed = subprocess.run([sys.executable, str(driver), data_dir, str(out), mode,
                             str(count), str(workers)], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = [n for n in os.listdir(out) if n.endswith(".tfrecord")]
    assert 0 < len(done) < len(files_digest(raw_records[0])) - 1
    assert not (out / "dataset_info.json").exists()
    assert any(n.endswith(".tmp") for n in os.listdir(out))
    finished = {n: (out / n).stat().st_mtime_ns for n in done}
    build_mtt(data_dir, out)
    for name, mtime in finished.items():  # finished shards were kept, not rewritten
        assert (out / name).stat().st_mtime_ns == mtime
    assert files_digest(out) == files_digest(raw_records[0])
    assert not any(n.endswith(".tmp") for n in os.listdir(out))


def test_rerun_of_a_finished_build_writes_nothing(synthetic_mtt, raw_records, tmp_path):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "again"
    build_mtt(data_dir, out)
    stamps = {n: (out / n).stat().st_mtime_ns for n in os.listdir(out) if n.endswith(".tfrecord")}
    build_mtt(data_dir, out)
    assert stamps == {n: (out / n).stat().st_mtime_ns for n in stamps}


def test_other_settings_need_overwrite(synthetic_mtt, tmp_path):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    build_mtt(data_dir, out, top_k=10)
    with pytest.raises(UserError, match="--overwrite"):
        build_mtt(data_dir, out, top_k=12)
    info = build_mtt(data_dir, out, top_k=12, overwrite=True)
    assert info.num_tags == 12
    assert json.loads((out / "dataset_info.json").read_text())["num_tags"] == 12


def test_a_build_by_another_version_of_the_builder_needs_overwrite(synthetic_mtt, tmp_path,
                                                                   monkeypatch):
    """Its records may hold some files decoded otherwise: not resumed, and
    the line says why, not "other data or settings"."""
    from tagger.records import writer

    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        patched.setattr(writer, "BUILDER_VERSION", "1")
        build_mtt(data_dir, out, top_k=10)
    assert json.loads((out / "dataset_info.json").read_text())["builder_version"] == "1"
    with pytest.raises(UserError) as refused:
        build_mtt(data_dir, out, top_k=10)
    assert str(refused.value) == (
        f"{str(out)!r} holds a build made by version 1 of the builder (this is version "
        f"{writer.BUILDER_VERSION}: its records may differ); pass --overwrite to replace "
        "them or choose another --out-dir")
    info = build_mtt(data_dir, out, top_k=10, overwrite=True)
    assert info.builder_version == writer.BUILDER_VERSION


@pytest.mark.slow
def test_parallel_build_equals_serial(synthetic_mtt, raw_records, tmp_path):
    data_dir, _ = synthetic_mtt
    build_mtt(data_dir, tmp_path / "par", workers=2)
    assert files_digest(tmp_path / "par") == files_digest(raw_records[0])


@pytest.mark.slow
def test_clips_libsndfile_cannot_read_are_decoded_by_ffmpeg(synthetic_mtt, raw_records,
                                                            tmp_path):
    """Two test clips as M4A (AAC), which libsndfile cannot read: the build's
    worker processes decode them with FFmpeg, mixed, resampled and cut as
    any clip; every other record is the one libsndfile gave; the broken
    files (a text file neither decoder reads among them) are skipped alike."""
    import shutil

    from tagger.audio import file_info
    from tests.checks import write_m4a

    data_dir, _ = synthetic_mtt
    records, info = raw_records
    copy = tmp_path / "mtt"
    shutil.copytree(data_dir, copy)
    before = {int(c["clip_id"]): c for c in reader.clip_dataset(records, "test")
              .as_numpy_iterator()}
    table = read_csv(copy).set_index("clip_id")
    csv = (copy / "annotations_final.csv").read_text()
    converted = {}
    for clip_id in sorted(before)[:2]:
        mp3 = table.at[clip_id, "mp3_path"]
        m4a = mp3.removesuffix(".mp3") + ".m4a"
        rate = file_info(str(copy / "mp3" / mp3)).sample_rate
        write_m4a(copy / "mp3" / m4a, load_audio(str(copy / "mp3" / mp3), rate), rate)
        os.remove(copy / "mp3" / mp3)
        assert csv.count(mp3) == 1
        csv = csv.replace(mp3, m4a)
        converted[clip_id] = m4a
    (copy / "annotations_final.csv").write_text(csv)

    built = build_mtt(copy, tmp_path / "records", workers=2)
    assert layout(built.splits) == layout(info.splits) and built.skipped == info.skipped
    after = {int(c["clip_id"]): c for c in reader.clip_dataset(str(tmp_path / "records"),
                                                               "test").as_numpy_iterator()}
    assert sorted(after) == sorted(before)
    for clip_id, clip in after.items():
        if clip_id not in converted:
            np.testing.assert_array_equal(clip["segments"], before[clip_id]["segments"])
            continue
        m4a = str(copy / "mp3" / converted[clip_id])
        assert file_info(m4a).decoder == "FFmpeg"
        assert clip["path"].decode() == converted[clip_id]
        expected = np.clip(segment(load_audio(m4a, 22050), 59049), -1, 1)
        assert clip["segments"].shape == expected.shape == (2, 59049)
        np.testing.assert_allclose(clip["segments"], expected, atol=0.5 / INT16_SCALE + 1e-7)


def test_build_and_read_through_ram_filesystem(synthetic_mtt, raw_records):
    data_dir, _ = synthetic_mtt
    copy_to_gfile(data_dir, "ram://mtt")
    info = build_mtt("ram://mtt", "ram://mtt/records", workers=2)
    local = raw_records[0]
    for name in files_digest(local):
        remote = tf.io.gfile.GFile(f"ram://mtt/records/{name}", "rb").read()
        assert hashlib.sha256(remote).hexdigest() == files_digest(local)[name], name
    batch = next(iter(reader.train_dataset("ram://mtt/records", 4, info=info)))
    assert batch[0].shape == (4, 59049) and batch[1].shape == (4, 50)


def test_log_mel_records_equal_the_log_mel_layer(synthetic_mtt, tmp_path):
    from tagger.layers import LogMel

    data_dir, _ = synthetic_mtt
    raw = build_mtt(data_dir, tmp_path / "f32",
                                 features=_features("raw", dtype="float32"))
    mel = build_mtt(data_dir, tmp_path / "mel", features=_features("logmel"))
    assert list(mel.segment_shape) == [1 + 59049 // 256, 40]
    assert mel.features["logmel"]["n_mels"] == 40
    assert layout(mel.splits) == layout(raw.splits)
    layer = LogMel(sample_rate=22050, n_fft=512, hop_length=256, n_mels=40)
    pairs = zip(reader.clip_dataset(str(tmp_path / "f32"), "test").take(2),
                reader.clip_dataset(str(tmp_path / "mel"), "test").take(2))
    for a, b in pairs:
        np.testing.assert_allclose(np.asarray(layer(a["segments"])), b["segments"], atol=1e-3)


def _features(kind, dtype="int16"):
    from tagger.config import FeatureConfig, LogMelConfig

    return FeatureConfig(kind, dtype, LogMelConfig(n_mels=40, n_fft=512, hop_length=256))


def test_merge_synonyms_changes_the_vocabulary(synthetic_mtt, tmp_path):
    data_dir, _ = synthetic_mtt
    plain = mtt.plan_mtt(data_dir).tag_names
    merged = mtt.plan_mtt(data_dir, mtt.MttSettings(merge_synonyms=True)).tag_names
    assert "woman" in plain and "woman" not in merged and "female" in merged
    assert "classic" in plain and "classic" not in merged
    info = build_mtt(data_dir, tmp_path / "m", merge_synonyms=True)
    assert list(info.tag_names) == list(merged)
    assert info.build["merge_synonyms"] is True
