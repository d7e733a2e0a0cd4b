"""The noisy-student step: the formula, the frozen teacher, its pseudo-labels
on clean audio, learning, unlabelled records read without tags, and a
MirroredStrategy run over two logical CPUs."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.augment import Augmentation, AugmentConfig
from tagger.errors import UserError
from tagger.training.semi_supervised import (
    PseudoLabeller,
    centre_crop,
    make_noisy_student_function,
)
from tests.checks import run_json_script

ROOT = pathlib.Path(__file__).parents[2]
TAGS = 5
SHORT, LONG = 48, 96  # student and teacher window lengths (samples)
POLARITY = Augmentation(22050, config=dataclasses.replace(AugmentConfig.none(), polarity=1.0))


def small_model(samples, seed, dropout=0.0, batch_norm=False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((samples,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, keras.layers.Dense(TAGS, activation="sigmoid")(x))


def iterators(x_l, y_l, x_u):
    labelled = tf.data.Dataset.from_tensors((x_l, y_l)).repeat()
    unlabelled = tf.data.Dataset.from_tensors(x_u).repeat()
    return iter(labelled), iter(unlabelled)


def bce(targets, scores):
    """keras' binary cross-entropy per example (epsilon 1e-7), in numpy."""
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    return -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p), axis=-1)


def batch(seed, n_l=4, n_u=6):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_l, SHORT)).astype("float32"),
            (rng.random((n_l, TAGS)) < 0.4).astype("float32"),
            rng.standard_normal((n_u, LONG)).astype("float32"))


@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_loss_is_the_formula_with_clean_teacher_and_noised_student(weight):
    x_l, y_l, x_u = batch(0)
    teacher = PseudoLabeller(small_model(LONG, 1, dropout=0.5, batch_norm=True), LONG,
                      lambda x: x)
    student = small_model(SHORT, 2)
    optimizer = keras.optimizers.SGD(0.1)
    train = make_noisy_student_function(student, teacher, optimizer,
                                        tf.distribute.get_strategy(), 4, 6, POLARITY,
                                        pseudo_label_weight=weight, parts=True)
    # expected, before the step's update: teacher on the clean long windows,
    # student on the polarity-inverted centre crop
    q = teacher.model(x_u, training=False).numpy()
    p_l = student(x_l).numpy()
    p_u = student(-x_u[:, 24:72]).numpy()
    labelled, unlabelled = bce(y_l, p_l).mean(), weight * bce(q, p_u).mean()
    total, got_l, got_u = train(iterators(x_l, y_l, x_u), 1).numpy()
    np.testing.assert_allclose([got_l, got_u, total],
                               [labelled, unlabelled, labelled + unlabelled], rtol=1e-5)
    # the loss was computed on the teacher's clean view: on the noised view it differs
    q_noisy = teacher.model(-x_u, training=False).numpy()
    assert abs(weight * bce(q_noisy, p_u).mean() - got_u) > 1e-3


def test_pseudo_labels_are_the_teachers_inference_predictions_on_clean_windows():
    x_u = batch(1)[2]
    model = small_model(SHORT, 3, dropout=0.5, batch_norm=True)
    teacher = PseudoLabeller(model, SHORT, lambda x: x)
    labels = teacher(x_u).numpy()
    np.testing.assert_array_equal(labels, model(x_u[:, 24:72], training=False).numpy())
    np.testing.assert_allclose(labels, model.predict(x_u[:, 24:72], verbose=0), rtol=1e-5)
    assert np.all((labels > 0) & (labels < 1)) and len(np.unique(labels)) > TAGS  # soft
    assert np.abs(model(x_u[:, 24:72], training=True).numpy() - labels).max() > 1e-3


@pytest.mark.slow
def test_teacher_stays_frozen_and_the_student_learns():
    rng = np.random.default_rng(4)
    x_l = rng.standard_normal((16, SHORT)).astype("float32")
    y_l = (x_l[:, :TAGS] > 0).astype("float32")  # learnable from the input
    x_u = rng.standard_normal((16, LONG)).astype("float32")
    teacher_model = small_model(LONG, 5, dropout=0.5, batch_norm=True)
    teacher = PseudoLabeller(teacher_model, LONG, lambda x: x)
    before = [w.tobytes() for w in teacher_model.get_weights()]
    student = small_model(SHORT, 6)
    train = make_noisy_student_function(
        student, teacher, keras.optimizers.Adam(0.01), tf.distribute.get_strategy(), 16, 16,
        Augmentation(22050, seed=7), parts=True)
    it = iterators(x_l, y_l, x_u)
    first = train(it, 1).numpy()
    for _ in range(40):
        last = train(it, 1).numpy()
    assert [w.tobytes() for w in teacher_model.get_weights()] == before
    assert last[1] < 0.5 * first[1]  # the labelled BCE fell
    scores = student(x_l).numpy()
    assert np.mean((scores > 0.5) == y_l) > 0.9


