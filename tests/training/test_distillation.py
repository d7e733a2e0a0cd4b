"""Distillation on records without labels: tiny teachers at 16 kHz score the
synthetic records (22050 Hz) once, their targets stored beside the records
and reused; several teachers averaged on their shared tags; a student
trained on the targets; eval.py --against."""

import dataclasses
import json
import os
import pathlib
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score, roc_auc_score

from tagger.audio import resample
from tagger.commands import eval as eval_cli
from tagger.commands import train as train_cli
from tagger.config import DistillationConfig
from tagger.errors import UserError
from tagger.evaluation import against
from tagger.evaluation.agreement import agreement, teacher_tags, top_k_overlap
from tagger.inference.common import model_fingerprint
from tagger.inference.outputs import selected_indices
from tagger.records import reader
from tagger.records.info import load_info, require_raw
from tagger.training import distillation, row_table
from tagger.training.teacher_targets import (
    TARGETS_DIR,
    SplitTargets,
    TeacherTargets,
    overlap_weights,
    targets_for,
)
from tests.checks import (
    TEACHER_RATE,
    TEACHER_WINDOW,
    call_main,
    clip_by_clip_outputs,
    counted_model_file_calls,
    dataset_graph_bytes,
    full_batches,
    one_line_error,
    saved_model,
    tiny_conv_tagger,
)
from tests.checks import tiny_teacher as make_teacher
from tests.presets import TINY_SAMPLECNN, tiny_train_config

TAGS_A = ["guitar", "classical", "slow", "techno", "strings"]
TAGS_B = ["slow", "piano", "techno", "classical", "drums"]


def copy_records(source, folder, labelled):
    """The records in a folder of the test's own, each split marked
    labelled or not in dataset_info.json."""
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(TARGETS_DIR))
    path = pathlib.Path(folder) / "dataset_info.json"
    data = json.loads(path.read_text())
    for split in data["splits"].values():
        split["labelled"] = labelled
    path.write_text(json.dumps(data))
    return str(folder), load_info(str(folder))


@pytest.fixture(scope="module")
def setting(raw_records, tmp_path_factory):
    """(unlabelled records, their info, labelled records, teacher A, teacher B)."""
    root = tmp_path_factory.mktemp("distil")
    unlabelled, info = copy_records(raw_records[0], root / "unlabelled", labelled=False)
    labelled, _ = copy_records(raw_records[0], root / "labelled", labelled=True)
    a = make_teacher(root / "a.keras", TAGS_A, seed=1)
    b = make_teacher(root / "b.keras", TAGS_B, seed=2)
    return unlabelled, info, labelled, a, b


def test_overlap_weights():
    # segments of 2 s; windows of 1.5 s at 0, 1.5 and 3 s
    weights = overlap_weights(4, 2.0, np.array([0.0, 1.5, 3.0]), 1.5)
    np.testing.assert_allclose(weights, [[0.75, 0.25, 0], [0, 0.5, 0.5], [0, 0, 1],
                                         [0, 0, 1]])  # the last reaches no window: nearest


