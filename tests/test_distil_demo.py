"""demo.py --distil on a folder of its own: a tiny teacher at 16 kHz teaches
a tiny ReSE+multi student at 22050 Hz, measured against it on the held-out
files, both timed with Keras and int8; a rerun reuses every step; flags of
the other demos are refused in one line. (Debian's soundtracks, the
default music, are laid out by tests.checks.debian_music for the recorded-
music tests.)"""

import contextlib
import io
import json
import pathlib
import shutil

import pytest
import soundfile

from tagger.commands import demo
from tests.checks import tiny_teacher, tone

TAGS = ["guitar", "classical", "slow", "techno", "strings", "drums", "piano", "rock"]


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """10 files of 6 s (two 59049-sample segments at 22050 Hz) in two albums."""
    root = tmp_path_factory.mktemp("music")
    for i in range(10):
        (root / f"album{i % 2}").mkdir(exist_ok=True)
        soundfile.write(str(root / f"album{i % 2}" / f"{i:02d}.wav"),
                        tone(6.0, 22050, 1, 150 + 70 * i, seed=i), 22050)
    return root


def run_demo(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(argv)
    assert code == 0, out.getvalue()
    return out.getvalue().splitlines()


@pytest.mark.slow
def test_distil_demo_on_a_folder(music, tmp_path):
    teacher = tiny_teacher(tmp_path / "teacher.keras", TAGS, seed=1, gain=100.0)
    argv = ["--distil", "--music", str(music), "--teacher", teacher, "--work-dir",
            str(tmp_path / "work"), "--width", "0.0625", "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "4", "--workers", "1",
            "--no-progress"]
    lines = run_demo(argv)
    text = "\n".join(lines)
    work = tmp_path / "work" / "distil"
    info = json.loads((work / "records" / "dataset_info.json").read_text())
    assert info["tag_names"] == [] and info["splits"]["test"]["clips"] == 2
    report = json.loads((work / "against.json").read_text())
    assert report["clips"] == 2 and report["against"] == [teacher]
    assert report["teacher_tags"] == "its top 5 of each clip" and report["top_k"] == 5
    assert "the student against its teacher on the held-out tracks:" in text
    assert f"top-5 agreement {report['top_k_agreement']:.4f}" in text
    speed = [line for line in lines if line.startswith("  student ")
             or line.startswith("  teacher ")]
    assert len(speed) == 2, text
    assert "keras (keras)" in speed[0] and "int8 (tflite-int8)" in speed[0]
    assert "keras (keras)" in speed[1] and "int8 (tflite-int8)" in speed[1]
    assert lines[-1].startswith("demo finished in ")
    again = "\n".join(run_demo(argv))
    assert "(already finished)" in again
    assert f"top-5 agreement {report['top_k_agreement']:.4f}" in again


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_speed_step_times_student_and_teacher_with_keras_and_tflite_int8(monkeypatch,
                                                                          tmp_path, backend):
    """The teacher's int8 is tflite-int8, as the student's: tflite-dynamic
    quantises a log-mel front end too (28% of top-5 tags changed on
    MTT_musicnn, docs/performance.md, "int8 for log-mel taggers"). Under JAX, where a TFLite model
    cannot be written, Keras alone is timed and a line says why (the
    demo once ended there in an error, after its training)."""
    from tagger import backends
    from tagger.demos import distil
    from tagger.inference.engine import registry, tagging
    from tagger.models import saved
    from tagger.records import reader

    monkeypatch.setattr(backends, "current", lambda: backend)
    asked = []

    def predictor(engine, model, info, options):
        asked.append((model, engine))
        assert options.calibration_audio() == ["train.wav"]
        return engine

    monkeypatch.setattr(registry, "make_predictor", predictor)
    monkeypatch.setattr(tagging, "tag_files", lambda predictor, files: iter(()))
    monkeypatch.setattr(saved, "load_tagger", lambda path: (path, None))
    monkeypatch.setattr(reader, "split_audio_files",
                        lambda records, music, split, count: [f"{split}.wav"])
    teacher = tiny_teacher(tmp_path / "teacher.keras", TAGS, seed=1)
    config = distil.DistilDemoConfig(teacher=teacher, progress=False)
    lines = list(distil.speed_step(config, "records", "music", "student.keras"))
    if backend == "jax":
        assert asked == [("student.keras", "keras"), (teacher, "keras")]
        assert "int8" not in lines[2] and lines[-1] == (
            "  (int8 not timed: tflite-int8 is TensorFlow's own format, and Keras runs on "
            "jax in this process (KERAS_BACKEND))")
        return
    assert asked == [("student.keras", "keras"), ("student.keras", "tflite-int8"),
                     (teacher, "keras"), (teacher, "tflite-int8")]
    assert "int8 (tflite-int8)" in lines[2] and "tflite-dynamic" not in "".join(lines)
    assert len(lines) == 3


def test_records_rebuilt_from_other_music_train_the_student_anew(raw_records, tmp_path,
                                                                  monkeypatch):
    """The music folder's name and the split settings unchanged, its files
    not: the records are rebuilt, and the student is not reused."""
    from tagger.demos import distil
    from tagger.training import run

    records = tmp_path / "records"
    records.mkdir()
    shutil.copy(pathlib.Path(raw_records[0], "dataset_info.json"), records)
    trained = []

    def train(config):
        trained.append(config.data_dir)
        run_dir = pathlib.Path(run.run_dir_of(config))
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").write_text(json.dumps({"run_dir": str(run_dir)}))
        return {"run_dir": str(run_dir)}

    monkeypatch.setattr(run, "train", train)
    config = distil.DistilDemoConfig(work_dir=str(tmp_path / "work"), teacher="t.keras")

    def step():
        return list(distil.train_step(config, str(records), "music"))

    step()
    assert "(already finished)" in step()[0] and len(trained) == 1
    info = json.loads((records / "dataset_info.json").read_text())
    info["splits"]["train"]["shard_framing_sha256"][0] = "0" * 64
    (records / "dataset_info.json").write_text(json.dumps(info))
    lines = step()
    assert lines[0].startswith("training: settings changed (dataset.records ") and \
        lines[0].endswith("is trained anew"), lines
    assert trained == [str(records)] * 2


@pytest.mark.parametrize("argv, message", [
    (["--music", "x"], "--music applies with --distil and --own-tags only; leave it out or "
                       "add one of them"),
    (["--semi-supervised", "--teacher", "MTT_musicnn"],
     "--teacher applies with --distil only; leave it out or add --distil"),
    (["--distil", "--model", "transformer", "--clips", "20"],
     "--model, --clips apply without --distil only (it trains the ReSE+multi sample-level "
     "CNN on real music); leave them out"),
    (["--distil", "--semi-supervised"], "--semi-supervised applies without --distil only"),
    (["--own-tags", "--model", "samplecnn"], "--model applies without --own-tags only"),
    (["--distil", "--model", "samplecnn"], "--model applies without --distil only"),
])
def test_flags_of_the_other_demos_are_refused(capsys, argv, message):
    assert demo.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_distil_flags_reach_its_config():
    config = demo.distil_config(demo.parse_args(
        ["--distil", "--work-dir", "w", "--width", "0.5", "--epochs", "3", "--lr", "0.002",
         "--steps-per-epoch", "7", "--teacher", "MSD_musicnn", "--seed", "4"]))
    assert (config.work_dir, config.width, config.epochs, config.lr) == ("w/distil", 0.5, 3,
                                                                         0.002)
    assert (config.steps_per_epoch, config.teacher, config.seed) == (7, "MSD_musicnn", 4)
    assert config.music is None and config.batch_size == 23
