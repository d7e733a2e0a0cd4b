"""The notebooks run top to bottom against artifacts made here, so they never rot.

The Colab TPU notebook needs a TPU and a bucket: it is validated as a
notebook and checked for what it must do, not executed.
"""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from tests.checks import HANG_S
from tests.checks import ROOT as ROOT_DIR

NOTEBOOKS = ROOT_DIR / "notebooks"


def execute(name, tmp_path, monkeypatch, **env):
    """Runs notebooks/<name> in a python3 kernel (working directory
    notebooks/, the repository on PYTHONPATH) with `env` set; returns the
    executed notebook, also saved under tmp_path for inspection."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT_DIR)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    NotebookClient(notebook, timeout=HANG_S, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    nbformat.write(notebook, tmp_path / name)
    return notebook


def outputs_of(notebook):
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", [])]


def images(notebook) -> int:
    return sum("image/png" in output.get("data", {}) for output in outputs_of(notebook))


@pytest.mark.slow  # a fresh kernel per notebook: its start-up dominates
def test_excitation_analysis_notebook(se_table_file, tmp_path, monkeypatch):
    notebook = execute("excitation_analysis.ipynb", tmp_path, monkeypatch,
                       TAGGER_EXCITATIONS=se_table_file)
    assert not [o for o in outputs_of(notebook) if o.output_type == "error"]
    assert images(notebook) >= 5  # three depths, the comparison, the spread
    text = "".join(o.get("text", "") for o in outputs_of(notebook))
    assert "9 SE blocks" in text


@pytest.mark.slow  # a fresh kernel importing TensorFlow
def test_attention_maps_notebook(transformer_model, audio_files, tmp_path, monkeypatch):
    audio = os.pathsep.join(str(audio_files[k]) for k in ("short", "window"))
    notebook = execute("attention_maps.ipynb", tmp_path, monkeypatch,
                       TAGGER_ATTENTION_MODEL=transformer_model, TAGGER_AUDIO=audio)
    assert not [o for o in outputs_of(notebook) if o.output_type == "error"]
    assert images(notebook) == 5  # 2 heat maps, 2 contribution maps, 1 joined


def test_colab_tpu_notebook_is_valid_and_trains_on_a_tpu_under_jax():
    """Today's Colab TPU runtimes run JAX: the notebook trains and evaluates
    with --backend jax, supervised and by the paper's noisy-student recipe
    (a teacher transformer, then an augmented student on records with an
    unlabelled split), installs no tensorflow-tpu, and every command line
    it runs is one the commands parse."""
    from tagger.commands import build_flags, train
    from tagger.commands import eval as eval_cli

    notebook = nbformat.read(NOTEBOOKS / "colab_tpu.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "pip install -q -r requirements.txt" in code and "git clone" in code
    assert "tensorflow-tpu" not in code and "%env KERAS_BACKEND=jax" in code
    assert 'BUCKET = "gs://' in code.splitlines()[0]
    commands = [line for line in code.replace("\\\n", " ").splitlines()
                if line.startswith("!python ")]
    variables = {"$BUCKET": "gs://bucket/tagger", "$CLIPS": "400"}
    parsers = {"train.py": train.parse_args, "eval.py": eval_cli.parse_args,
               "build_mtt.py": lambda argv: build_flags.parse_args("mtt", argv),
               "-m tagger.commands.synthetic": lambda argv: argv}
    parsed = {name: [] for name in parsers}
    for line in commands:
        for name, value in variables.items():
            line = line.replace(name, value)
        script = next(name for name in parsers if line.startswith(f"!python {name}"))
        parsed[script].append(parsers[script](line.removeprefix(f"!python {script}").split()))
    supervised, teacher, student = parsed["train.py"]
    assert all(run.backend == "jax" and run.batch_size % 8 == 0
               for run in parsed["train.py"] + parsed["eval.py"])
    assert supervised.block == "rese" and supervised.data_dir == "gs://bucket/tagger/tfrecord"
    assert parsed["build_mtt.py"][1].unlabelled_fraction == 0.5
    assert teacher.model == "transformer" and teacher.data_dir == student.data_dir == (
        parsed["build_mtt.py"][1].out_dir)
    assert student.teacher == [f"{teacher.train_dir}/{teacher.run_name}/model.keras"]
    assert student.augment and student.block == "rese"


@pytest.mark.parametrize("name", ["excitation_analysis.ipynb", "attention_maps.ipynb",
                                  "colab_tpu.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert not outputs_of(notebook)
    assert notebook.metadata.kernelspec.name == "python3"


def test_notebooks_define_no_logic():
    for path in pathlib.Path(NOTEBOOKS).glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert "def " not in cell.source and "class " not in cell.source, path.name
