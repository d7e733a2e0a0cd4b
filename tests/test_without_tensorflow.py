"""Every command of the README's table on a machine where TensorFlow cannot
be imported, under Keras's JAX backend: it runs, or refuses in one line
naming what needs TensorFlow; and under a KERAS_BACKEND tagger does not
run on (torch, or JAX in capitals) every command refuses in one line.

One process (tests/no_tensorflow/every_command.py, where `import
tensorflow` fails) runs every command's main in turn on tiny inputs and
reports what each did; each test below checks one command's results, read
back here under TensorFlow where they are files: a tagger trained under
JAX scores and embeds as it does under TensorFlow."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.checks import HANG_S, ROOT, command_modules, without_tensorflow_env

pytest.importorskip("jax", reason="the JAX backend's tests need requirements-jax.txt")

pytestmark = pytest.mark.slow

RUN = "samplecnn-rese-multi"


@pytest.fixture(scope="module")
def inputs(raw_records, tmp_path_factory):
    """What the process reads that only TensorFlow's side of the suite
    makes cheaply: the tiny self-attention tagger (shared with the
    interpretation tests) and a random ReSE model in resemul's .hdf5
    layout, with that model."""
    from tests.checks import (
        built_once,
        random_resemul_model,
        saved_model,
        write_keras2_file,
    )
    from tests.presets import TINY_SELF_ATTENTION

    folder = tmp_path_factory.mktemp("without_tensorflow_inputs")
    attention = built_once(tmp_path_factory, "self_attention", lambda made: saved_model(
        "self_attention", TINY_SELF_ATTENTION, raw_records[1], made))
    original = random_resemul_model("rese", seed=1)
    resemul = folder / "rese-multi-tfrmodel.hdf5"
    write_keras2_file(original, "rese", resemul)
    return {"self_attention": str(attention), "resemul": str(resemul)}, original


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    """(the process's report, its work folder) after checking that
    TensorFlow could not be imported there."""
    work = tmp_path_factory.mktemp("without_tensorflow")
    (work / "inputs.json").write_text(json.dumps(inputs[0]))
    env = without_tensorflow_env()
    env["KERAS_BACKEND"] = "jax"
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "no_tensorflow" /
                                               "every_command.py"), str(work),
                           str(work / "inputs.json")], env=env, capture_output=True, text=True,
                          timeout=HANG_S, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((work / "report.json").read_text())
    assert found["tensorflow"] is False and found["blocked"]
    return found, work


def ran(report, name) -> dict:
    """The run `name`, after checking that it succeeded without a traceback."""
    run = report[0]["runs"][name]
    assert run["code"] == 0, run["err"][-3000:]
    assert "Traceback" not in run["err"] + run["out"]
    return run


def refused(report, name, *fragments) -> str:
    """The one line the run `name` refused with (exit code 2), holding `fragments`."""
    run = report[0]["runs"][name]
    lines = run["err"].strip().splitlines()
    assert run["code"] == 2 and len(lines) == 1 and "Traceback" not in run["err"], run["err"]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def under_tensorflow(report):
    """The songs tagged, and what the model trained under JAX gives for them
    here, under TensorFlow: {path: (clip scores, mean embedding)}, the tag names."""
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger

    work = report[1]
    files = sorted(str(work / "songs" / name) for name in os.listdir(work / "songs"))
    model, info = load_tagger(str(work / "runs" / RUN / "model.keras"))
    predictor = make_predictor("keras", model, info, EngineOptions(embeddings=True))
    results = {r.path: (r.clip_scores, r.embeddings.mean(axis=0))
               for r in tag_files(predictor, files, workers=1)}
    return results, list(predictor.tag_names)


def test_every_command_refuses_a_backend_tagger_does_not_run_on(report):
    """KERAS_BACKEND=torch (and JAX in capitals): one line from every
    command, before anything imports Keras."""
    found = report[0]
    names = [module.rpartition(".")[2] for module in command_modules()]
    for name in names:
        refused(report, f"torch:{name}", "KERAS_BACKEND 'torch' is not a Keras backend tagger "
                "runs on; valid: tensorflow, jax")
    refused(report, "JAX:tag", "KERAS_BACKEND 'JAX'", "in lower case as Keras reads them")
    for name in ("train", "tag"):  # they compute with Keras, which would run on TensorFlow
        refused(report, f"unset:{name}", "Keras would run on TensorFlow here (KERAS_BACKEND "
                "unset: tensorflow), which cannot be imported: set KERAS_BACKEND=jax")
    assert "TensorFlow" not in found["runs"]["unset:build_mtt"]["err"]  # records need no Keras
    assert found["keras_before_jax"] is False


def test_synthetic(report):
    run = ran(report, "synthetic")
    assert run["out"].startswith("wrote 30 clips x 3 s")
    assert len(pd.read_csv(report[1] / "mtt" / "annotations_final.csv", sep="\t")) == 30


def test_synthetic_msd(report):
    assert ran(report, "synthetic_msd")["out"].startswith("wrote 40 tracks")
    assert (report[1] / "msd" / "AdditionalFiles").is_dir() or any(
        (report[1] / "msd").iterdir())


def built(folder) -> dict:
    info = json.loads((folder / "dataset_info.json").read_text())
    return {split: (entry["clips"], entry["shards"]) for split, entry in info["splits"].items()}


def test_build_mtt(report):
    ran(report, "build_mtt")
    splits = built(report[1] / "mtt" / "tfrecord")
    assert {"train", "val", "test"} <= set(splits) and all(clips > 0 for clips, _ in
                                                            splits.values())


def test_build_msd(report):
    ran(report, "build_msd")
    assert built(report[1] / "msd" / "tfrecord")["train"][0] > 0


def test_build_folder(report):
    ran(report, "build_folder")
    assert sum(clips for clips, _ in built(report[1] / "folder_records").values()) == 3


def test_demo(report):
    run = ran(report, "demo")
    demo = report[1] / "demo"
    metrics = json.loads((demo / "runs" / RUN / "metrics.json").read_text())
    assert math.isfinite(metrics["test"]["roc_auc"])
    table = pd.read_pickle(demo / "excitations.pkl")
    assert len(table) > 0 and table.ex.iloc[0].dtype == np.float32
    assert "excitations: " in run["out"] and "demo finished" in run["out"]


def test_train(report):
    run = ran(report, "train")
    assert "training on JAX's 1 cpu device" in run["out"]
    assert "read by the TensorFlow-free reader" in run["out"]
    history = pd.read_csv(report[1] / "runs" / RUN / "history.csv")
    assert list(history.epoch) == [1] and np.isfinite(history.train_loss).all()


def test_eval(report):
    """eval.py gives the run's own test figures."""
    ran(report, "eval")
    figures = json.loads((report[1] / "eval.json").read_text())
    test = json.loads((report[1] / "runs" / RUN / "metrics.json").read_text())["test"]
    assert figures["roc_auc"] == pytest.approx(test["roc_auc"], abs=1e-6)
    assert figures["pr_auc"] == pytest.approx(test["pr_auc"], abs=1e-6)


def tag_report(report, engine) -> dict:
    """{path: {tag: score}} of tag.py --engine ENGINE's JSON report."""
    rows = json.loads((report[1] / f"tag-{engine}.json").read_text())
    return {row["path"]: dict(zip(row["tags"], row["scores"])) for row in rows}


def test_tag_keras_scores_as_tensorflow_does(report, under_tensorflow):
    ran(report, "tag:keras")
    scores, names = under_tensorflow
    found = tag_report(report, "keras")
    assert sorted(found) == sorted(scores)
    for path, (expected, _) in scores.items():
        np.testing.assert_allclose([found[path][name] for name in names], expected, atol=1e-4)


def test_tag_xla_is_the_keras_engine_under_jax(report):
    run = ran(report, "tag:xla")
    assert "--engine xla: under jax, the keras engine is compiled by XLA already" in run["err"]
    assert "speed of --engine keras" not in run["err"]  # nothing timed against itself
    xla, keras = tag_report(report, "xla"), tag_report(report, "keras")
    assert sorted(xla) == sorted(keras)
    for path, scores in keras.items():  # two runs of one compiled program: equal to rounding
        assert xla[path].keys() == scores.keys()
        assert max(abs(xla[path][tag] - score) for tag, score in scores.items()) <= 2e-6


def test_tag_keras_bf16(report):
    run = ran(report, "tag:keras-bf16")
    assert "--engine keras-bf16" in run["err"] and "speed of --engine keras" in run["err"]
    keras, bf16 = tag_report(report, "keras"), tag_report(report, "keras-bf16")
    assert bf16 != keras
    for path, scores in keras.items():
        assert max(abs(bf16[path][tag] - score) for tag, score in scores.items()) < 0.05


@pytest.mark.parametrize("engine", ["tflite", "tflite-int8"])
def test_tag_tflite_engines_refuse(report, engine):
    refused(report, f"tag:{engine}", f"--engine {engine}: a TFLite model is TensorFlow's own "
            "format", "TensorFlow cannot be imported here", "use --engine keras")
    assert not (report[1] / f"tag-{engine}.json").exists()


def test_tag_db_with_embeddings(report, under_tensorflow):
    from tagger.inference.library.results_reader import ResultsReader

    ran(report, "tag:db")
    with ResultsReader(str(report[1] / "library.sqlite")) as reader:
        (model,) = reader.models()
        assert model["files"] == 2
        for path in sorted(under_tensorflow[0])[:2]:
            np.testing.assert_allclose(reader.stored_embedding(model, path),
                                       under_tensorflow[0][path][1], atol=1e-4)


def test_tag_embeddings_taggram_and_report(report, under_tensorflow):
    ran(report, "tag:embeddings")
    stored = np.load(report[1] / "embeddings.npz")
    for path, (_, embedding) in under_tensorflow[0].items():
        np.testing.assert_allclose(stored[path], embedding, atol=1e-4)
        taggram = np.load(report[1] / "taggram" / f"{os.path.basename(path)}.npy")
        assert taggram.shape == (1, 50)
    assert len(pd.read_csv(report[1] / "tags.csv")) == 3


def test_tag_write_tags(report):
    import mutagen

    ran(report, "tag:write_tags")
    keras = {os.path.basename(path): scores for path, scores in tag_report(report,
                                                                           "keras").items()}
    for name, scores in keras.items():
        written = mutagen.File(report[1] / "tagged" / name)
        best = sorted(scores, key=scores.get, reverse=True)[:3]
        assert written.tags.getall("TXXX:tagger")[0].text == ["; ".join(best)]


def test_library(report):
    run = ran(report, "library")
    assert "wrote" in run["err"] and len(pd.read_csv(report[1] / "library.csv")) == 2


def test_similar_from_the_database_and_tagging_the_query(report):
    stored = ran(report, "similar:stored")
    first, second, third = sorted(str(p) for p in (report[1] / "songs").iterdir())
    assert stored["out"].splitlines()[1].endswith(second)
    tagged_now = ran(report, "similar:tagged_now")
    assert f"{third} is not in the database" in tagged_now["err"]
    assert [line.split()[-1] for line in tagged_now["out"].splitlines()[1:]] in (
        [first, second], [second, first])


@pytest.mark.parametrize("kind, what", [("saved_model", "a SavedModel"),
                                        ("tflite", "a TFLite file")])
def test_export_refuses(report, kind, what):
    refused(report, f"export:{kind}", f"--format {kind}: {what} is TensorFlow's own format",
            "TensorFlow cannot be imported here", "export where TensorFlow is installed")
    assert not (report[1] / "saved_model").exists() and not (report[1] / "model.tflite").exists()


def test_extract_excitations(report):
    """The excitations read under JAX are the model's under TensorFlow."""
    import keras

    from tagger.interpret.excitations import excitation_model
    from tagger.models.saved import load_tagger
    from tagger.records.reader import clip_dataset

    ran(report, "extract_excitations")
    table = pd.read_pickle(report[1] / "excitations.pkl")
    model, info = load_tagger(str(report[1] / "runs" / RUN / "model.keras"))
    extractor = excitation_model(model, info)
    clip = next(clip_dataset(str(report[1] / "mtt" / "tfrecord"), "test").as_numpy_iterator())
    expected = [np.asarray(e)[0] for e in extractor(keras.ops.convert_to_tensor(
        clip["segments"][:1].astype(np.float32)), training=False)]
    rows = table[table.clip_id == clip["clip_id"]].sort_values("depth")
    assert len(rows) == len(expected) == 9
    for got, want in zip(rows.ex, expected):
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert len(list((report[1] / "excitation_plots").glob("*.png"))) == 5


def test_attention(report):
    ran(report, "attention")
    folder = report[1] / "attention"
    assert len(list(folder.glob("*.png"))) == 2
    attention = np.load(next(folder.glob("*_attention.npy")))
    assert attention.ndim >= 2 and np.isfinite(attention).all()


def test_convert_weights(report, inputs):
    """resemul's weights converted under JAX are the original's; the
    musicnn package's, TensorFlow checkpoints, are refused in one line."""
    from tagger.models.saved import load_tagger

    ran(report, "convert_weights:resemul")
    converted, _ = load_tagger(str(report[1] / "converted.keras"))
    for a, b in zip(inputs[1].get_weights(), converted.get_weights()):
        np.testing.assert_array_equal(a, b)
    refused(report, "convert_weights:musicnn", "TensorFlow checkpoints, which only TensorFlow "
            "reads", "TensorFlow cannot be imported here")


def test_pretrained(report):
    assert "MTT_musicnn" in ran(report, "pretrained")["out"]


def test_serve(report):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    run = ran(report, "serve")
    served = report[0]["served"]
    assert served["status"] == 200, served
    scores = dict(zip(served["body"]["tags"], served["body"]["scores"]))
    assert [top["tag"] for top in served["body"]["top"]] == sorted(
        scores, key=scores.get, reverse=True)[:3]
    assert run["err"].strip().splitlines()[-1] == "stopped"


def test_beets_plugin(report):
    """The files imported into a beets library get the tags tag.py gives them."""
    pytest.importorskip("beets")
    ran(report, "beets:import")
    ran(report, "beets:musictag")
    keras = {os.path.basename(path): scores for path, scores in tag_report(report,
                                                                           "keras").items()}
    listed = dict(line.split("|") for line in ran(report, "beets:ls")["out"].splitlines())
    assert sorted(os.path.basename(path) for path in listed) == sorted(keras)
    for path, tags in listed.items():
        scores = keras[os.path.basename(path)]
        assert tags.split("; ")[0] == max(scores, key=scores.get) and len(tags.split("; ")) == 5
