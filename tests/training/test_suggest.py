"""train.py --from MODEL --suggest N: the unlabelled files to label next,
the head's least sure clips far apart from each other and from the
labelled ones (tagger/training/suggest.py), on small arrays, and on the
tones of test_own_tags with half of them labelled."""

import contextlib
import io
import os

import numpy as np
import pytest

from tagger.commands import train as train_cli
from tagger.training.suggest import SUGGESTED_FILE, choose, uncertainty
from tests.checks import built_once, call_main, one_line_error
from tests.training.own_tags_data import FILES, TRAIN_ARGS, build, write_body, write_music


def test_uncertainty_is_that_of_the_clips_least_sure_tag():
    scores = np.array([[0.5, 0.99], [0.9, 0.05], [0.0, 1.0], [0.3, 0.6]])
    np.testing.assert_allclose(uncertainty(scores), [1.0, 0.2, 0.0, 0.8])


def test_the_most_uncertain_clip_is_chosen_first():
    embeddings = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    scores = np.array([[0.95], [0.6], [0.45], [0.99]])
    assert choose(scores, embeddings, 1) == [2]


def test_a_near_copy_of_a_chosen_clip_is_passed_over_for_a_distant_one():
    """Clips 0 and 1 are one uncertain album twice; clip 2, less uncertain
    but far away, comes second, and the copy only when nothing else is left."""
    embeddings = np.array([[0.0, 0.0], [0.0, 0.001], [4.0, 3.0], [0.1, 0.0]])
    scores = np.array([[0.5], [0.5], [0.8], [0.99]])
    assert choose(scores, embeddings, 4) == [0, 2, 3, 1]


def test_exact_duplicates_are_not_both_chosen_while_another_clip_is_left():
    embeddings = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.2]])
    scores = np.array([[0.5, 0.1], [0.5, 0.1], [1.0, 1.0]])  # clip 2: sure of both tags
    assert choose(scores, embeddings, 2) == [0, 2]


def test_a_clip_like_a_labelled_one_waits_for_one_unlike_any():
    embeddings = np.array([[0.0, 0.0], [3.0, 0.0]])
    scores = np.array([[0.5], [0.7]])
    assert choose(scores, embeddings, 2, labelled=np.array([[0.0, 0.01]])) == [1, 0]


def test_more_asked_than_there_are_clips_gives_every_clip_once():
    embeddings = np.arange(6, dtype=float).reshape(3, 2)
    chosen = choose(np.array([[0.1], [0.5], [0.9]]), embeddings, 10)
    assert sorted(chosen) == [0, 1, 2] and chosen[0] == 1
    assert choose(np.zeros((0, 2)), np.zeros((0, 4)), 3) == []


def test_suggest_without_from_is_one_line(capsys):
    code, _, err = call_main(train_cli.main, capsys, "--suggest", "5")
    one_line_error(code, err, "--suggest applies with --from MODEL only; leave it out or "
                              "name the trained model to start from")


def test_suggest_with_fine_tune_is_one_line(capsys):
    code, _, err = call_main(train_cli.main, capsys, "--from", "MTT_musicnn", "--fine-tune",
                             "--suggest", "5")
    one_line_error(code, err, "--suggest applies to a head trained on the stored embeddings "
                              "only (--fine-tune changes the body, whose stored embeddings it "
                              "scores); leave it out or leave out --fine-tune")


@pytest.mark.parametrize("count", ["0", "two"])
def test_suggest_takes_a_positive_count(capsys, count):
    code, _, err = call_main(train_cli.main, capsys, "--from", "MTT_musicnn", "--suggest",
                             count)
    assert code == 2 and "--suggest" in err.splitlines()[-1]


LABELLED = 12  # of the FILES tones: the first half; the others are the student split
# two unlabelled files renamed: a name that is not UTF-8, one holding a backslash
RENAMED = {LABELLED: b"12 \xff.wav", LABELLED + 1: b"13 \\x.wav"}


def unlabelled_names() -> list:
    """The student split's files as train.py prints them (`fileio.path_text`)."""
    from tagger.fileio import path_text

    return [path_text(RENAMED.get(i, f"{i:02d}.wav".encode())) for i in range(LABELLED, FILES)]


@pytest.fixture(scope="module")
def half_labelled(tmp_path_factory):
    """(records of the tones with the first LABELLED files labelled, the
    body, the music folder and its labels CSV), built once."""
    def make(folder):
        music = folder / "music"
        music.mkdir()
        write_music(music)
        for i, name in RENAMED.items():
            os.rename(music / f"{i:02d}.wav", os.path.join(os.fsencode(music), name))
        rows = (music / "labels.csv").read_text().splitlines()
        labels = folder / "labels.csv"
        labels.write_text("\n".join(rows[:1 + LABELLED]) + "\n")
        return (build(music, folder / "records", labels), write_body(folder / "body.keras"),
                str(music), str(labels))

    return built_once(tmp_path_factory, "suggest", make)


