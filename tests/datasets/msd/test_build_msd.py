"""build_msd.py end to end on the synthetic MSD: every label source, labels
equal to their source, artist-level splits, the unlabelled student split."""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3

import numpy as np
import pytest

from tagger.commands import build_flags, build_msd
from tagger.datasets.msd.plan import KNOWN_BROKEN_REASON, MsdSettings, plan_msd
from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS
from tagger.datasets.pickle2 import load_py2
from tagger.errors import UserError
from tagger.records import reader
from tagger.records.info import is_labelled, load_info, require_labelled


def _songs(data_dir):
    con = sqlite3.connect(os.path.join(data_dir, "track_metadata.db"))
    rows = con.execute("SELECT ROWID, track_id, artist_id FROM songs").fetchall()
    return {r: t for r, t, _ in rows}, {t: a for _, t, a in rows}


def _read_back(records, split):
    ids, tags = reader.clip_labels(records, split)
    return ids, tags


@pytest.mark.parametrize("source", ["lastfm", "cals", "classic"])
def test_every_source_builds_and_reports(msd_builds, synthetic_msd, source):
    _, summary = synthetic_msd
    records, info, plan = msd_builds[source]
    assert info.notes["label_source"] == source and info.notes["layout"] == "7digital"
    assert info.origin["kind"] == "synthetic"
    expected_splits = ["train", "val", "test"] + ([] if source == "classic" else ["student"])
    assert list(info.splits) == expected_splits
    planned = {s: len(c) for s, c in plan.splits.items()}
    skipped = {s: sum(k["split"] == s for k in info.skipped) for s in planned}
    assert {s: info.splits[s]["clips"] + skipped[s] for s in planned} == planned
    reasons = {k["reason"] for k in info.skipped}
    # all six defects sit in labelled tracks of tagged artists: each is skipped, none stops
    assert KNOWN_BROKEN_REASON in reasons or source == "classic"
    assert not {"file not found", "no audio file"} & reasons
    assert set(info.notes["artists"]) == set(planned)
    # the missing preview and the track without a 7digital id leave the plan, counted
    missing = {t for t, k in summary.defects.items() if k in ("missing", "no_7digital_id")}
    examples = info.notes["tracks_without_audio_examples"]
    assert sum(info.notes["tracks_without_audio"].values()) == len(examples)
    assert {e.split(":")[0] for e in examples} <= missing and examples
    tag_names = {"cals": list(CALS_TAGS), "classic": list(CLASSIC_TAGS)}.get(source)
    if tag_names:
        assert list(info.tag_names) == list(tag_names)


def test_cals_labels_equal_the_binaries(msd_builds, synthetic_msd):
    data_dir, _ = synthetic_msd
    records, info, _ = msd_builds["cals"]
    tid_of, _ = _songs(data_dir)
    for split, stem in (("train", "train"), ("val", "valid"), ("test", "test")):
        ids = np.load(os.path.join(data_dir, "cals", f"{stem}_ids.npy"))
        binaries = np.load(os.path.join(data_dir, "cals", f"{stem}_binaries.npy"))
        row = {t: binaries[i] for i, t in enumerate(ids)}
        clip_ids, tags = _read_back(records, split)
        assert len(clip_ids) == info.splits[split]["clips"] > 0
        for clip_id, t in zip(clip_ids, tags):
            np.testing.assert_array_equal(t, row[tid_of[int(clip_id)]])