def teacher_scores(path, audio):
    """The teacher's scores of each whole 1 s window of 16 kHz `audio`."""
    model = keras.models.load_model(path, compile=False)
    windows = audio[:len(audio) // TEACHER_WINDOW * TEACHER_WINDOW].reshape(-1, TEACHER_WINDOW)
    return model.predict(windows, verbose=0).astype(np.float64)


def test_targets_are_stored_per_segment_and_reused(setting, tmp_path):
    _, _, labelled, a, b = setting
    # records of its own: the other tests store targets beside the module's
    unlabelled, info = copy_records(labelled, tmp_path / "unlabelled", labelled=False)
    lines = []
    targets = TeacherTargets([a], unlabelled, info, progress=False, log=lines.append)
    assert targets.tag_names == TAGS_A and targets.dropped is None
    train = targets.split("train")
    clips = info.splits["train"]["clips"]
    assert np.stack(train.per_clip()).shape == (clips, 2, len(TAGS_A))
    assert "0 reused" in lines[-1]

    # clip 0 by hand: its 5.36 s at 16 kHz hold 5 whole 1 s windows
    clip = next(reader.clip_dataset(unlabelled, "train", info).as_numpy_iterator())
    assert clip["clip_id"] == train.clip_ids[0]
    audio = resample(clip["segments"].reshape(-1), 22050, TEACHER_RATE)
    scores = teacher_scores(a, audio)
    assert len(scores) == 5
    segment = 59049 / 22050  # 2.678 s
    first = (scores[0] + scores[1] + (segment - 2) * scores[2]) / segment
    second = ((3 - segment) * scores[2] + scores[3] + scores[4]) / (3 - segment + 2)
    np.testing.assert_allclose(train.per_clip()[0], [first, second], atol=1e-5)

    folder = pathlib.Path(unlabelled, TARGETS_DIR, model_fingerprint(a)[:16])
    stored = json.loads((folder / "teacher.json").read_text())
    assert stored["sample_rate"] == TEACHER_RATE and stored["tag_names"] == TAGS_A
    shards = sorted(folder.glob("train-*.npz"))
    assert [p.name for p in shards] == [f"{s}.npz" for s in info.splits["train"]["shards"]]
    times = [p.stat().st_mtime_ns for p in shards]

    lines.clear()  # a rerun reads them back
    again = TeacherTargets([a], unlabelled, info, progress=False, log=lines.append)
    np.testing.assert_array_equal(again.split("train").values, train.values)
    assert f"{len(shards)} shard(s), 0 computed, {len(shards)} reused" in lines[-1]
    assert [p.stat().st_mtime_ns for p in shards] == times

    TeacherTargets([b], unlabelled, info, progress=False, log=lines.append).split("val")
    entries = sorted(p.name for p in pathlib.Path(unlabelled, TARGETS_DIR).iterdir())
    assert entries == sorted([model_fingerprint(a)[:16], model_fingerprint(b)[:16]])


def test_targets_are_scored_in_full_batches_with_each_clips_own_values(setting, tmp_path,
                                                                        monkeypatch):
    """Windows of consecutive clips share batches of 32 (5 windows a clip),
    and each clip's targets are those of the clip scored on its own, to
    float32 rounding."""
    _, _, labelled, a, _ = setting
    unlabelled, info = copy_records(labelled, tmp_path / "unlabelled", labelled=False)
    sizes = counted_model_file_calls(monkeypatch)
    targets = TeacherTargets([a], unlabelled, info, progress=False, log=print)
    train = targets.split("train")
    shards = clip_by_clip_outputs(targets.teachers[0].predictor().predictor, unlabelled,
                                  "train", info)
    assert sizes == full_batches([sum(len(w) for _, w, _, _ in clips) for clips in shards])
    expected = []
    for clip, windows, scores, _ in (clip for shard in shards for clip in shard):
        starts = (np.arange(len(windows)) * TEACHER_WINDOW) / TEACHER_RATE  # no edge padding
        segments = clip["segments"]
        weights = overlap_weights(len(segments), segments.shape[1] / 22050, starts,
                                  TEACHER_WINDOW / TEACHER_RATE)
        expected.append(weights @ scores.astype(np.float64))
    assert train.num_segments.tolist() == [len(e) for e in expected]
    np.testing.assert_allclose(train.values, np.concatenate(expected), rtol=1e-6, atol=1e-7)


def test_a_missing_shard_is_scored_again(setting):
    unlabelled, info, _, a, _ = setting
    before = TeacherTargets([a], unlabelled, info, progress=False, log=print).split("val")
    folder = pathlib.Path(unlabelled, TARGETS_DIR, model_fingerprint(a)[:16])
    os.remove(folder / f"{info.splits['val']['shards'][0]}.npz")
    lines = []
    after = TeacherTargets([a], unlabelled, info, progress=False, log=lines.append)
    np.testing.assert_allclose(after.split("val").values, before.values, atol=1e-6)
    assert "1 computed" in lines[-1]


def test_records_rebuilt_with_their_clips_in_another_order_are_scored_anew(own_records,
                                                                           tmp_path):
    """The same clips, segments and shards as before, as another seed's
    build gives them: the stored targets are not reused."""
    records, info, teachers = own_records
    a = teachers.teachers[0]
    TeacherTargets([a], records, info, progress=False, log=print).split("test")
    first, second = (tmp_path / "records" / name for name in info.splits["test"]["shards"])
    first_bytes = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(first_bytes)
    path = tmp_path / "records" / "dataset_info.json"
    stored = json.loads(path.read_text())
    stored["splits"]["test"]["shard_framing_sha256"].reverse()  # as the builder records them
    path.write_text(json.dumps(stored))
    info = load_info(records)
    lines = []
    again = TeacherTargets([a], records, info, progress=False, log=lines.append).split("test")
    assert lines[-1].endswith(f"test targets of 2 shard(s), 2 computed, 0 reused, in "
                              f"{pathlib.Path(records, TARGETS_DIR, model_fingerprint(a)[:16])}")
    np.testing.assert_array_equal(again.clip_ids, reader.clip_labels(records, "test", info)[0])


def stored_shard(data_dir, teacher, info, split):
    """The path of the first stored shard of `teacher`'s targets of `split`."""
    folder = pathlib.Path(data_dir, TARGETS_DIR, model_fingerprint(teacher)[:16])
    return folder / f"{info.splits[split]['shards'][0]}.npz"


def shard_arrays(path):
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def damaged_line(path, why):
    return f"the teacher's targets {path} cannot be read ({why}); scoring its shard again"


CUT_SHORT = "cut short or damaged: File is not a zip file"


def test_training_scores_a_shard_cut_short_again(setting):
    unlabelled, info, _, a, _ = setting
    config = tiny_train_config(unlabelled, "unused",
                               distillation=DistillationConfig(teachers=(a,)))
    before = distillation.setup(config, info, log=print).targets.split("val")
    path = stored_shard(unlabelled, a, info, "val")
    stored = shard_arrays(path)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])  # a full disk
    lines = []
    after = distillation.setup(config, info, log=lines.append).targets.split("val")
    assert damaged_line(path, CUT_SHORT) in lines
    assert [line for line in lines if " val targets " in line][0].endswith(
        f"{len(info.splits['val']['shards'])} shard(s), 1 computed, "
        f"{len(info.splits['val']['shards']) - 1} reused, in {path.parent}")
    np.testing.assert_array_equal(after.values, before.values)
    np.testing.assert_array_equal(after.clip_ids, before.clip_ids)
    for name, array in shard_arrays(path).items():
        np.testing.assert_array_equal(array, stored[name])


@pytest.mark.parametrize("damage, why", [
    (lambda path: path.write_bytes(b""), "cut short or damaged: No data left in file"),
    (lambda path: path.write_bytes(b"PK\x03\x04" + bytes(range(256))), CUT_SHORT),
    (lambda path: np.savez(path, clip_ids=np.arange(2)), "it holds no num_segments, values"),
    (lambda path: np.savez(path, clip_ids=np.arange(2), num_segments=np.ones(2, int),
                           values=np.zeros((2, 3), np.float32)),
     "values are float32[2, 3], expected float[2, 5]: the segments of its clips x the "
     "teacher's tags")], ids=["empty", "garbage", "arrays missing", "other tags"])
