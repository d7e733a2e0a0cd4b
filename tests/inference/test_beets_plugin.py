"""The beets plugin (beetsplug/musictagger.py) in a real beets library: files
imported with `beet import -A`, tagged by `beet musictag` through beets'
own command line, fields read back with `beet ls`, files with mutagen."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("beets")

ROOT = pathlib.Path(__file__).resolve().parents[2]
WINDOWS = 8  # the plugin's default windows setting (window_choice.LIBRARY_WINDOWS)
SECONDS = 4
FORMATS = ("mp3", "flac", "ogg")


@pytest.fixture(scope="module")
def recordings(request, tmp_path_factory):
    """4 s of recorded music as MP3, FLAC and Ogg Vorbis (synthetic music
    where the recordings cannot be had)."""
    import soundfile

    folder = tmp_path_factory.mktemp("recordings")
    try:
        excerpts = request.getfixturevalue("real_music")
    except pytest.skip.Exception:
        from tests.checks import write_audio

        excerpts = [write_audio(folder / f"synthetic{i}.wav", 44100 * SECONDS, 44100, seed=i)
                    for i in range(len(FORMATS))]
    album = folder / "album"  # imported as one album: untitled singletons are duplicates
    album.mkdir()
    paths = []
    for i, fmt in enumerate(FORMATS):
        audio, rate = soundfile.read(str(excerpts[i % len(excerpts)]), frames=44100 * SECONDS)
        paths.append(album / f"track{i}.{fmt}")
        soundfile.write(str(paths[-1]), audio, rate)
    return paths


@pytest.fixture(scope="module")
def tiny_mtt_model(tmp_path_factory):
    """A tiny untrained tagger of MagnaTagATune's top-50 tags (score fields mtt_*)."""
    from tagger.datasets.mtt import MTT_TOP50
    from tests.checks import tiny_teacher

    return tiny_teacher(tmp_path_factory.mktemp("model") / "tiny.keras", MTT_TOP50, seed=3,
                        gain=3.0)


def beet_env(library, **env) -> dict:
    """The environment of a `beet` command on `library` (`env` added; a
    value None leaves that variable out)."""
    merged = {**os.environ, "BEETSDIR": str(library),
              "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
              **env}
    return {k: v for k, v in merged.items() if v is not None}


def beet(library, *args, check=True, cwd=None, **env):
    done = subprocess.run([sys.executable, "-m", "beets", *args], capture_output=True,
                          text=True, errors="surrogateescape", env=beet_env(library, **env),
                          cwd=cwd or library)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def make_library(folder, model=None, settings="", copy=True):
    """A beets config in `folder` (its library and music there too), the
    plugin enabled with `model` (None: the default) and `settings`; `copy`
    False: imported files stay where they are, in the music folder."""
    (folder / "config.yaml").write_text(
        f"directory: {folder / 'music'}\nlibrary: {folder / 'library.db'}\n"
        f"plugins: [musictagger]\nimport: {{copy: {'yes' if copy else 'no'}, write: no, "
        "quiet: yes, duplicate_action: keep}\n"
        f"musictagger:\n  batch_size: 8\n{f'  model: {model}' if model else ''}\n{settings}")
    return folder