def test_classic_labels_equal_the_pickled_vectors(msd_builds, synthetic_msd):
    data_dir, summary = synthetic_msd
    records, info, _ = msd_builds["classic"]
    tid_of, _ = _songs(data_dir)
    with open(os.path.join(data_dir, "classic", "msd_id_to_tag_vector.cP"), "rb") as f:
        vectors = pickle.loads(f.read(), encoding="latin1")  # what the pickle says, unfiltered
    with open(os.path.join(data_dir, "classic", "filtered_list_train.cP"), "rb") as f:
        train_valid = [i for i in load_py2(f.read())]
    n_train = summary.classic_sizes["train"]
    plan = plan_msd(data_dir, MsdSettings("classic", f"{data_dir}/classic"), progress=False)
    assert len(plan.splits["train"]) + plan.notes["tracks_without_audio"]["train"] == n_train
    for split in ("train", "val", "test"):
        clip_ids, tags = _read_back(records, split)
        for clip_id, t in zip(clip_ids, tags):
            tid = tid_of[int(clip_id)]
            np.testing.assert_array_equal(t, vectors[tid].reshape(-1))
            assert (tid in train_valid[:n_train]) == (split == "train")


def test_lastfm_labels_are_val_above_50_and_artists_do_not_leak(msd_builds, synthetic_msd):
    data_dir, _ = synthetic_msd
    records, info, _ = msd_builds["lastfm"]
    tid_of, artist_of = _songs(data_dir)
    con = sqlite3.connect(os.path.join(data_dir, "lastfm_tags.db"))
    truth = {}
    for tid, tag, val in con.execute(
            "SELECT tids.tid, tags.tag, tid_tag.val FROM tid_tag JOIN tids ON "
            "tids.ROWID = tid_tag.tid JOIN tags ON tags.ROWID = tid_tag.tag"):
        truth.setdefault(tid, {})[tag] = val
    artists = {}
    for split in ("train", "val", "test"):
        clip_ids, tags = _read_back(records, split)
        for clip_id, t in zip(clip_ids, tags):
            tid = tid_of[int(clip_id)]
            expected = [truth.get(tid, {}).get(name, 0) > 50 for name in info.tag_names]
            np.testing.assert_array_equal(t, np.array(expected, np.float32))
            assert t.any()
        artists[split] = {artist_of[tid_of[int(c)]] for c in clip_ids}
    student_ids, _ = _read_back(records, "student")
    artists["student"] = {artist_of[tid_of[int(c)]] for c in student_ids}
    names = list(artists)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not artists[a] & artists[b], (a, b)
    assert "favorites" not in info.tag_names and "Love" not in info.tag_names


@pytest.mark.parametrize("source", ["lastfm", "cals"])
def test_student_split_is_unlabelled_and_refused_for_evaluation(msd_builds, source):
    records, info, plan = msd_builds[source]
    assert not is_labelled(info, "student") and is_labelled(info, "test")
    assert plan.unlabelled == ("student",)
    _, tags = _read_back(records, "student")
    assert len(tags) == info.splits["student"]["clips"] > 0 and not tags.any()
    with pytest.raises(UserError, match="holds no labels"):
        require_labelled(info, "student")


def test_an_audio_dir_that_is_missing_or_a_file_is_one_line(synthetic_msd, tmp_path):
    data_dir, _ = synthetic_msd
    for path, said in ((tmp_path / "none", "does not exist; pass --audio-dir"),
                       (f"{data_dir}/lastfm_tags.db", "is a file, not a folder; give the "
                                                     "folder of the audio with --audio-dir")):
        with pytest.raises(UserError) as error:
            plan_msd(data_dir, MsdSettings("cals", f"{data_dir}/cals", audio_dir=str(path)),
                     progress=False)
        assert str(error.value) == f"audio folder {str(path)!r} {said}"