def test_an_unreadable_shard_is_scored_again(setting, damage, why):
    unlabelled, info, _, a, _ = setting
    before = TeacherTargets([a], unlabelled, info, progress=False, log=print).split("val")
    path = stored_shard(unlabelled, a, info, "val")
    damage(path)
    lines = []
    after = TeacherTargets([a], unlabelled, info, progress=False, log=lines.append)
    np.testing.assert_array_equal(after.split("val").values, before.values)
    assert lines[0] == damaged_line(path, why)
    assert "1 computed" in lines[1]


def test_two_teachers_average_their_shared_tags(setting):
    unlabelled, info, _, a, b = setting
    lines = []
    both = TeacherTargets([a, b], unlabelled, info, progress=False, log=lines.append)
    assert both.tag_names == ["classical", "slow", "techno"]
    assert lines[0] == (f"3 shared tag(s) kept; dropped: teacher {a}: guitar, strings; "
                        f"teacher {b}: piano, drums")
    one_a = TeacherTargets([a], unlabelled, info, progress=False, log=print).split("val")
    one_b = TeacherTargets([b], unlabelled, info, progress=False, log=print).split("val")
    expected = (one_a.values[:, [1, 2, 3]] + one_b.values[:, [3, 0, 2]]) / 2
    np.testing.assert_allclose(both.split("val").values, expected, atol=1e-6)


def test_tags_that_cannot_be_mapped(setting, tmp_path):
    unlabelled, info, _, a, _ = setting
    other = make_teacher(tmp_path / "other.keras", ["opera", "choir"], seed=3)
    with pytest.raises(UserError, match="share no tag"):
        TeacherTargets([a, other], unlabelled, info, progress=False)
    model = tiny_conv_tagger(samples=TEACHER_WINDOW, tags=2)
    model.save(str(tmp_path / "bare.keras"))
    with pytest.raises(UserError, match="names no tags"):
        TeacherTargets([str(tmp_path / "bare.keras")], unlabelled, info, progress=False)
    with pytest.raises(UserError, match="holds logmel records"):
        require_raw(dataclasses.replace(info, features={"kind": "logmel"}), "records",
                    "a teacher")