@pytest.mark.slow
def test_jit_compiled_step_gives_the_same_losses():
    x_l, y_l, x_u = batch(2)
    results = []
    for jit in (False, True):
        teacher = PseudoLabeller(small_model(LONG, 1), LONG, lambda x: x)
        student = small_model(SHORT, 2)
        train = make_noisy_student_function(
            student, teacher, keras.optimizers.SGD(0.1), tf.distribute.get_strategy(), 4, 6,
            POLARITY, jit_compile=jit, parts=True)
        it = iterators(x_l, y_l, x_u)
        results.append([train(it, 1).numpy(), train(it, 2).numpy()])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)


def test_centre_crop():
    x = np.arange(20, dtype="float32")[None]
    np.testing.assert_array_equal(centre_crop(x, 6), [[7, 8, 9, 10, 11, 12]])
    assert centre_crop(x, 20) is x


def test_unlabelled_records_are_read_without_their_tags(raw_records, tmp_path):
    """Tags stripped from every record: the unlabelled reader still works (it
    never parses them), the labelled one is refused in one line before it
    reads (the shards' clips checked against dataset_info.json)."""
    from tagger.records import reader
    from tagger.records.info import load_info, shard_paths
    from tagger.records.tfrecord import framing_sha256

    records, info = raw_records
    stripped = tmp_path / "stripped"
    stripped.mkdir()
    for path in shard_paths(records, info, "train"):
        out = stripped / pathlib.Path(path).name
        with tf.io.TFRecordWriter(str(out)) as writer:
            for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
                example = tf.train.Example.FromString(raw)
                del example.features.feature["tags"]
                writer.write(example.SerializeToString())
    written = load_info(records).to_json()  # the stripped shards' digests, as a build's
    written["splits"]["train"]["shard_framing_sha256"] = [
        framing_sha256(str(stripped / name)) for name in info.splits["train"]["shards"]]
    (stripped / "dataset_info.json").write_text(json.dumps(written))
    data = reader.train_dataset(str(stripped), 4, with_tags=False, seed=0)
    assert isinstance(data.element_spec, tf.TensorSpec)  # windows alone
    windows = next(iter(data)).numpy()
    assert windows.shape == (4, info.segment_length) and np.abs(windows).max() > 0
    with pytest.raises(UserError, match="has no int64_list feature 'tags'"):
        reader.train_dataset(str(stripped), 4, seed=0)


MIRRORED = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import dataclasses
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tagger.augment import AugmentConfig, Augmentation
    from tagger.training.semi_supervised import PseudoLabeller, make_noisy_student_function
    from tagger.training.strategy import make_strategy

    def model(samples, seed, extra=False):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((samples,))
        x = keras.layers.Dense(8, activation="relu")(inputs)
        if extra:
            x = keras.layers.Dropout(0.5)(keras.layers.BatchNormalization()(x))
        return keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(x))

    rng = np.random.default_rng(0)
    x_l = rng.standard_normal((4, 32)).astype("float32")
    y_l = (rng.random((4, 3)) < 0.4).astype("float32")
    x_u = rng.standard_normal((8, 64)).astype("float32")
    polarity = Augmentation(22050, config=dataclasses.replace(AugmentConfig.none(), polarity=1.0))
    results = {{}}
    for name, strategy in (("default", tf.distribute.get_strategy()),
                           ("mirrored", make_strategy("mirrored"))):
        with strategy.scope():
            teacher = model(64, 1, extra=True)
            student = model(32, 2)
            opt = keras.optimizers.SGD(0.5)
        before = [w.tobytes() for w in teacher.get_weights()]
        labelled = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors((x_l, y_l)).repeat())
        unlabelled = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors(x_u).repeat())
        train = make_noisy_student_function(student, PseudoLabeller(teacher, 64, lambda x: x), opt,
                                            strategy, 4, 8, polarity, parts=True)
        its = (iter(labelled), iter(unlabelled))
        first = train(its, 1).numpy().tolist()
        second = train(its, 2).numpy().tolist()
        results[name] = {{"replicas": strategy.num_replicas_in_sync, "first": first,
                         "second": second,
                         "frozen": [w.tobytes() for w in teacher.get_weights()] == before,
                         "kernel": np.asarray(student.layers[-1].kernel).ravel().tolist()}}
    print(json.dumps(results))
""")


@pytest.mark.slow
def test_mirrored_run_equals_single_device(tmp_path):
    out = run_json_script(tmp_path / "mirrored.py", MIRRORED.format(root=str(ROOT)))
    single, mirrored = out["default"], out["mirrored"]
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    assert single["frozen"] and mirrored["frozen"]
    np.testing.assert_allclose(mirrored["first"], single["first"], rtol=1e-5)
    np.testing.assert_allclose(mirrored["second"], single["second"], rtol=1e-5)
    np.testing.assert_allclose(mirrored["kernel"], single["kernel"], rtol=1e-4, atol=1e-6)