def test_layouts_resolve_by_msd_id(synthetic_msd, tmp_path):
    """The same tracks under A/B/C/TR....mp3 are found by auto-detection."""
    data_dir, _ = synthetic_msd
    plan7 = plan_msd(data_dir, MsdSettings("cals", f"{data_dir}/cals"), progress=False)
    root = tmp_path / "by_id"
    tid_of, _ = _songs(data_dir)
    moved = 0
    for clips in plan7.splits.values():
        for clip in clips:
            src = os.path.join(plan7.audio_root, clip.path)
            if not os.path.isfile(src) or clip.path in plan7.known_broken:
                continue
            tid = tid_of[clip.clip_id]
            dst = root / tid[2] / tid[3] / tid[4] / f"{tid}.mp3"
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, dst)
            moved += 1
    plan = plan_msd(data_dir, MsdSettings("cals", f"{data_dir}/cals", audio_dir=str(root)),
                    progress=False)
    assert plan.notes["layout"] == "msd" and plan.notes["audio_extension"] == "mp3"
    for split in plan7.splits:
        assert list(plan.splits[split].clip_ids) == list(plan7.splits[split].clip_ids)
        first = plan.splits[split][0]
        assert first.path == "/".join([tid_of[first.clip_id][2], tid_of[first.clip_id][3],
                                       tid_of[first.clip_id][4], tid_of[first.clip_id] + ".mp3"])
    assert plan.notes["tracks_without_audio"] == plan7.notes["tracks_without_audio"]
    assert moved + len(plan.known_broken) == sum(len(c) for c in plan.splits.values())