def library_rows(database) -> tuple[list, list]:
    """([each item's row], [(item, field, value) of each flexible field])
    as the library database holds them."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return (db.execute("SELECT * FROM items ORDER BY id").fetchall(),
                db.execute("SELECT entity_id, key, value FROM item_attributes "
                           "ORDER BY entity_id, key").fetchall())


def listed(library, template, *query) -> list[str]:
    return beet(library, "ls", "-f", template, *query).stdout.splitlines()


@pytest.mark.slow
def test_musictag_stores_scores_writes_files_and_skips_unchanged(recordings, tiny_mtt_model,
                                                                  tmp_path):
    import mutagen

    from tagger.datasets.mtt import MTT_TOP50
    from tagger.inference.api import clip_scores
    from tagger.inference.common import model_fingerprint
    from tagger.inference.library.beets_fields import score_fields

    moods = list(MTT_TOP50[::2])  # a tag in half of the tags maps to the field `mood`
    mapping = {"mood": moods, "genres": list(MTT_TOP50)}  # genres: beets' own, in the files
    library = make_library(tmp_path, tiny_mtt_model,
                           f"  fields: {json.dumps(mapping)}\n  windows: all\n")
    beet(library, "import", "-A", str(recordings[0].parent))
    paths = listed(library, "$path")
    assert sorted(pathlib.Path(p).suffix for p in paths) == [".flac", ".mp3", ".ogg"]
    broken = next(p for p in paths if p.endswith(".flac"))
    pathlib.Path(broken).write_bytes(b"fLaC" + bytes(4000))  # no audio left in it
    before = {p: os.stat(p).st_mtime_ns for p in paths}

    done = beet(library, "musictag", "--write")
    assert [line for line in done.stderr.splitlines() if "skipped" in line] == [
        f"musictagger: skipped {broken}: " + done.stderr.split(f"{broken}: ")[1].splitlines()[0]]

    fields = score_fields("mtt", MTT_TOP50)
    rows = [line.split("|") for line in listed(
        library, "|".join(["$path", "$musictagger_tags", "$musictagger_model", "$mood",
                           *(f"${f}" for f in fields)]))]
    label = f"tiny_conv/tiny sha256:{model_fingerprint(tiny_mtt_model)}"
    mapped = []
    for path, tags, model, mood, *scores in rows:
        if path == broken:  # nothing stored for the file that failed
            assert (tags, model, mood) == ("$musictagger_tags", "$musictagger_model", "$mood")
            assert os.stat(path).st_mtime_ns == before[path]
            continue
        names, expected = clip_scores(path, tiny_mtt_model)  # what tag.py's library gives
        assert names == list(MTT_TOP50)
        np.testing.assert_allclose([float(s) for s in scores], expected, atol=2e-3)
        top = [MTT_TOP50[i] for i in np.argsort(-expected, kind="stable")[:5]]
        assert tags.split("; ") == top and model == label
        mapped.append("; ".join(t for t in top if t in moods) or "$mood")  # none: unset
        assert mood == mapped[-1]
        written = mutagen.File(path)
        if path.endswith(".mp3"):
            assert written.tags.getall("TXXX:tagger")[0].text == [tags]
            assert written.tags.getall("TXXX:tagger_model")[0].text == [label]
            assert written.tags.getall("TCON")[0].text == top
        else:
            assert written["tagger"] == [tags] and written["tagger_model"] == [label]
            assert written["genre"] == top

    assert len(mapped) == 2 and mapped != ["$mood", "$mood"]

    # scores are floats to beets: a range query between two items' scores finds one
    good = sorted((float(s[fields.index("mtt_guitar")]), p) for p, *_, s in
                  ((r[0], r[1], r[2], r[3], r[4:]) for r in rows) if p != broken)
    middle = (good[0][0] + good[1][0]) / 2
    assert listed(library, "$path", f"mtt_guitar:{middle}..") == [good[1][1]]

    # a rerun tags the failed file alone, now of 0 bytes, and a read-only file
    # changed since; a line for each that cannot be tagged and nothing else,
    # under an engine converted to TFLite (TensorFlow's first log call adds a
    # handler, on the stderr that stands in while native output is hidden);
    # nothing else is read or written again
    pathlib.Path(broken).write_bytes(b"")
    stamps = {p: os.stat(p).st_mtime_ns for p in paths}
    read_only = next(p for p in paths if p.endswith(".mp3"))
    os.utime(read_only, ns=(stamps[read_only], stamps[read_only] + 10**9))
    os.chmod(read_only, 0o444)
    try:
        done = beet(library, "-v", "musictag", "--write", TAGGER_ENGINE="tflite")
    finally:
        os.chmod(read_only, 0o644)
    written = os.geteuid() == 0  # root writes a read-only file
    said = [line for line in done.stderr.splitlines() if line.startswith("musictagger: ")]
    skipped = [f"musictagger: skipped {broken}: empty file (0 bytes)"]
    if not written:
        reason = done.stderr.split(f"{read_only}: beets could not write its tags: ")[1]
        skipped.append(f"musictagger: skipped {read_only}: beets could not write its tags: "
                       + reason.splitlines()[0])
    assert said[0] == "musictagger: up to date: 1 of 3 items (--force tags them again)"
    assert sorted(said[1:-1]) == sorted(skipped) and said[-1] == (
        f"musictagger: {len(skipped)} of 2 items could not be tagged")
    assert "Logging error" not in done.stderr and "Traceback" not in done.stderr
    assert "could not be tagged" not in done.stderr.replace(said[-1], "")  # said once
    if not written:  # as it was: its tags stored in beets and the file
        os.utime(read_only, ns=(stamps[read_only], stamps[read_only]))
    assert {p: os.stat(p).st_mtime_ns for p in paths if p != read_only} == {
        p: stamps[p] for p in paths if p != read_only}
    # beets writing other tags into the files keeps them up to date
    beet(library, "modify", "-y", "-w", "-M", "title=renamed")
    assert all(os.stat(p).st_mtime_ns != stamps[p] for p in paths if p != broken)
    assert "up to date: 2 of 3 items" in beet(library, "-v", "musictag").stderr
    done = beet(library, "-v", "musictag", "--force", "mtt_guitar:0..")
    assert "up to date" not in done.stderr and "skipped" not in done.stderr


@pytest.mark.slow
def test_import_tags_items_and_labels_csv_is_read_by_build_folder(recordings, tiny_mtt_model,
                                                                  tmp_path):
    from tagger.datasets.folder import audio_files
    from tagger.datasets.labels_csv import read_labels

    library = make_library(tmp_path, tiny_mtt_model, "  auto: yes\n  top_k: 3\n")
    beet(library, "import", "-A", str(recordings[0].parent))
    tags = dict(line.split("|") for line in listed(library, "$path|$musictagger_tags"))
    assert len(tags) == 3 and all(len(t.split("; ")) == 3 for t in tags.values())

    # a bad setting is one line, before any model is loaded
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace(
        "top_k: 3", "top_k: 0"))
    done = beet(library, "musictag", check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: musictagger top_k is a number of tags, at least 1; got 0\n")
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace(
        "top_k: 0", "top_k: yes"))  # YAML's true, which Python counts as 1
    done = beet(library, "musictag", check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: musictagger top_k is a number of tags, at least 1; got True\n")
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace(
        "top_k: yes", "fields: {title: [rock]}"))
    done = beet(library, "musictag", check=False)
    assert done.returncode == 1 and done.stderr.startswith(
        "error: musictagger fields: beets' title holds one value, not a list of tags; ")
    assert done.stderr.count("\n") == 1
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace(
        "auto: yes", "auto: maybe"))  # one line, not a plugin that fails to load
    done = beet(library, "musictag", "--labels", "musictagger_tags")
    assert done.stderr == ("musictagger: auto is yes or no, got 'maybe': items are not tagged "
                           "on import until it is\n")
    csv_text = done.stdout
    (tmp_path / "labels.csv").write_text(csv_text)
    music = str(tmp_path / "music")
    rows = read_labels(str(tmp_path / "labels.csv"), audio_files(music))
    assert sorted(os.path.join(music, p) for p in rows) == sorted(tags)
    for path, read in rows.items():
        assert read == set(tags[os.path.join(music, path)].split("; "))


# `beet musictag` whose process dies (os._exit: no cleanup, as a kill) when it
# stores its second item
KILLED_AT_SECOND_STORE = """
import os, sys
from beets import library, ui
store, calls = library.Item.store, []
def dying_store(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os._exit(137)
    return store(self, *args, **kwargs)
library.Item.store = dying_store
ui.main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(recordings, tiny_mtt_model, tmp_path):
    import mutagen

    library = make_library(tmp_path, tiny_mtt_model)
    beet(library, "import", "-A", str(recordings[0].parent))
    # beets writing items not yet tagged writes none of our (empty) tags
    beet(library, "modify", "-y", "-w", "-M", "title=untagged")
    files = [mutagen.File(p) for p in listed(library, "$path")]
    assert [set(f.tags.keys()) & {"tagger", "tagger_model", "TXXX:tagger"} for f in files] == [
        set()] * 3 and sorted(f["title"][0] if "title" in f else f.tags["TIT2"].text[0]
                              for f in files) == ["untagged"] * 3
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_SECOND_STORE, "musictag"],
                            capture_output=True, text=True, env=beet_env(library), cwd=library)
    assert killed.returncode == 137, killed.stderr
    models = listed(library, "$musictagger_model")
    assert len(models) == 3 and sum(m.startswith("tiny_conv/tiny sha256:") for m in models) == 1
    done = beet(library, "-v", "musictag")
    assert "up to date: 1 of 3 items" in done.stderr
    assert "taking over the lock of a beet musictag run that no longer runs" in done.stderr
    assert len(set(listed(library, "$musictagger_model"))) == 1


