"""The notebooks run top to bottom against artifacts made here, so they never rot.

The Colab TPU notebook runs on the CPU under JAX with tiny settings, a
local folder for its bucket and a stand-in for `google.colab`; its TPU
settings are checked for what they must do.
"""

import os
import pathlib
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests.checks import HANG_S
from tests.checks import ROOT as ROOT_DIR

NOTEBOOKS = ROOT_DIR / "notebooks"


def execute(name, tmp_path, monkeypatch, parameters=None, path=NOTEBOOKS,
            python_path=(), **env):
    """Runs notebooks/<name> in a python3 kernel (working directory `path`,
    the repository and `python_path` on PYTHONPATH) with `env` set and, given
    `parameters` (source), a cell of them after the cell tagged `parameters`;
    returns the executed notebook, also saved under tmp_path for inspection."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    if parameters is not None:
        tagged = next(i for i, cell in enumerate(notebook.cells)
                      if "parameters" in cell.metadata.get("tags", []))
        notebook.cells.insert(tagged + 1, nbformat.v4.new_code_cell(parameters))
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT_DIR), *map(str, python_path)]
        + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    NotebookClient(notebook, timeout=HANG_S, kernel_name="python3",
                   resources={"metadata": {"path": str(path)}}).execute()
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


# The Colab TPU notebook's settings on a CPU: tiny clips, models and runs
# (tests/presets.py's TINY_RUN_SAMPLECNN's basic blocks and TINY_TRANSFORMER),
# one step an epoch, BUCKET a local folder.
COLAB_TINY = """
CLIPS = 40
SECONDS = 3.0
BATCH = 4
TEACHER_BATCH = 4
SHORT = ("--num-stages 1 --max-epochs-per-stage 1 --steps-per-epoch 1 --validation-steps 1"
         " --no-test")
CNN = f"--block basic --width 0.0625 {SHORT}"
TRANSFORMER = ("--conv-ndim 4 --attention-ndim 16 --attention-heads 2 --attention-layers 2"
               f" --schedule staged {SHORT}")
"""


@pytest.mark.slow  # a kernel that starts the notebook's commands, each in a process
def test_colab_tpu_notebook_runs_top_to_bottom_on_a_cpu_under_jax(tmp_path, monkeypatch):
    """Every cell runs: the clone and the install, the stand-in for
    google.colab's auth, the records written into the bucket, the supervised
    run, the teacher and the noisy student, each evaluated under JAX."""
    pytest.importorskip("jax", reason="the notebook trains under JAX (requirements-jax.txt)")
    if not (ROOT_DIR / ".git").exists():
        pytest.skip("the notebook clones the project: this checkout is not a git repository")
    stubs = tmp_path / "stubs" / "google" / "colab"
    stubs.mkdir(parents=True)
    (stubs / "__init__.py").write_text("")
    (stubs / "auth.py").write_text("def authenticate_user():\n    pass\n")
    (stubs / "output.py").write_text("")  # JAX's debugger imports it on Colab
    bucket = tmp_path / "bucket"
    parameters = f"BUCKET = {str(bucket)!r}\nREPO_URL = {str(ROOT_DIR)!r}\n" + COLAB_TINY
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable),
                                                os.environ["PATH"]]))
    notebook = execute("colab_tpu.ipynb", tmp_path, monkeypatch, parameters=parameters,
                       path=tmp_path, python_path=[tmp_path / "stubs"])
    text = "".join(o.get("text", "") for o in outputs_of(notebook))
    # a command's failure is no cell error (IPython's `!` goes on): its lines
    assert "traceback" not in text.lower() and "error:" not in text.lower(), text[-3000:]
    devices = [o.data["text/plain"] for o in outputs_of(notebook)
               if o.output_type == "execute_result"]
    assert devices == ["[CpuDevice(id=0)]"]  # jax.devices(), under the JAX backend
    for run in ("supervised", "teacher", "student"):
        assert (bucket / "log" / run / "model.keras").is_file(), text[-3000:]
    assert text.count("ROC-AUC") >= 2, text[-3000:]
    cloned = subprocess.run(["git", "-C", str(tmp_path / "tagger"), "log", "-1", "--format=%H"],
                            capture_output=True, text=True, check=True).stdout
    assert cloned.strip()


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
    settings = notebook.cells[1]
    assert "parameters" in settings.metadata.tags
    values = {}
    exec(settings.source, values)  # the TPU's settings, the defaults
    assert values["CLIPS"] == 400 and values["SECONDS"] == 29.1
    assert values["CNN"] == values["TRANSFORMER"] == ""
    variables = {f"${name}": str(values[name]) for name in sorted(
        ("BUCKET", "CLIPS", "SECONDS", "BATCH", "TEACHER_BATCH", "CNN", "TRANSFORMER"),
        key=len, reverse=True)}
    variables["$BUCKET"] = "gs://bucket/tagger"
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
    assert supervised.batch_size == student.batch_size == 184 and teacher.batch_size == 128
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