def test_a_data_dir_whose_name_is_not_utf8(synthetic_msd, tmp_path, capsys):
    """The data dir's name is not valid UTF-8 (written on a system with
    another encoding; the records go to DATA/tfrecord) and its audio folder
    holds a stray file named so: built like the synthetic MSD, the summary
    names the out dir with the undecodable byte as \\xNN."""
    source, _ = synthetic_msd
    data = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"msd\xe9"))
    os.makedirs(os.path.join(data, "audio"))
    for name in ("track_metadata.db", "lastfm_tags.db", "synthetic.json", "cals"):
        os.symlink(os.path.join(source, name), os.path.join(data, name))
    audio = sorted(os.listdir(os.path.join(source, "audio")))
    for name in audio:
        os.symlink(os.path.join(source, "audio", name), os.path.join(data, "audio", name))
    first = os.path.join(source, "audio", audio[0])
    while os.path.isdir(first):
        first = os.path.join(first, sorted(os.listdir(first))[0])
    shutil.copy(first, os.fsdecode(os.path.join(os.fsencode(data), b"audio/bad\xff\xfe.mp3")))
    code = build_msd.main(["--data-dir", data, "--split", "cals", os.path.join(data, "cals"),
                           "--workers", "1", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.startswith(f"dataset 'msd' in {tmp_path}/msd\\xe9/tfrecord: ")
    info = load_info(os.path.join(data, "tfrecord"))
    plan = plan_msd(source, MsdSettings("cals", os.path.join(source, "cals")), progress=False)
    for split, clips in plan.splits.items():  # every clip, not one more
        skipped = sum(s["split"] == split for s in info.skipped)
        assert info.splits[split]["clips"] + skipped == len(clips), split


# ------------------------------------------------------------- bad inputs

def _error(capsys, argv):
    assert build_msd.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_get_one_line(synthetic_msd, tmp_path, capsys):
    data_dir, _ = synthetic_msd
    out = ["--out-dir", str(tmp_path / "out"), "--no-progress", "--workers", "1"]
    empty = tmp_path / "empty"
    (empty / "audio" / "1").mkdir(parents=True)
    assert "track_metadata.db' not found" in _error(capsys, ["--data-dir", str(empty), *out])
    wrong = tmp_path / "wrong"
    (wrong / "audio" / "1").mkdir(parents=True)
    sqlite3.connect(wrong / "track_metadata.db").execute("CREATE TABLE songs (title text)")
    assert "lacks column(s) track_id, artist_id, track_7digitalid" in _error(
        capsys, ["--data-dir", str(wrong), *out])
    corrupt = tmp_path / "classic"
    corrupt.mkdir()
    for name in ("filtered_list_train.cP", "filtered_list_test.cP", "msd_id_to_tag_vector.cP"):
        with open(os.path.join(data_dir, "classic", name), "rb") as f:
            (corrupt / name).write_bytes(f.read())
    (corrupt / "filtered_list_test.cP").write_bytes(b"\x80\x02]q\x00(U\x12TRAB")
    assert "filtered_list_test.cP' is not a readable pickle" in _error(
        capsys, ["--data-dir", data_dir, "--split", "classic", str(corrupt), *out])
    (corrupt / "filtered_list_test.cP").write_bytes(pickle.dumps(os.system, protocol=2))
    assert "names posix.system" in _error(
        capsys, ["--data-dir", data_dir, "--split", "classic", str(corrupt), *out])
    assert "--top-k applies to --split lastfm only" in _error(
        capsys, ["--data-dir", data_dir, "--split", "cals", f"{data_dir}/cals", "--top-k", "5",
                 *out])
    with pytest.raises(SystemExit):
        build_flags.parse_args("msd", ["--split", "cals"])
    assert "needs the folder" in capsys.readouterr().err


def test_split_file_ids_without_audio_are_counted_not_errors(synthetic_msd, tmp_path):
    """A CALS id with no row in track_metadata.db, and one with no file:
    both counted and reported; the build goes on."""
    data_dir, _ = synthetic_msd
    cals = tmp_path / "cals"
    cals.mkdir()
    for name in os.listdir(os.path.join(data_dir, "cals")):
        with open(os.path.join(data_dir, "cals", name), "rb") as f:
            (cals / name).write_bytes(f.read())
    ids = np.load(cals / "test_ids.npy")
    binaries = np.load(cals / "test_binaries.npy")
    np.save(cals / "test_ids.npy", np.concatenate([ids, np.array(["TRZZZZZ128F0000000"])]))
    np.save(cals / "test_binaries.npy", np.concatenate([binaries, binaries[:1]]))
    plan = plan_msd(data_dir, MsdSettings("cals", str(cals)), progress=False)
    assert plan.notes["ids_not_in_track_metadata"] == {"test": 1}
    assert len(plan.splits["test"]) == len(ids)
    np.save(cals / "test_binaries.npy", binaries[:, :10])
    with pytest.raises(UserError, match=r"has shape \(\d+, 10\); expected"):
        plan_msd(data_dir, MsdSettings("cals", str(cals)), progress=False)


def test_cli_build_resumes_byte_identical(synthetic_msd, tmp_path, capsys):
    data_dir, _ = synthetic_msd
    out = tmp_path / "records"
    argv = ["--data-dir", data_dir, "--split", "cals", f"{data_dir}/cals", "--out-dir",
            str(out), "--num-audios-per-shard", "8", "--workers", "1", "--no-progress"]
    assert build_msd.main(argv) == 0
    assert "student" in capsys.readouterr().out
    shards = sorted(p for p in os.listdir(out) if p.endswith(".tfrecord"))
    before = {p: (out / p).read_bytes() for p in shards}
    os.remove(out / shards[1])  # as if killed while writing it
    os.remove(out / "dataset_info.json")
    assert build_msd.main(argv) == 0
    assert {p: (out / p).read_bytes() for p in shards} == before


def test_a_classic_tag_list_saved_with_a_byte_order_mark_names_the_same_tags(
        synthetic_msd, tmp_path):
    from tagger.datasets.msd.labels import from_classic
    from tagger.datasets.msd.sqlite import read_songs

    data_dir, _ = synthetic_msd
    folder = tmp_path / "classic"
    shutil.copytree(os.path.join(data_dir, "classic"), folder)
    songs = read_songs(data_dir)
    plain = from_classic(str(folder), songs)
    names = (folder / "50tagList.txt").read_text().split("\n")
    (folder / "50tagList.txt").write_text("\r\n".join(names), encoding="utf-8-sig")
    marked = from_classic(str(folder), songs)
    assert marked.tag_names == plain.tag_names == CLASSIC_TAGS
    for split in ("train", "val", "test"):
        assert (marked.labels[split] == plain.labels[split]).all()