@pytest.mark.slow
def test_mtt_musicnn_is_the_default_and_scores_as_tag_py(musicnn_wheel, recordings, tmp_path,
                                                       monkeypatch):
    """The default model, converted on its first use from its original as
    a download leaves it: `beet musictag` says that in one line and nothing
    else (none of TensorFlow's start-up lines, as a user runs it)."""
    import shutil

    from tagger import pretrained
    from tagger.datasets.mtt import MTT_TOP50
    from tagger.inference.api import clip_scores
    from tagger.inference.common import model_fingerprint
    from tagger.inference.library.beets_fields import score_fields

    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "tagger_home"))  # for `beet` too
    entry = pretrained.get("MTT_musicnn")
    original, model = pretrained.original_path(entry), pretrained.model_path(entry)
    os.makedirs(os.path.dirname(original))
    shutil.copy(musicnn_wheel, original)
    library = make_library(tmp_path)
    beet(library, "import", "-A", str(recordings[0].parent))
    done = beet(library, "musictag", TF_CPP_MIN_LOG_LEVEL=None)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("converting ") and done.stderr.endswith(f" -> {model}\n")
    fields = score_fields("mtt", MTT_TOP50)
    rows = [line.split("|") for line in listed(
        library, "|".join(["$path", "$musictagger_model", *(f"${f}" for f in fields)]))]
    assert len(rows) == len(FORMATS)
    for path, label, *scores in rows:
        assert label == (f"MTT_musicnn sha256:{model_fingerprint(model)} windows:{WINDOWS} "
                         "rule:2")
        np.testing.assert_allclose([float(s) for s in scores], clip_scores(path, model)[1],
                                   atol=6e-4)


