"""The custom training step under MirroredStrategy (two logical CPUs) and
MultiWorkerMirroredStrategy (two worker processes on 127.0.0.1, distilling
a teacher's targets)."""

import json
import pathlib
import shutil
import textwrap

import numpy as np
import pandas as pd
import pytest

from tests.checks import run_json_script, tiny_teacher, two_workers

ROOT = pathlib.Path(__file__).parents[2]
TEACHER_TAGS = ["guitar", "classical", "slow", "techno", "strings"]

MIRRORED = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tagger.training.strategy import make_strategy
    from tagger.training.trainer import make_train_function
    from tests.checks import tiny_conv_tagger as model

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 64)).astype("float32")
    y = (rng.random((8, 5)) < 0.4).astype("float32")
    results = {{}}
    for name, strategy in (("default", tf.distribute.get_strategy()),
                           ("mirrored", make_strategy("mirrored"))):
        with strategy.scope():
            m = model()
            opt = keras.optimizers.SGD(0.5, momentum=0.9, nesterov=True)
        data = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors((x, y)).repeat())
        step = make_train_function(m, opt, strategy, global_batch=8)
        it = iter(data)
        first = float(step(it, 1))
        second = float(step(it, 1))
        results[name] = {{"replicas": strategy.num_replicas_in_sync, "first": first,
                         "second": second,
                         "kernel": np.asarray(m.layers[-1].kernel).ravel().tolist()}}

    # train() over two replicas: the batch must divide, and a run works.
    from tagger.config import TrainConfig
    from tagger.errors import UserError
    from tagger.training.run import train
    config = dict(data_dir=sys.argv[1], train_dir=sys.argv[2], model="samplecnn",
                  model_args={{"block": "basic", "alpha": 2, "width": 0.0625}},
                  num_stages=1, max_epochs_per_stage=1, steps_per_epoch=2,
                  strategy="mirrored", progress=False, evaluate_test=False)
    try:
        train(TrainConfig(batch_size=7, **config))
        results["odd_batch"] = "accepted"
    except UserError as error:
        results["odd_batch"] = str(error)
    metrics = train(TrainConfig(batch_size=8, **config))
    results["run_loss"] = metrics["best"]["val_loss"]
    print(json.dumps(results))
""")


@pytest.mark.slow
def test_mirrored_step_equals_single_device(raw_records, tmp_path):
    out = run_json_script(tmp_path / "mirrored.py", MIRRORED.format(root=str(ROOT)),
                          raw_records[0], tmp_path)
    single, mirrored = out["default"], out["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert abs(single["first"] - mirrored["first"]) < 1e-5
    assert abs(single["second"] - mirrored["second"]) < 1e-5
    assert single["second"] < single["first"]
    for a, b in zip(single["kernel"], mirrored["kernel"]):
        assert abs(a - b) < 1e-5
    assert "not divisible by the 2 replicas" in out["odd_batch"]
    assert out["run_loss"] > 0


@pytest.mark.slow
def test_multiworker_training_with_two_local_workers(raw_records, tmp_path):
    """A student distilled from a teacher on records without labels: the
    chief scores the targets, the other worker reads them once stored; each
    worker's input pipeline finds them in its lookup table."""
    from tagger.models.saved import read_saved_info
    from tagger.records.info import load_info

    records = tmp_path / "records"
    shutil.copytree(raw_records[0], records)
    stored = json.loads((records / "dataset_info.json").read_text())
    for split in stored["splits"].values():
        split["labelled"] = False
    (records / "dataset_info.json").write_text(json.dumps(stored))
    teacher = tiny_teacher(tmp_path / "teacher.keras", TEACHER_TAGS, seed=1)
    info = load_info(str(records))
    outputs = two_workers(records, tmp_path, "--block", "basic", "--alpha", "2", "--width",
                          "0.0625", "--num-stages", "1", "--steps-per-epoch", "3",
                          "--distil", teacher)
    run_dir = tmp_path / "samplecnn-basic-multi-student"
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.epoch) == [1] and np.isfinite(history.train_loss[0])
    assert (run_dir / "model.keras").exists() and (run_dir / "metrics.json").exists()
    assert read_saved_info(str(run_dir / "model.keras")).tag_names == tuple(TEACHER_TAGS)
    for split in ("train", "val", "test"):
        shards = len(info.splits[split]["shards"])
        assert f"{split} targets of {shards} shard(s), {shards} computed, 0 reused" \
            in outputs[0][0]
        assert f"{split} targets of {shards} shard(s), 0 computed, {shards} reused" \
            in outputs[1][0]
    assert not (run_dir / "train_targets.tsv").exists()
    assert "test ROC-AUC" in outputs[0][0]  # the chief reports
    assert "epoch 1:" in outputs[0][0] and "epoch" not in outputs[1][0]  # one log
    assert not (run_dir / ".worker-1").exists()  # the other worker's scratch is gone


@pytest.mark.slow
def test_a_head_on_a_body_with_two_local_workers(tmp_path):
    """train.py --from under multiworker: the chief embeds the records, the
    other worker reads the embeddings once stored; no table of them is
    left in the run folder. With --suggest, the chief alone
    suggests, from the model it saved."""
    from tagger.records.info import load_info
    from tagger.training.suggest import SUGGESTED_FILE
    from tests.training.own_tags_data import FILES, build, write_body, write_music

    music = tmp_path / "music"
    music.mkdir()
    write_music(music)
    labels = tmp_path / "labels.csv"
    labelled = FILES - 4  # the last four files: the unlabelled split
    labels.write_text("\n".join((music / "labels.csv").read_text().splitlines()[:1 + labelled])
                      + "\n")
    records = build(music, tmp_path / "records", labels)
    body = write_body(tmp_path / "body.keras")
    outputs = two_workers(records, tmp_path, "--from", body, "--steps-per-epoch", "2",
                          "--suggest", "2")
    run_dir = tmp_path / "from-body"
    assert "2 file(s) to label next" in outputs[0][0]
    assert "to label next" not in outputs[1][0] and "student" not in outputs[1][0]
    suggested = (run_dir / SUGGESTED_FILE).read_text().splitlines()
    assert suggested[0] == "path,tags" and len(suggested) == 3
    assert {row.split(",")[0] for row in suggested[1:]} <= {
        f"{i:02d}.wav" for i in range(labelled, FILES)}
    assert list(pd.read_csv(run_dir / "history.csv").epoch) == [1]
    assert (run_dir / "model.keras").exists()
    info = load_info(str(records))
    for split in ("train", "val", "test"):
        shards = len(info.splits[split]["shards"])
        assert f"embeddings of {split}, {shards} shard(s), {shards} computed, 0 reused" \
            in outputs[0][0]
        assert f"embeddings of {split}, {shards} shard(s), 0 computed, {shards} reused" \
            in outputs[1][0]
    assert not (run_dir / "train_embeddings.tsv").exists()
    assert not (run_dir / ".worker-1").exists()
