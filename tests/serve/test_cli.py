"""tagger-serve's command line: bad flags, models and addresses are one line
and exit 2 before anything is served; model names; and the web framework
stays inside tagger/serve (the other commands never import it)."""

from __future__ import annotations

import ast
import pathlib
import socket
import sys

import pytest

from tagger.commands.serve import main
from tests.checks import call_main, one_line_error

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "tagger"
WEB = {"fastapi", "starlette", "uvicorn", "python_multipart", "multipart", "pydantic"}


def test_without_a_model_it_serves_the_default_tagger_for_real_music():
    from tagger.commands.serve import parse_args

    assert parse_args([]).model == "MTT_musicnn"
    assert parse_args(["--model", "b.keras"]).model is None  # only what is named


@pytest.mark.parametrize("argv, fragments", [
    (["m.keras", "--port", "70000"], ["--port", "expected a number in [0, 65535]"]),
    (["m.keras", "--max-batch", "0"], ["--max-batch", "expected a number in [1, 4096]"]),
    (["m.keras", "--max-batch", "100000000"], ["--max-batch", "[1, 4096]"]),
    (["m.keras", "--max-wait-ms", "1e13"], ["--max-wait-ms", "[0, 60000.0]"]),
    (["m.keras", "--workers", "100000"], ["--workers", "[1, 256]"]),
    (["m.keras", "--max-queue", "-2"], ["--max-queue"]),
    (["m.keras", "--max-upload-mb", "0"], ["--max-upload-mb", "> 0"]),
    (["m.keras", "--max-seconds", "nan"], ["--max-seconds"]),
    (["m.keras", "--max-wait-ms", "-1"], ["--max-wait-ms", "[0, 60000.0]"]),
    (["m.keras", "--workers", "x"], ["--workers", "expected an integer"]),
    (["m.keras", "--head-timeout", "0"], ["--head-timeout", "> 0"]),
    (["m.keras", "--body-timeout", "0"], ["--body-timeout", "> 0"]),
    (["m.keras", "--body-min-rate", "-1"], ["--body-min-rate", "> 0"]),
    (["m.keras", "--max-connections", "0"], ["--max-connections", "expected a number >= 1"]),
])
def test_bad_flags_are_one_line(capsys, argv, fragments):
    one_line_error(*call_main(main, capsys, *argv)[::2], *fragments)


@pytest.fixture
def serve_extra():
    """The web stack, which tagger-serve checks before anything else."""
    for name in ("fastapi", "uvicorn", "python_multipart"):
        pytest.importorskip(name)


@pytest.mark.usefixtures("serve_extra")
@pytest.mark.parametrize("argv, fragments", [
    (["missing.keras", "--port", "0"], ["model file 'missing.keras' not found"]),
    (["no-such-pretrained-name", "--port", "0"], ["neither a model file nor a pretrained"]),
    (["m.keras", "--root-path", "tagger/"], ["--root-path", "/tagger"]),
    (["m.keras", "--max-connections", "8"],
     ["--max-connections (8) must be at least --max-queue (32)"]),
    (["m.keras", "--host", "no-such-host.invalid", "--port", "0"],
     ["--host 'no-such-host.invalid' is not an address"]),
])
def test_bad_models_and_addresses_are_one_line(capsys, argv, fragments):
    one_line_error(*call_main(main, capsys, *argv)[::2], *fragments)