@pytest.mark.slow
def test_suggest_prints_the_items_without_the_field_to_label_next(recordings, tmp_path):
    """`--suggest N --labels FIELD`: the labels CSV of the N items lacking
    FIELD that train.py --suggest's choice puts first, tags left empty (a
    tiny tagger with an embedding layer); FIELD one of beets' own (genres,
    in every item, empty where unset) or a flexible one (mood)."""
    from tagger.datasets.folder import audio_files
    from tagger.datasets.labels_csv import read_labels
    from tests.training.own_tags_data import write_body

    library = make_library(tmp_path, write_body(tmp_path / "tagger.keras"))
    beet(library, "import", "-A", str(recordings[0].parent))
    labelled = listed(library, "$path", "format:MP3")
    beet(library, "modify", "-y", "format:MP3", "mood=calm", "genres=calm")
    music = tmp_path / "music"
    unlabelled = sorted(os.path.relpath(p, music) for p in listed(library, "$path")
                        if p not in labelled)
    assert len(labelled) == 1 and len(unlabelled) == 2
    one = beet(library, "musictag", "--suggest", "1", "--labels", "genres").stdout
    lines = one.splitlines()
    assert lines[0] == "path,tags" and len(lines) == 2 and lines[1][:-1] in unlabelled
    assert lines[1].endswith(",")
    every = beet(library, "musictag", "--suggest", "5", "--labels", "mood").stdout
    (tmp_path / "suggested.csv").write_text(every)
    rows = read_labels(str(tmp_path / "suggested.csv"), audio_files(str(music)))
    assert rows == dict.fromkeys(unlabelled, set())
    assert every.splitlines()[1] == lines[1]  # the same first choice
    done = beet(library, "musictag", "--suggest", "2", check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: --suggest takes a number of items, at least 1, and --labels FIELD, the "
           "field they lack; got --suggest 2 and --labels None\n")


def write_flac(path, seed, title, genres=()):
    """1 s of a tone as FLAC at `path` (bytes: any name), titled, with `genres`."""
    import mutagen.flac
    import soundfile

    from tests.checks import tone

    plain = os.path.join(os.path.dirname(path), b"plain.flac")
    soundfile.write(os.fsdecode(plain), tone(1.0, 8000, 1, 300 + 50 * seed, seed), 8000)
    tags = mutagen.flac.FLAC(plain)
    tags["title"] = title
    if genres:
        tags["genre"] = list(genres)
    tags.save()
    os.rename(plain, path)