@pytest.mark.parametrize("change", ["hop", "format version"])
def test_stored_targets_of_another_windowing_or_store_format_are_scored_again(
        raw_records, setting, tmp_path, monkeypatch, change):
    from tagger.models import saved
    from tagger.training import model_outputs

    records, info = copy_records(raw_records[0], tmp_path / "records", labelled=False)
    teacher = setting[3]
    first = TeacherTargets([teacher], records, info, progress=False).split("val")
    if change == "hop":  # the code cuts windows otherwise: half a window apart
        monkeypatch.setattr(saved, "window_grid", lambda model, info, window: (window // 2, 0))
    else:
        monkeypatch.setattr(model_outputs, "FORMAT_VERSION", model_outputs.FORMAT_VERSION + 1)
    lines = []
    again = TeacherTargets([teacher], records, info, progress=False,
                           log=lines.append).split("val")
    shards = len(info.splits["val"]["shards"])
    assert f"{shards} shard(s), {shards} computed, 0 reused" in lines[-1]
    entry = json.loads(pathlib.Path(records, TARGETS_DIR, model_fingerprint(teacher)[:16],
                                    "teacher.json").read_text())
    assert entry["format_version"] == model_outputs.FORMAT_VERSION
    if change == "hop":
        assert entry["hop_samples"] == TEACHER_WINDOW // 2
        assert not np.allclose(again.values, first.values)  # more windows, other weights


def segment_table(data_dir, info, targets):
    """The target of every segment of the train split, by its stored bytes."""
    rows = dict(zip(targets.clip_ids, targets.per_clip()))
    table = {}
    for clip in reader.clip_dataset(data_dir, "train", info, as_stored=True,
                                    with_tags=False).as_numpy_iterator():
        for segment, target in zip(clip["segments"], rows[clip["clip_id"]]):
            table[segment.tobytes()] = target
    return table


@pytest.mark.parametrize("window", [1, 2])
def test_training_windows_carry_their_segments_targets(setting, window, tmp_path):
    unlabelled, info, _, a, _ = setting
    config = tiny_train_config(unlabelled, "unused",
                               distillation=DistillationConfig(teachers=(a,)))
    distil = distillation.Distillation(config, info, log=print)
    table = segment_table(unlabelled, info, distil.targets.split("train"))
    lookup = distil.train_targets(str(tmp_path / "table.tsv"))
    data = reader.train_dataset(unlabelled, 4, window_segments=window, info=distil.info,
                                seed=0, as_stored=True, targets=lookup)
    for x, y in data.take(3).as_numpy_iterator():
        assert y.shape == (4, len(TAGS_A))
        for w, target in zip(x, y):
            parts = np.split(w, window)
            np.testing.assert_allclose(target, np.mean([table[p.tobytes()] for p in parts],
                                                       axis=0), atol=1e-6)


def test_a_full_disk_for_the_training_targets_table_is_one_line(setting, capsys, tmp_path,
                                                                 monkeypatch):
    """The table is written beside the run (not in the system's temporary
    folder, often in memory); a full disk is one line, no traceback."""
    import errno

    unlabelled, _, _, a, _ = setting
    tried = []

    def full_disk(file, rows):
        tried.append(file.name)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(row_table, "_write_lines", full_disk)
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", unlabelled, "--train-dir",
                             tmp_path, "--block", "basic", "--alpha", "2", "--width",
                             "0.0625", "--batch-size", "8", "--num-stages", "1",
                             "--max-epochs-per-stage", "1", "--steps-per-epoch", "1",
                             "--distil", a, "--no-progress")
    table = tmp_path / "samplecnn-basic-multi-student" / "train_targets.tsv"
    assert len(tried) == 1 and tried[0].startswith(str(table.parent) + "/")
    one_line_error(code, err, f"cannot write the training targets' table {str(table)!r}: "
                              "the disk is full: free some space there or choose another "
                              "place")
    assert not table.exists()


@pytest.fixture
def own_records(raw_records, setting, tmp_path):
    """(records without labels in a folder of the test's own, their info, a
    DistillationConfig of teacher A)."""
    records, info = copy_records(raw_records[0], tmp_path / "records", labelled=False)
    return records, info, DistillationConfig(teachers=(setting[3],))


@pytest.mark.parametrize("reader_kind", ["tf.data", "tensorflow-free"])
def test_a_clip_the_training_targets_lack_is_one_line(own_records, tmp_path, reader_kind):
    """The training lookup holds every clip of the targets it was given; a
    clip of the records it lacks stops training in one line, the same from
    tf.data's lookup and the TensorFlow-free reader's rows (stored targets
    of other clips never reach it: the store scores them again)."""
    from tagger.records import plain_reader

    records, info, teachers = own_records
    config = tiny_train_config(records, "unused", distillation=teachers)
    distil = distillation.Distillation(config, info, log=print)
    targets = TeacherTargets(teachers.teachers, records, info, progress=False).split("train")
    lacking = int(targets.clip_ids[0])
    targets.clip_ids[0] = 10**9  # the first clip's targets are another clip's
    batches = info.splits["train"]["segments"] // 4 + 1  # a pass and more
    with pytest.raises(UserError) as error, against.target_errors(records):
        if reader_kind == "tf.data":
            lookup = distillation.segment_lookup(targets, str(tmp_path / "table.tsv"))
            data = reader.train_dataset(records, 4, info=distil.info, seed=0, as_stored=True,
                                        targets=lookup)
            for _ in data.take(batches):
                pass
        else:
            rows = distillation.SegmentRows(targets)
            np.testing.assert_array_equal(rows(int(targets.clip_ids[1])),
                                          targets.per_clip()[1])
            with plain_reader.train_batches(records, 4, info=distil.info, seed=0, workers=0,
                                            targets=rows) as reading:
                for _ in range(batches):
                    next(reading)
    assert str(error.value) == (
        f"the training records hold clip id {lacking}, which the teachers' targets in "
        f"{records}/{TARGETS_DIR} lack: they were made for other records; delete that "
        "folder to score the records again")


@pytest.mark.parametrize("window", [1, 2])
def test_the_tensorflow_free_reader_serves_tf_datas_targets(setting, window, tmp_path):
    """The TensorFlow-free reader's training batches, each window's target
    from NumPy rows found by clip id (`SegmentRows`), are tf.data's with
    the table's lookup, batch for batch."""
    from tagger.records import plain_reader

    unlabelled, info, _, a, _ = setting
    config = tiny_train_config(unlabelled, "unused",
                               distillation=DistillationConfig(teachers=(a,)))
    distil = distillation.Distillation(config, info, log=print)
    train = distil.targets.split("train")
    lookup = distillation.segment_lookup(train, str(tmp_path / "table.tsv"))
    settings = dict(window_segments=window, info=distil.info, seed=0,
                    shuffle_segments=config.shuffle_segments)  # the tiny preset's blocks
    expected = list(reader.train_dataset(unlabelled, 4, as_stored=True, targets=lookup,
                                         **settings).take(6).as_numpy_iterator())
    with plain_reader.train_batches(unlabelled, 4, workers=0,
                                    targets=distillation.SegmentRows(train),
                                    **settings) as batches:
        for x, y in expected:
            got_x, got_y = next(batches)
            np.testing.assert_array_equal(got_x, x)
            assert got_y.shape == (4, len(TAGS_A)) and got_y.dtype == np.float32
            np.testing.assert_allclose(got_y, y, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_a_million_clips_targets_stay_out_of_the_input_pipelines_graph(tmp_path):
    """The training lookup of a million clips' targets: a tf.data graph that
    uses it, serialized (as multi-worker input sharding and tf.data's
    rewrites do), holds a file's name, not the targets (a graph over 2 GB
    cannot be serialized at all)."""
    clips, tags = 10**6, 2
    ids = np.arange(clips, dtype=np.int64) * 7 + 3
    counts = np.where(np.arange(clips) % 3, 1, 2).astype(np.int64)  # 1 or 2 segments
    values = np.random.default_rng(0).random((counts.sum(), tags)).astype(np.float32)
    targets = SplitTargets(ids, counts, values)
    lookup = distillation.segment_lookup(targets, str(tmp_path / "table.tsv"))
    wanted = [0, 1, 2, clips - 1]
    data = tf.data.Dataset.from_tensor_slices({"clip_id": ids[wanted]}).map(lookup)
    assert dataset_graph_bytes(data) < 20_000  # 2 bytes a clip: 2 MB
    offsets = targets.offsets
    for found, i in zip(data.as_numpy_iterator(), wanted):
        np.testing.assert_array_equal(found, values[offsets[i]:offsets[i + 1]])
    lacking = tf.data.Dataset.from_tensor_slices({"clip_id": np.array([ids[5], 4])}).map(lookup)
    with pytest.raises(UserError, match="hold clip id 4, which the teachers' targets"), \
            against.target_errors("records"):
        list(lacking.as_numpy_iterator())


def test_window_means_leave_out_padding():
    values = tf.constant([[0.2, 0.4], [0.6, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(reader.window_means(values, 2, 1), [[0.8, 0.4]], atol=1e-6)
    np.testing.assert_allclose(reader.window_means(values[:1], 2), [[0.2, 0.4]], atol=1e-6)


def test_window_means_in_numpy_are_tf_datas():
    from tagger.records.windows import window_means

    values = np.random.default_rng(0).random((7, 3)).astype(np.float32)
    for n, k, offset in [(7, 1, 0), (7, 2, 1), (7, 3, 0), (7, 3, 1), (7, 3, 5), (2, 3, 0),
                         (1, 2, 0)]:
        expected = reader.window_means(tf.constant(values[:n]), k, offset).numpy()
        got = window_means(values[:n], k, offset)
        assert got.shape == expected.shape and got.dtype == np.float32, (n, k, offset)
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"{(n, k, offset)}")


def test_temperature_softens_targets_and_the_students_logits():
    config = tiny_train_config("d", "t", distillation=DistillationConfig(
        teachers=("t.keras",), temperature=2.0))
    loss = distillation.loss_of(config)
    assert loss.from_logits
    t, s = np.array([[0.9, 0.2]]), np.array([[0.6, 0.3]])

    def soft(p):
        return 1 / (1 + np.exp(-np.log(p / (1 - p)) / 2))

    expected = -4 * np.mean(soft(t) * np.log(soft(s)) + (1 - soft(t)) * np.log(1 - soft(s)))
    logits = np.log(s / (1 - s))
    np.testing.assert_allclose(loss(tf.constant(t, tf.float32), tf.constant(logits, tf.float32)),
                               [expected], rtol=1e-5)
    plain = tiny_train_config("d", "t", distillation=DistillationConfig(teachers=("t",)))
    bce = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    np.testing.assert_allclose(distillation.loss_of(plain)(
        tf.constant(t, tf.float32), tf.constant(logits, tf.float32)), [bce], rtol=1e-5)
    assert distillation.loss_of(tiny_train_config("d", "t")) is None


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_a_saturated_wrong_student_learns(temperature):
    """The student's logits are +30 and -30 (scores 1 and 0 in float32)
    where the teacher says 0.1 and 0.9: one SGD step of rate 1 moves the
    `tags` bias by the loss's gradient, T (sigmoid(z / T) - soft target) /
    tags, soft target sigmoid(logit(t) / T)."""
    from tagger.models import build_model
    from tagger.training.trainer import make_train_function

    model = build_model("samplecnn", num_tags=2, input_length=729, **TINY_SAMPLECNN)
    tags = model.get_layer("tags")
    tags.kernel.assign(np.zeros(tags.kernel.shape, np.float32))
    z = np.array([30.0, -30.0])
    tags.bias.assign(z.astype(np.float32))
    t = np.array([0.1, 0.9])
    x = np.random.default_rng(0).uniform(-1, 1, (2, 729)).astype(np.float32)
    batches = iter(tf.data.Dataset.from_tensors((x, np.tile(t, (2, 1)).astype(np.float32)))
                   .repeat())
    config = tiny_train_config("d", "t", distillation=DistillationConfig(
        teachers=("t.keras",), temperature=temperature))
    step = make_train_function(model, keras.optimizers.SGD(1.0), tf.distribute.get_strategy(),
                               2, loss=distillation.loss_of(config))
    step(batches, 1)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    soft = sigmoid(np.log(t / (1 - t)) / temperature)
    gradient = temperature * (sigmoid(z / temperature) - soft) / 2
    assert np.abs(gradient).min() > 0.1
    np.testing.assert_allclose(z - np.asarray(tags.bias), gradient, rtol=1e-4)


def test_the_user_names_the_mode_distil_or_teacher(setting, raw_records):
    """--distil (repeatable) distils, --teacher trains a noisy student; the
    wrong one for the records, both, or a flag of the other mode is one
    line pointing to the right one."""
    unlabelled, _, _, a, b = setting
    labelled_dir = raw_records[0]
    args = train_cli.parse_args(["--data-dir", unlabelled, "--distil", a, "--distil", b,
                                 "--temperature", "2", "--rounds", "2"])
    config = train_cli.config_from_args(args)
    assert config.distillation == DistillationConfig(teachers=(a, b), temperature=2.0)
    assert config.noisy_student.teacher is None
    labelled = train_cli.config_from_args(train_cli.parse_args(
        ["--data-dir", labelled_dir, "--teacher", a, "--rounds", "2"]))
    assert labelled.noisy_student.teacher == a and not labelled.distillation.teachers
    for argv, message in (
            (["--data-dir", labelled_dir, "--temperature", "2"],
             "--temperature applies with --distil MODEL (distillation) only; leave it out or "
             "name a model to distil"),
            (["--data-dir", labelled_dir, "--rounds", "2"],
             "--rounds applies with --teacher MODEL or --distil MODEL only; leave it out or "
             "name a teacher"),
            (["--data-dir", unlabelled, "--teacher", a],
             f"--teacher trains a noisy student on labelled records, but {unlabelled!r} "
             f"holds no labels to train on; to teach a student {a}'s scores on them, use "
             f"--distil {a}"),
            (["--data-dir", labelled_dir, "--distil", a],
             f"--distil teaches a student its teachers' scores on records without labels, "
             f"but {labelled_dir!r} holds labels; train on them (no --distil), or --teacher "
             "MODEL for noisy-student training on them and unlabelled audio"),
            (["--data-dir", labelled_dir, "--teacher", a, "--teacher", b],
             "noisy-student training takes one --teacher; several teachers are distilled "
             "with --distil, repeated, on records without labels"),
            (["--data-dir", unlabelled, "--teacher", a, "--distil", b],
             "--teacher (noisy-student training, on labelled records) and --distil (a "
             "student taught on records without labels) do not combine; choose one"),
            (["--data-dir", unlabelled, "--distil", a, "--pseudo-label-weight", "2"],
             "--pseudo-label-weight applies with --teacher MODEL (noisy-student training) "
             "only (this run distils: --distil); leave it out")):
        with pytest.raises(UserError) as error:
            train_cli.config_from_args(train_cli.parse_args(argv))
        assert str(error.value) == message


@pytest.mark.slow
def test_train_distils_two_teachers_in_two_rounds(setting, tmp_path, capsys):
    unlabelled, info, _, a, b = setting
    code, out, err = call_main(
        train_cli.main, capsys, "--data-dir", unlabelled, "--train-dir", tmp_path,
        "--distil", a, "--distil", b, "--temperature", "2", "--rounds", "2", "--augment",
        "--block", "basic", "--alpha", "2", "--width", "0.0625", "--batch-size", "2",
        "--num-stages", "1", "--max-epochs-per-stage", "2", "--steps-per-epoch", "2",
        "--validation-steps", "1", "--strategy", "default", "--no-progress")
    assert code == 0, err
    assert "3 shared tag(s) kept; dropped:" in out
    # one batch of two segments: the first of the two val clips, whole
    assert out.count("validation: the first 1 of the 2 clips of the val split, each read "
                     "whole (--validation-steps 1); test reads the whole split\n") == 2
    # one clip has no tag both present and absent: said once a round, the loss monitored
    assert out.count("validation: ROC-AUC and PR-AUC are undefined (nan) on 1 clip(s): no tag "
                     "is among some clips' tags (the teachers' five best of each) and not among "
                     "others' (a larger --validation-steps reads more)\n") == 2
    run = tmp_path / "samplecnn-basic-multi-student"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and np.isfinite(metrics["best"]["train_loss"])
    assert json.loads((run / "state.json").read_text())["teacher_sha256"] == \
        f"{model_fingerprint(a)}+{model_fingerprint(b)}"  # a resume must find them again
    assert not (run / "train_targets.tsv").exists()  # the lookup's table, while it trained
    assert metrics["test"]["evaluated_tags"] + len(metrics["test"]["excluded_tags"]) == 3
    from tagger.models.saved import read_saved_info

    assert read_saved_info(str(run / "model.keras")).tag_names == (
        "classical", "slow", "techno")
    second = json.loads((tmp_path / "samplecnn-basic-multi-student-round2" /
                         "config.json").read_text())
    assert second["distillation"] == {"teachers": [str(run / "model.keras")],
                                      "temperature": 2.0}
    entry = pathlib.Path(unlabelled, TARGETS_DIR,
                         model_fingerprint(str(run / "model.keras"))[:16])
    assert (entry / "teacher.json").exists()


# (val loss on the soft targets, val ROC-AUC against the teacher's tags) of
# epochs 1, 2, 3: the loss is lowest at epoch 1, the AUC highest at epoch 2
DISAGREEING = [(0.10, 0.70), (0.30, 0.90), (0.20, 0.80)]


@pytest.mark.slow
def test_a_distillation_keeps_the_epoch_of_the_best_val_auc_against_its_teacher(
        setting, tmp_path, monkeypatch, capsys):
    """The run's own loop, its validation's figures replaced by DISAGREEING:
    the epoch kept, and saved, is the one of the best val ROC-AUC against
    the teacher's tags (what the student is judged on), not of the lowest
    val loss; the run says which it follows."""
    from tagger.training import run as runs

    unlabelled, _, _, a, _ = setting
    x = np.random.default_rng(0).standard_normal((2, 59049)).astype(np.float32) * 0.1
    outputs = []  # the model's scores of `x` after each epoch
    validate = runs.Run._validate

    def disagreeing(self):
        validate(self)  # validated as usual, its figures replaced
        outputs.append(np.asarray(self.model(x, training=False)))
        loss, auc = DISAGREEING[len(outputs) - 1]
        return {"loss": loss, "roc_auc": auc, "pr_auc": 0.5}

    monkeypatch.setattr(runs.Run, "_validate", disagreeing)
    metrics = runs.train(tiny_train_config(
        unlabelled, tmp_path, num_stages=1, max_epochs_per_stage=3, patience=3,
        steps_per_epoch=1, batch_size=2, distillation=DistillationConfig(teachers=(a,))))
    assert (metrics["monitor"], metrics["best_epoch"], metrics["epochs"]) == (
        "val_roc_auc", 2, 3)
    assert metrics["best"]["val_roc_auc"] == 0.90 and metrics["best"]["val_loss"] == 0.30
    assert ("the best epoch and early stopping follow the val ROC-AUC against the teachers' "
            "five best tags of each clip") in capsys.readouterr().out
    saved = keras.models.load_model(pathlib.Path(metrics["run_dir"]) / "model.keras",
                                    compile=False)
    assert not np.allclose(outputs[1], outputs[2])  # the epochs' models differ
    np.testing.assert_allclose(np.asarray(saved(x, training=False)), outputs[1], atol=1e-6)


def clip_scores(model_path, data_dir, info, split):
    """The model's clip scores on `split`: its segments' scores averaged."""
    model = keras.models.load_model(model_path, compile=False)
    scores = [model.predict(clip["segments"], verbose=0).mean(axis=0)
              for clip in reader.clip_dataset(data_dir, split, info).as_numpy_iterator()]
    return np.array(scores, np.float64)


def usable_tags(y) -> list:
    """The tags that some clips have and some lack: (clips, tags) 0/1 `y`."""
    return [i for i in range(y.shape[1]) if 0 < y[:, i].sum() < len(y)]


def sklearn_macro(y, scores) -> tuple:
    """(usable tags, macro ROC-AUC, macro PR-AUC) of `scores` against `y` by sklearn."""
    usable = usable_tags(y)
    return (usable, np.mean([roc_auc_score(y[:, i], scores[:, i]) for i in usable]),
            np.mean([average_precision_score(y[:, i], scores[:, i]) for i in usable]))


@pytest.mark.slow
def test_eval_against_a_teacher(setting, tmp_path, capsys):
    unlabelled, info, _, a, _ = setting
    student = str(saved_model("samplecnn", TINY_SAMPLECNN,
                              against.student_info(info, TAGS_A), tmp_path))
    teacher = TeacherTargets([a], unlabelled, info, progress=False).split("test")
    t = teacher.clip_means().astype(np.float64)
    threshold = float(np.median(t[:, 0]))  # the first tag: both classes
    code, out, err = call_main(eval_cli.main, capsys, student, "--data-dir", unlabelled,
                               "--against", a, "--threshold", threshold, "--bootstrap", 200,
                               "--out-json", tmp_path / "r.json", "--no-progress")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    s = clip_scores(student, unlabelled, info, "test")
    usable, expected_roc, expected_pr = sklearn_macro((t >= threshold).astype(int), s)
    assert 0 in usable and report["evaluated_tags"] == len(usable)
    assert report["roc_auc"] == pytest.approx(expected_roc, abs=1e-6)
    assert report["pr_auc"] == pytest.approx(expected_pr, abs=1e-6)
    low, high = report["roc_auc_ci"]
    assert low <= report["roc_auc"] <= high
    assert report["mean_abs_diff"] == pytest.approx(np.abs(s - t).mean(), abs=1e-6)
    overlap = [len(set(np.argsort(-si)[:5]) & set(np.argsort(-ti)[:5])) / 5
               for si, ti in zip(s, t)]
    assert report["top_k_agreement"] == pytest.approx(np.mean(overlap))
    low, high = report["mean_abs_diff_ci"]
    assert low <= report["mean_abs_diff"] <= high
    assert report["labelled"] is None and report["clips"] == len(t)
    assert f"macro ROC-AUC {report['roc_auc']:.4f}" in out


@pytest.mark.slow
def test_eval_against_takes_each_clips_best_tags_by_default(setting, tmp_path, capsys):
    unlabelled, info, _, _, _ = setting
    a = make_teacher(tmp_path / "contrast.keras", TAGS_A, seed=1, gain=100.0)
    student = str(saved_model("samplecnn", TINY_SAMPLECNN,
                              against.student_info(info, TAGS_A), tmp_path))
    t = TeacherTargets([a], unlabelled, info, progress=False).split("test").clip_means()
    order = np.argsort(-t.astype(np.float64), axis=1, kind="stable")
    for k in range(1, len(TAGS_A)):  # the first k whose best tags differ between clips
        y = np.zeros_like(t, dtype=int)
        np.put_along_axis(y, order[:, :k], 1, axis=1)
        if usable_tags(y):
            break
    assert usable_tags(y), "the teacher ranks its tags alike on every test clip"
    code, out, err = call_main(eval_cli.main, capsys, student, "--data-dir", unlabelled,
                               "--against", a, "--top-k", k, "--bootstrap", 0,
                               "--out-json", tmp_path / "r.json", "--no-progress")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    usable, expected_roc, _ = sklearn_macro(y, clip_scores(student, unlabelled, info, "test"))
    assert report["evaluated_tags"] == len(usable)
    assert report["roc_auc"] == pytest.approx(expected_roc, abs=1e-6)
    assert report["top_k"] == k and report["threshold"] is None
    assert f"against the teacher's tags (its top {k} of each clip): macro ROC-AUC" in out


def test_teacher_tags_are_the_tags_tag_py_lists():
    scores = np.random.default_rng(1).random((20, 8))
    scores[0] = 0.5  # all tied: tag order decides
    for top_k, threshold in [(None, None), (3, None), (None, 0.6), (2, 0.6)]:
        chosen = teacher_tags(scores, top_k, threshold)
        for row, tags in zip(scores, chosen):
            assert list(np.flatnonzero(tags)) == sorted(selected_indices(row, top_k, threshold))


def test_eval_against_with_labels_gives_the_usual_figures_too(setting, tmp_path):
    _, info, labelled, a, _ = setting
    student = str(saved_model("samplecnn", TINY_SAMPLECNN,
                              against.student_info(info, TAGS_A), tmp_path))
    result = against.evaluate_against(student, [a], labelled, targets_for([a], labelled),
                                      bootstrap=0)
    _, labels = reader.clip_labels(labelled, "test", info)
    columns = [info.tag_names.index(t) for t in TAGS_A]
    expected = [roc_auc_score(labels[:, c], result.predictions.scores[:, i])
                for i, c in enumerate(columns) if 0 < labels[:, c].sum() < len(labels)]
    assert result.labelled.roc_auc == pytest.approx(np.mean(expected))


@pytest.mark.slow
def test_eval_against_scores_a_shard_cut_short_again(setting, tmp_path):
    unlabelled, info, _, a, _ = setting
    student = str(saved_model("samplecnn", TINY_SAMPLECNN,
                              against.student_info(info, TAGS_A), tmp_path))
    before = TeacherTargets([a], unlabelled, info, progress=False).split("test")
    path = stored_shard(unlabelled, a, info, "test")
    stored = shard_arrays(path)
    path.write_bytes(path.read_bytes()[:-100])  # an interrupted copy
    lines = []
    result = against.evaluate_against(student, [a], unlabelled,
                                      targets_for([a], unlabelled, False, lines.append),
                                      bootstrap=0)
    assert lines[0] == damaged_line(path, CUT_SHORT)
    np.testing.assert_array_equal(result.predictions.labels, before.clip_means())
    for name, array in shard_arrays(path).items():
        np.testing.assert_array_equal(array, stored[name])


@pytest.mark.slow
def test_eval_against_scores_again_targets_of_clips_in_another_order(own_records, tmp_path,
                                                                      capsys):
    """Stored targets whole but of the clips in another order are never
    matched to clips by position: they are scored again, saying so, and the
    figures are those of the right targets."""
    records, info, teachers = own_records
    a = teachers.teachers[0]
    student = str(saved_model("samplecnn", TINY_SAMPLECNN,
                              against.student_info(info, TAGS_A), tmp_path))
    args = (student, "--data-dir", records, "--against", a, "--no-progress")
    code, right, _ = call_main(eval_cli.main, capsys, *args)
    assert code == 0
    path = stored_shard(records, a, info, "test")
    arrays = shard_arrays(path)
    ids, counts = arrays["clip_ids"], arrays["num_segments"]
    rows = np.split(arrays["values"], np.cumsum(counts)[:-1])
    np.savez(path, clip_ids=ids[::-1], num_segments=counts[::-1],
             values=np.concatenate(rows[::-1]))  # whole, of the same clips, reversed
    code, out, _ = call_main(eval_cli.main, capsys, *args)
    assert code == 0
    assert "are not of the records' clips; scoring them again" in out
    figures = [line for line in out.splitlines() if "ROC-AUC" in line]
    assert figures and figures == [line for line in right.splitlines() if "ROC-AUC" in line]
    np.testing.assert_array_equal(shard_arrays(path)["clip_ids"], ids)


@pytest.mark.slow
def test_eval_against_refuses_bad_input_in_one_line(setting, tmp_path, capsys):
    unlabelled, info, _, a, _ = setting
    other = make_teacher(tmp_path / "other.keras", ["opera", "choir"], seed=3)
    student = str(saved_model("samplecnn", TINY_SAMPLECNN,
                              against.student_info(info, TAGS_A), tmp_path / "s"))
    code, _, err = call_main(eval_cli.main, capsys, student, "--data-dir", unlabelled,
                             "--against", other, "--no-progress")
    one_line_error(code, err, "share no tag")
    slow = str(saved_model("samplecnn", TINY_SAMPLECNN, against.student_info(
        dataclasses.replace(info, sample_rate=16000), TAGS_A), tmp_path / "r"))
    code, _, err = call_main(eval_cli.main, capsys, slow, "--data-dir", unlabelled,
                             "--against", a, "--no-progress")
    one_line_error(code, err, "sample rate 16000 (the dataset has 22050)")
    code, _, err = call_main(eval_cli.main, capsys, student, "--data-dir", unlabelled,
                             "--threshold", "0.3")
    one_line_error(code, err, "--threshold applies with --against")
    code, _, err = call_main(eval_cli.main, capsys, student, "--data-dir", unlabelled,
                             "--top-k", "3")
    one_line_error(code, err, "--top-k applies with --against")


def test_agreement_on_arrays():
    rng = np.random.default_rng(0)
    teacher, student = rng.random((30, 6)), rng.random((30, 6))
    result = agreement(student, teacher, list("abcdef"), threshold=0.5, bootstrap=100)
    y = teacher >= 0.5
    assert result.metrics.roc_auc == pytest.approx(
        np.mean([roc_auc_score(y[:, i], student[:, i]) for i in range(6)]))
    assert result.mean_abs_diff == pytest.approx(np.abs(student - teacher).mean())
    np.testing.assert_array_equal(top_k_overlap(teacher, teacher, 5), np.ones(30))
    low, high = result.metrics.intervals["roc_auc"]
    assert low <= result.metrics.roc_auc <= high


@pytest.fixture(scope="module")
def folder_records(tmp_path_factory):
    """Records of build_folder.py without --labels: 12 WAVs of 3 s at 22050
    Hz (one 59049-sample segment each), no tags."""
    import soundfile

    from tagger.commands import build_folder
    from tests.checks import tone

    root = tmp_path_factory.mktemp("folder")
    for i in range(12):
        (root / "music" / f"album{i % 3}").mkdir(parents=True, exist_ok=True)
        soundfile.write(str(root / "music" / f"album{i % 3}" / f"{i:02d}.wav"),
                        tone(3.0, 22050, 1, 200 + 50 * i, seed=i), 22050)
    assert build_folder.main([str(root / "music"), "--out-dir", str(root / "records"),
                              "--workers", "1", "--no-progress"]) == 0
    info = load_info(str(root / "records"))
    assert info.tag_names == ()
    return str(root / "records"), info


def test_folder_records_without_labels_are_distilled(folder_records, setting):
    records, info = folder_records
    a = setting[3]
    config = train_cli.config_from_args(train_cli.parse_args(
        ["--data-dir", records, "--distil", a]))
    assert config.distillation.teachers == (a,) and config.noisy_student.teacher is None
    distil = distillation.Distillation(config, info, log=print)
    assert distil.info.tag_names == tuple(TAGS_A) and distil.info.num_tags == len(TAGS_A)
    train = distil.targets.split("train")
    assert np.stack(train.per_clip()).shape == (info.splits["train"]["clips"], 1,
                                                len(TAGS_A))
    ids, targets = distil.clip_targets("val")
    assert targets.shape == (info.splits["val"]["clips"], len(TAGS_A))
    np.testing.assert_allclose(targets, distil.targets.split("val").values, atol=1e-6)