def test_records_with_every_file_labelled_are_refused_before_training(capsys, tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    write_music(music)
    records = build(music, tmp_path / "records", music / "labels.csv")
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             write_body(tmp_path / "body.keras"), "--train-dir",
                             tmp_path / "runs", "--suggest", "3", "--no-progress")
    one_line_error(code, err, f"--suggest lists files of the records' unlabelled 'student' "
                              f"split, but {records!r} has none (every file is labelled)")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_suggested_files_are_unlabelled_printed_and_written_as_a_labels_csv(
        half_labelled, tmp_path):
    """... and suggested.csv, its tags filled in and its rows added to the
    labels CSV, is read back by build_folder.py --labels, every name of
    it (one not UTF-8, one with a backslash) its file's."""
    from tagger.datasets.folder import FolderSettings, plan_folder

    records, body_path, music, labels = half_labelled
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = train_cli.main(["--data-dir", records, "--from", body_path, "--train-dir",
                               str(tmp_path), "--suggest", "4", *TRAIN_ARGS])
    assert code in (0, None), out.getvalue()
    lines = out.getvalue().splitlines()
    run_dir = tmp_path / "from-body"
    heading = next(i for i, line in enumerate(lines) if "file(s) to label next" in line)
    assert lines[heading] == (f"4 file(s) to label next, the most useful first; their tags go "
                              f"in {run_dir / SUGGESTED_FILE}, then its rows in the labels "
                              "CSV:")
    paths = lines[heading + 1:]
    unlabelled = set(unlabelled_names())
    assert len(paths) == len(set(paths)) == 4 and set(paths) <= unlabelled
    assert (run_dir / SUGGESTED_FILE).read_text() == "path,tags\n" + "".join(
        f"{path},\n" for path in paths)
    # a finished run is not trained again; more than the split holds gives all of it
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = train_cli.main(["--data-dir", records, "--from", body_path, "--train-dir",
                               str(tmp_path), "--resume", "--suggest", "50", *TRAIN_ARGS])
    assert code in (0, None), out.getvalue()
    lines = out.getvalue().splitlines()
    heading = next(i for i, line in enumerate(lines) if "file(s) to label next" in line)
    assert lines[heading].startswith(f"{FILES - LABELLED} file(s) to label next (all the "
                                     f"{FILES - LABELLED} unlabelled), the most useful first")
    assert sorted(lines[heading + 1:]) == sorted(unlabelled)
    assert lines[heading + 1:heading + 5] == paths  # the same order as before

    suggested = (run_dir / SUGGESTED_FILE).read_text().splitlines()[1:]
    with open(labels, "a") as f:  # the tags filled in: "new"
        f.writelines(f"{row}new\n" for row in suggested)
    plan = plan_folder(music, FolderSettings(labels=labels), progress=False)
    assert "student" not in plan.splits
    tagged = {os.fsencode(clip.path): dict(zip(plan.tag_names, clip.labels))
              for split in plan.splits.values() for clip in split}
    assert len(tagged) == FILES
    assert {name for name, tags in tagged.items() if tags["new"]} == {
        RENAMED.get(i, f"{i:02d}.wav".encode()) for i in range(LABELLED, FILES)}


@pytest.mark.slow
def test_a_tagger_on_two_bodies_suggests_from_both_bodies_embeddings(half_labelled, tmp_path):
    records, body_path, _, _ = half_labelled
    second = write_body(tmp_path / "second.keras", seed=2)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = train_cli.main(["--data-dir", records, "--from", body_path, "--from", second,
                               "--train-dir", str(tmp_path), "--suggest", "3", *TRAIN_ARGS])
    assert code in (0, None), out.getvalue()
    lines = out.getvalue().splitlines()
    heading = next(i for i, line in enumerate(lines) if "file(s) to label next" in line)
    paths = lines[heading + 1:]
    assert len(set(paths)) == 3
    assert set(paths) <= set(unlabelled_names())


def test_suggest_after_a_run_on_several_jax_hosts_joins_them_once(student_records, tmp_path,
                                                                   monkeypatch):
    """Under JAX on several hosts (the cluster's variables set) the run
    joins them (`jax.distributed.initialize`) and --suggest, after it, asks
    the run's backend which host is the chief: JAX refuses a second
    initialize."""
    import types

    import jax

    from tagger import backends
    from tagger.training import backend, head_run

    joined = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *args: joined.append(args))
    monkeypatch.setattr(backends, "current", lambda: "jax")
    monkeypatch.setattr(backend, "_MADE", {}, raising=False)
    for name, value in (("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234"),
                        ("JAX_NUM_PROCESSES", "2"), ("JAX_PROCESS_ID", "0")):
        monkeypatch.setenv(name, value)
    trained = []
    run_dir = str(tmp_path / "from-body")
    monkeypatch.setattr(head_run, "HeadRun", lambda config, info, devices, precision:
                        trained.append(devices) or types.SimpleNamespace(
                            execute=lambda: {"run_dir": run_dir}))
    suggested = []
    monkeypatch.setattr(train_cli, "suggest", lambda *args: suggested.append(args))
    code = train_cli.main(["--data-dir", student_records[0], "--from", "body.keras",
                           "--train-dir", str(tmp_path), "--suggest", "3", "--no-progress"])
    assert code in (0, None)
    assert joined == [("10.0.0.1:1234", 2, 0)]
    assert len(trained) == 1 and trained[0].name == "jax" and trained[0].chief
    assert [args[1:] for args in suggested] == [(run_dir, 3)]