@pytest.mark.slow
def test_labels_list_the_items_with_a_value_and_build_folder_reads_every_name(tmp_path,
                                                                               capsys):
    """`--labels FIELD` lists the items FIELD gives a tag, named as the
    labels CSV names them; build_folder.py --labels reads that CSV back for
    a name that is not UTF-8; a field no item has, and -n/--windows (with
    --labels, with --suggest), are one line each. (beets 2.14 keeps a
    backslash in a name under its directory as a `/`, another file:
    tests/training/test_suggest.py feeds such a name back through
    suggested.csv.)"""
    from tagger.commands import build_folder
    from tagger.records.info import load_info
    from tagger.records.reader import clip_dataset
    from tests.checks import call_main

    library = make_library(tmp_path, copy=False)
    music = tmp_path / "music"
    (music / "sub").mkdir(parents=True)
    root = os.fsencode(music)
    names = {b"a.flac": ("alpha", ["rock"]), b"b\xff.flac": ("bravo", ["jazz"]),
             b"c.flac": ("charlie", ["rock", "pop"]), b"sub/e.flac": ("delta", []),
             b"f.flac": ("echo", [])}
    for seed, (name, (title, genres)) in enumerate(names.items()):
        write_flac(os.path.join(root, name), seed, title, genres)
    beet(library, "import", "-A", str(music))
    beet(library, "modify", "-y", "title:alpha", "comments=calm")
    beet(library, "modify", "-y", "title:echo", "mood=happy; bright")
    assert len(listed(library, "$title")) == 5

    def labels(field):
        lines = beet(library, "musictag", "--labels", field).stdout.splitlines()
        assert lines[0] == "path,tags"
        return sorted(lines[1:])

    assert labels("genres") == ["a.flac,rock", "b\\xff.flac,jazz", "c.flac,rock;pop"]
    assert labels("comments") == ["a.flac,calm"]  # beets' own text field, empty elsewhere
    assert labels("mood") == ["f.flac,happy;bright"]  # a flexible field, set on one item
    for field in ("bpm", "genre"):  # a number of beets', 0 where unset; a misspelt field
        done = beet(library, "musictag", "--labels", field, check=False)
        assert (done.returncode, done.stdout, done.stderr) == (
            1, "", f"error: no item the query matches has {field}, so there are no labels to "
                   f"print; name a field they have (`beet ls -f '${field}' QUERY` shows it)\n")
    for argv, where in ((("--labels", "genres"), "with --labels alone (it reads the field, it "
                                                 "tags no item)"),
                        (("--suggest", "1", "--labels", "genres"), "with --suggest (it tags no "
                                                                   "item, and scores every "
                                                                   "window)")):
        done = beet(library, "musictag", *argv, "-n", "8", check=False)
        assert (done.returncode, done.stdout, done.stderr) == (
            1, "", f"error: -n/--windows does not apply {where}; leave it out\n")

    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(beet(library, "musictag", "--labels", "genres").stdout)
    out = tmp_path / "records"
    code, _, err = call_main(build_folder.main, capsys, music, "--out-dir", out, "--labels",
                             csv_path, "--sample-rate", "8000", "--segment-length", "8000",
                             "--workers", "1", "--no-progress", "--val-fraction", "0",
                             "--test-fraction", "0")  # three files labelled: all train
    assert code == 0, err
    info = load_info(str(out))
    assert info.tag_names == ("rock", "jazz", "pop")
    tagged = {clip["path"]: tuple(clip["tags"].astype(int)) for split in ("train", "val", "test")
              for clip in clip_dataset(str(out), split, info).as_numpy_iterator()}
    assert tagged == {b"a.flac": (1, 0, 0), b"b\xff.flac": (0, 1, 0), b"c.flac": (1, 0, 1)}
    assert info.splits["student"]["clips"] == 2  # e and f: no genre, not labelled


FIVE_TAGS = ["Hip-Hop", "hip hop", "R&B", "r b", "hip hop 2"]


