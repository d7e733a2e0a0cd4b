"""The beets plugin (beetsplug/musictagger.py) in a real beets library: files
imported with `beet import -A`, tagged by `beet musictag` through beets'
own command line, fields read back with `beet ls`, files with mutagen."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("beets")

ROOT = pathlib.Path(__file__).resolve().parents[2]
WINDOWS = 4  # the plugin's default windows setting (window_choice.LIBRARY_WINDOWS)
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


def beet(library, *args, check=True):
    env = {**os.environ, "BEETSDIR": str(library),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "beets", *args], capture_output=True,
                          text=True, env=env, cwd=library)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def make_library(folder, model=None, settings=""):
    """A beets config in `folder` (its library and music there too), the
    plugin enabled with `model` (None: the default) and `settings`."""
    (folder / "config.yaml").write_text(
        f"directory: {folder / 'music'}\nlibrary: {folder / 'library.db'}\n"
        "plugins: [musictagger]\nimport: {copy: yes, write: no, quiet: yes}\n"
        f"musictagger:\n  batch_size: 8\n{f'  model: {model}' if model else ''}\n{settings}")
    return folder


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
            assert (tags, model, mood) == ("", "", "$mood")
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

    # a rerun tags the failed file alone; nothing else is read or written again
    stamps = {p: os.stat(p).st_mtime_ns for p in paths}
    done = beet(library, "-v", "musictag", "--write")
    assert "up to date: 2 of 3 items" in done.stderr
    assert {p: os.stat(p).st_mtime_ns for p in paths} == stamps
    # beets writing other tags into the files keeps them up to date
    beet(library, "modify", "-y", "-w", "-M", "title=renamed")
    assert all(os.stat(p).st_mtime_ns != stamps[p] for p in paths if p != broken)
    assert "up to date: 2 of 3 items" in beet(library, "-v", "musictag").stderr
    done = beet(library, "-v", "musictag", "--force", "mtt_guitar:0..")
    assert "up to date" not in done.stderr and "skipped" not in done.stderr


@pytest.mark.slow
def test_import_tags_items_and_labels_csv_is_read_by_build_folder(recordings, tiny_mtt_model,
                                                                  tmp_path):
    from tagger.datasets.folder import audio_files, read_labels

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
        "top_k: 0", "fields: {title: [rock]}"))
    done = beet(library, "musictag", check=False)
    assert done.returncode == 1 and done.stderr.startswith(
        "error: musictagger fields: beets' title holds one value, not a list of tags; ")
    assert done.stderr.count("\n") == 1
    csv_text = beet(library, "musictag", "--labels", "musictagger_tags").stdout
    (tmp_path / "labels.csv").write_text(csv_text)
    music = str(tmp_path / "music")
    names, rows = read_labels(str(tmp_path / "labels.csv"), audio_files(music))
    assert sorted(os.path.join(music, p) for p in rows) == sorted(tags)
    for path, hot in rows.items():
        assert {n for n, on in zip(names, hot) if on} == set(
            tags[os.path.join(music, path)].split("; "))


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
    env = {**os.environ, "BEETSDIR": str(library),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_SECOND_STORE, "musictag"],
                            capture_output=True, text=True, env=env, cwd=library)
    assert killed.returncode == 137, killed.stderr
    models = listed(library, "$musictagger_model")
    assert len(models) == 3 and sum(m.startswith("tiny_conv/tiny sha256:") for m in models) == 1
    done = beet(library, "-v", "musictag")
    assert "up to date: 1 of 3 items" in done.stderr
    assert len(set(listed(library, "$musictagger_model"))) == 1


@pytest.mark.slow
def test_mtt_musicnn_is_the_default_and_scores_as_tag_py(musicnn_wheel, recordings, tmp_path):
    from tagger import pretrained
    from tagger.commands import pretrained as pretrained_cmd
    from tagger.datasets.mtt import MTT_TOP50
    from tagger.inference.api import clip_scores
    from tagger.inference.common import model_fingerprint
    from tagger.inference.library.beets_fields import score_fields

    assert pretrained_cmd.main(["download", "MTT_musicnn", "--weights", musicnn_wheel,
                                "--no-progress"]) == 0  # into the session's TAGGER_HOME
    model = pretrained.model_path(pretrained.get("MTT_musicnn"))
    library = make_library(tmp_path)
    beet(library, "import", "-A", str(recordings[0].parent))
    beet(library, "musictag")
    fields = score_fields("mtt", MTT_TOP50)
    rows = [line.split("|") for line in listed(
        library, "|".join(["$path", "$musictagger_model", *(f"${f}" for f in fields)]))]
    assert len(rows) == len(FORMATS)
    for path, label, *scores in rows:
        assert label == f"MTT_musicnn sha256:{model_fingerprint(model)} windows:{WINDOWS}"
        np.testing.assert_allclose([float(s) for s in scores], clip_scores(path, model)[1],
                                   atol=6e-4)


@pytest.mark.slow
def test_suggest_prints_the_items_without_the_field_to_label_next(recordings, tmp_path):
    """`--suggest N --labels FIELD`: the labels CSV of the N items lacking
    FIELD that train.py --suggest's choice puts first, tags left empty (a
    tiny tagger with an embedding layer)."""
    from tagger.datasets.folder import audio_files, read_labels
    from tests.training.test_own_tags import write_body

    library = make_library(tmp_path, write_body(tmp_path / "tagger.keras"))
    beet(library, "import", "-A", str(recordings[0].parent))
    labelled = listed(library, "$path", "format:MP3")
    beet(library, "modify", "-y", "format:MP3", "mood=calm")
    music = tmp_path / "music"
    unlabelled = sorted(os.path.relpath(p, music) for p in listed(library, "$path")
                        if p not in labelled)
    assert len(labelled) == 1 and len(unlabelled) == 2
    one = beet(library, "musictag", "--suggest", "1", "--labels", "mood").stdout
    lines = one.splitlines()
    assert lines[0] == "path,tags" and len(lines) == 2 and lines[1][:-1] in unlabelled
    assert lines[1].endswith(",")
    every = beet(library, "musictag", "--suggest", "5", "--labels", "mood").stdout
    (tmp_path / "suggested.csv").write_text(every)
    names, rows = read_labels(str(tmp_path / "suggested.csv"), audio_files(str(music)))
    assert (names, sorted(rows)) == ((), unlabelled)
    assert every.splitlines()[1] == lines[1]  # the same first choice
    done = beet(library, "musictag", "--suggest", "2", check=False)
    assert (done.returncode, done.stderr) == (
        1, "error: --suggest takes a number of items, at least 1, and --labels FIELD, the "
           "field they lack; got --suggest 2 and --labels None\n")


@pytest.mark.slow
def test_the_windows_a_track_is_scored_from_are_recorded_and_another_n_tags_again(
        tiny_mtt_model, tmp_path):
    """A 40 s track: scored from the `windows` setting's N (the windows
    tag_files(windows=N) scores), -n/--windows N another N, 0 or all every
    window; each N in musictagger_model, so a changed N tags it again."""
    from tagger.inference.engine.registry import make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.inference.engine.window_choice import LIBRARY_WINDOWS
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
    predictor = make_predictor("keras", *load_tagger(tiny_mtt_model))
    for flags, n in (((), WINDOWS), (("-n", "2"), 2), (("--windows", "all"), None)):
        done = beet(library, "-v", "musictag", *flags)
        assert "up to date" not in done.stderr  # another N each time: tagged again
        (model,) = listed(library, "$musictagger_model")
        assert model.endswith(f" windows:{n}") if n else "windows:" not in model
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