@pytest.mark.usefixtures("serve_extra")
def test_a_port_in_use_is_one_line_before_loading(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, _, err = call_main(main, capsys, "missing.keras", "--port", port)
    one_line_error(code, err, f"cannot listen on 127.0.0.1:{port}", "choose another --port")


@pytest.mark.usefixtures("serve_extra")
def test_two_models_of_one_name_are_refused(capsys, serve_models):
    code, _, err = call_main(main, capsys, serve_models["cnn"], "--model", serve_models["cnn"],
                             "--port", "0")
    one_line_error(code, err, "two models are named 'cnn'", "--model NAME=PATH")


# in the order tagger.serve.server.check_installed imports them
SERVE_MODULES = ("fastapi", "fastapi_offline", "python_multipart", "uvicorn")


@pytest.mark.parametrize("module", SERVE_MODULES)
def test_without_the_extra_it_says_what_to_install(capsys, monkeypatch, module):
    """The first module of the extra that is missing is named (all of them
    hidden from `module` on, so the test holds with or without the extra)."""
    for hidden in SERVE_MODULES[SERVE_MODULES.index(module):]:
        monkeypatch.setitem(sys.modules, hidden, None)  # as if not installed
    for needed in SERVE_MODULES[:SERVE_MODULES.index(module)]:
        pytest.importorskip(needed)
    code, _, err = call_main(main, capsys, "m.keras")
    one_line_error(code, err, f"needs {module}", "pip install -r requirements-serve.txt")


@pytest.mark.usefixtures("serve_extra")
def test_the_flags_reach_the_config(monkeypatch):
    seen = []
    monkeypatch.setattr("tagger.serve.server.serve", lambda config: seen.append(config) or 0)
    assert main(["m.keras", "--body-timeout", "5", "--body-min-rate", "8",
                 "--head-timeout", "3"]) == 0
    assert (seen[0].body_timeout, seen[0].body_min_rate_bytes, seen[0].head_timeout) == (
        5.0, 8192.0, 3.0)


def test_model_names(tmp_path):
    from tagger.serve.models import name_and_source

    run = tmp_path / "runs" / "samplecnn-rese-multi"
    assert name_and_source(str(run / "model.keras")) == ("samplecnn-rese-multi",
                                                         str(run / "model.keras"))
    assert name_and_source("exports/my tagger.hdf5") == ("my_tagger", "exports/my tagger.hdf5")
    assert name_and_source("msd-transformer") == ("msd-transformer", "msd-transformer")
    assert name_and_source("fast=log/a=b/model.keras") == ("fast", "log/a=b/model.keras")


def test_config_checks_what_the_library_is_given():
    from tagger.errors import UserError
    from tagger.serve.config import ServeConfig

    with pytest.raises(UserError, match="no model given"):
        ServeConfig(models=())
    with pytest.raises(UserError, match="--max-queue must be at least 1"):
        ServeConfig(models=("m",), max_queue=0)
    with pytest.raises(UserError, match=r"--max-batch must be at least 1 and at most 4096, got"):
        ServeConfig(models=("m",), max_batch=5000)
    with pytest.raises(UserError, match=r"--max-wait-ms must be in \[0, 60000\], got 1e\+13"):
        ServeConfig(models=("m",), max_wait_ms=1e13)
    config = ServeConfig(models=("m",), max_upload_mb=2, max_batch=8)
    assert (config.max_upload_bytes, config.pending_windows, config.public) == (2 << 20, 32,
                                                                                 False)
    assert (config.body_timeout, config.body_min_rate_bytes) == (20.0, 32 << 10)
    with pytest.raises(UserError, match=r"^--body-min-rate must be above 0, got 0$"):
        ServeConfig(models=("m",), body_min_rate=0)
    assert ServeConfig(models=("m",), host="0.0.0.0").public


def test_the_engine_is_auto_and_a_model_says_which_engine_it_took(serve_models, monkeypatch,
                                                                   tmp_path):
    """Without --engine, each model's one line names the engine auto took:
    with no audio to measure on, keras, until a tag.py run measures others."""
    from tagger.commands.serve import parse_args
    from tagger.serve.config import ServeConfig
    from tagger.serve.models import load_model

    monkeypatch.delenv("TAGGER_ENGINE")
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path))
    assert parse_args(["m.keras"]).engine is None and ServeConfig(models=("m",)).engine == "auto"
    lines = []
    served = load_model(f"tiny={serve_models['cnn']}", 4, 0.001, 16, log=lines.append,
                        engine="auto")
    served.batcher.close()
    assert [line.split(" (")[0] for line in lines] == ["tiny: engine auto: keras"]
    assert type(served.predictor).__name__ == "KerasPredictor"


def web_imports_outside_serve():
    """(file, module) for every import of the web stack outside tagger/serve/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "serve" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [(path.name, n) for n in names if n.split(".")[0] in WEB]
    return found


def test_only_tagger_serve_imports_the_web_framework():
    assert web_imports_outside_serve() == []
    serve_files = [p for p in (PACKAGE / "serve").glob("*.py")
                   if "fastapi" in p.read_text()]
    assert serve_files  # the check looks where the framework is