@pytest.mark.slow
def test_musictag_prints_its_own_lines_only_and_gives_each_tag_a_field(recordings, tmp_path):
    """Nothing but its own lines (no TensorFlow start-up lines, no
    decoder's notes on a damaged MP3); five tags whose names make the same
    field names get five fields; the `model` setting's `~` and relative
    path read as beets reads its paths; an empty -m and a flag that does
    not apply are one line each. Items imported with the plugin hold none
    of its fields until tagged, and a refused run (a model file that is
    not there) leaves the library's items as they were."""
    from tagger.inference.api import clip_scores
    from tagger.inference.library.file_tags import stamp_of
    from tests.checks import tiny_teacher

    library = tmp_path / "beets"
    (library / "models").mkdir(parents=True)
    model = tiny_teacher(library / "models" / "odd.keras", FIVE_TAGS, seed=4,
                         bias=[-2.0, -1.0, 0.0, 1.0, 2.0])  # each tag's scores apart
    make_library(library, "~/models/odd.keras", "  windows: all\n")  # as clip_scores
    beet(library, "import", "-A", str(recordings[0].parent))
    imported = library_rows(library / "library.db")
    assert len(imported[0]) == len(FORMATS)
    assert [key for _, key, _ in imported[1] if key.startswith("musictagger")] == []
    absent = library / "models" / "absent.keras"
    done = beet(library, "musictag", "-m", str(absent), check=False)
    assert (done.returncode, done.stderr) == (1, f"error: model file '{absent}' not found\n")
    assert library_rows(library / "library.db") == imported
    done = beet(library, "musictag", cwd=tmp_path, HOME=str(library),
                TF_CPP_MIN_LOG_LEVEL=None)  # as a user runs it: no log level set
    assert (done.stdout, done.stderr) == ("", "")

    fields = ["odd_hip_hop", "odd_hip_hop_2", "odd_r_b", "odd_r_b_2", "odd_hip_hop_2_2"]
    rows = [line.split("|") for line in listed(library, "|".join(
        ["$path", *(f"${f}" for f in fields)]))]
    assert len(rows) == len(FORMATS)
    for path, *scores in rows:
        names, expected = clip_scores(path, model)
        assert names == FIVE_TAGS
        np.testing.assert_allclose([float(s) for s in scores], expected, atol=2e-3)
        assert min(abs(a - b) for i, a in enumerate(expected) for b in expected[i + 1:]) > 0.01

    # a damaged MP3, decoded past its damage: no decoder's notes either (tag.py's)
    mp3 = pathlib.Path(next(path for path, *_ in rows if path.endswith(".mp3")))
    data = bytearray(mp3.read_bytes())
    for start in range(len(data) // 3, 2 * len(data) // 3, 997):
        data[start:start + 40] = bytes(40)
    mp3.write_bytes(bytes(data))
    done = beet(library, "musictag", "format:MP3", cwd=tmp_path, HOME=str(library),
                TF_CPP_MIN_LOG_LEVEL=None)
    assert (done.stdout, done.stderr) == ("", "")
    assert listed(library, "$musictagger_stamp", "format:MP3") == [stamp_of(os.stat(mp3))]

    # the relative path is the config file's folder's: the scores are typed, numbers
    (library / "config.yaml").write_text((library / "config.yaml").read_text().replace(
        "~/models/odd.keras", "models/odd.keras"))
    assert len(beet(library, "ls", "odd_hip_hop:0..1", cwd=tmp_path).stdout.splitlines()) == 3

    done = beet(library, "musictag", "-m", "", check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: -m/--model: expected a pretrained name or a model file, got '' (an unset "
           "shell variable?); name one\n")
    done = beet(library, "musictag", "--labels", "", check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: --labels takes a field's name, got an empty one (an unset shell "
           "variable?)\n")
    done = beet(library, "musictag", "--labels", "genres", "-f", check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: -f/--force does not apply with --labels alone (it reads the field, it tags "
           "no item); leave it out\n")


# `beet musictag` whose Item.store is counted (printed as "stores: N" at the
# end); with a folder as its first argument, its first store waits, holding
# the library, until the test creates `go` there, having created `held`
COUNTED_STORES = """
import pathlib, sys, time
from beets import library, ui
hold, store, stores = sys.argv[1], library.Item.store, []
def counted_store(self, *args, **kwargs):
    stores.append(1)
    if hold and len(stores) == 1:
        (pathlib.Path(hold) / "held").touch()
        while not (pathlib.Path(hold) / "go").exists():
            time.sleep(0.01)
    return store(self, *args, **kwargs)
library.Item.store = counted_store
try:
    ui.main(sys.argv[2:])
finally:
    print(f"stores: {len(stores)}", file=sys.stderr, flush=True)
"""


@pytest.mark.slow
def test_two_runs_at_once_tag_each_item_once(recordings, tiny_mtt_model, tmp_path):
    """The second run waits while the first holds the library (it says so),
    then finds every item up to date: each item scored and stored once."""
    library = make_library(tmp_path, tiny_mtt_model)
    beet(library, "import", "-A", str(recordings[0].parent))
    hold = tmp_path / "hold"
    hold.mkdir()

    def run(*args):
        return subprocess.Popen([sys.executable, "-c", COUNTED_STORES, *args],
                                stderr=subprocess.PIPE, text=True, env=beet_env(library),
                                cwd=library)

    first = run(str(hold), "musictag")
    second = None
    try:
        while not (hold / "held").exists():  # the first has scored an item, holding the lock
            assert first.poll() is None, first.communicate()[1]
            time.sleep(0.05)
        second = run("", "-v", "musictag")
        said = []
        for line in second.stderr:  # until it waits for the first (or ends: then it failed)
            said.append(line)
            if "waiting for the beet musictag run of pid" in line:
                break
        assert f"pid {first.pid} on " in said[-1], "".join(said)
    finally:
        (hold / "go").touch()
        first_said = first.communicate()[1]
        said += second.communicate()[1].splitlines(keepends=True) if second else []
    assert first.returncode == 0 and second.returncode == 0, first_said + "".join(said)
    assert first_said.splitlines()[-1] == "stores: 3"
    assert said[-1] == "stores: 0\n" and "up to date: 3 of 3 items" in "".join(said)
    assert len(set(listed(library, "$musictagger_stamp"))) == 3


@pytest.mark.slow
def test_the_windows_a_track_is_scored_from_are_recorded_and_another_n_tags_again(
        tiny_mtt_model, tmp_path):
    """A 40 s track: scored from the `windows` setting's N (the windows
    tag_files(windows=N) scores), -n/--windows N another N, 0 or all every
    window; each N in musictagger_model with the rule that chose the
    windows, so a changed N tags it again, and so does the same N of the
    earlier rule (`windows:8` without a rule, as an earlier version stored
    it)."""
    from tagger.inference.common import model_fingerprint
    from tagger.inference.engine.registry import make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.inference.library.file_tags import stamp_of
    from tagger.inference.window_choice import LIBRARY_WINDOWS, RULE
    from tagger.models.saved import load_tagger
    from tests.checks import write_audio

    assert WINDOWS == LIBRARY_WINDOWS
    album = tmp_path / "album"
    album.mkdir()
    write_audio(album / "long.flac", 40 * 22050, 22050, seed=5)
    (tmp_path / "beets").mkdir()
    library = make_library(tmp_path / "beets", tiny_mtt_model)
    beet(library, "import", "-A", str(album))
    (path,) = listed(library, "$path")
    earlier = f"tiny_conv/tiny sha256:{model_fingerprint(tiny_mtt_model)} windows:{WINDOWS}"
    with contextlib.closing(sqlite3.connect(library / "library.db")) as db, db:
        db.executemany("INSERT INTO item_attributes (entity_id, key, value) VALUES (1, ?, ?)",
                       [("musictagger_model", earlier),
                        ("musictagger_stamp", stamp_of(os.stat(path)))])
    predictor = make_predictor("keras", *load_tagger(tiny_mtt_model))
    for flags, n in (((), WINDOWS), (("-n", "2"), 2), (("--windows", "all"), None)):
        done = beet(library, "-v", "musictag", *flags)
        assert "up to date" not in done.stderr  # another N or rule each time: tagged again
        (model,) = listed(library, "$musictagger_model")
        assert model.endswith(f" windows:{n} rule:{RULE}") if n else "windows:" not in model
        (result,) = tag_files(predictor, [path], windows=n)
        assert (result.chosen is None) == (n is None) and result.windows == (n or
                                                                            result.windows)
        (score,) = listed(library, "$mtt_guitar")
        assert float(score) == pytest.approx(float(result.clip_scores[0]), abs=2e-3)
    assert "up to date: 1 of 1 items" in beet(library, "-v", "musictag", "-n", "0").stderr
    done = beet(library, "musictag", "-n", "some", check=False)
    assert done.returncode == 1 and done.stderr == (
        "error: musictagger windows: expected a number of windows (1 or more), or 0 or all "
        "for every window, got 'some'\n")


def test_beets_own_fields_are_told_from_flexible_ones():
    """What the plugin reads of beets' fields (`beets_field_type`): a list
    field's type is a delimited string, a one-value field's is not, and
    a flexible field has none."""
    from beets.dbcore import types

    from beetsplug.musictagger import beets_field_type

    assert isinstance(beets_field_type("genres"), types.DelimitedString)
    assert beets_field_type("title") is not None
    assert not isinstance(beets_field_type("title"), types.DelimitedString)
    assert beets_field_type("mood") is None
