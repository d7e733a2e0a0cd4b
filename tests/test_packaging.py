"""The project installs with pip: console commands for every CLI, the
scripts beside the package delegate to the same code."""

from __future__ import annotations

import ast
import importlib
import os
import pathlib
import shutil
import site
import subprocess
import sys
import venv

import pytest

from tests.checks import command_modules

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = pathlib.Path(__file__).resolve().parents[1]


def console_scripts() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_console_script_is_a_main_function():
    scripts = console_scripts()
    assert sorted({target.split(":")[0] for target in scripts.values()}) == command_modules()
    for name, target in scripts.items():
        module_name, function = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), function)), name


# commands with a console script but no script beside the package: they run
# as `python -m tagger.commands.<name>`
RUN_WITH_M = {"tagger.commands.synthetic", "tagger.commands.synthetic_msd",
              "tagger.commands.attention", "tagger.commands.pretrained",
              "tagger.commands.library", "tagger.commands.similar",
              "tagger.commands.serve"}  # also `python -m tagger.serve`


def test_every_top_level_script_runs_its_command_module():
    modules = {target.split(":")[0] for target in console_scripts().values()}
    scripts = sorted(p for p in ROOT.glob("*.py") if p.name != "setup.py")
    assert [p.stem for p in scripts] == sorted(
        m.rsplit(".", 1)[-1] for m in modules
        if m.startswith("tagger.commands.") and m not in RUN_WITH_M)
    for script in scripts:
        imports = [node for node in ast.parse(script.read_text()).body
                   if isinstance(node, ast.ImportFrom)]
        assert [(i.module, [a.name for a in i.names]) for i in imports] == [
            (f"tagger.commands.{script.stem}", ["main"])]


def test_requirements_are_the_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    manifest = (ROOT / "MANIFEST.in").read_text().split()
    for extra in dynamic["optional-dependencies"].values():
        assert extra["file"][0] in manifest  # an sdist carries the files it reads


def sees_running_packages(python) -> None:
    """Makes the environment of `python` see, after its own, the packages of
    the one running the tests (a .pth naming its site-packages folders) and
    not those of the base interpreter: what the README installed, whatever
    else the machine holds."""
    found = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    running = [folder for folder in site.getsitepackages() if os.path.isdir(folder)]
    pathlib.Path(found, "running-environment.pth").write_text("\n".join(running) + "\n")


@pytest.mark.slow
def test_pip_install_gives_working_commands(tmp_path):
    """`pip install .` into a fresh environment (dependencies taken from the
    one running the tests, never from its base interpreter's; the build
    isolated as a user's is: pip fetches the build's own setuptools), then
    the commands run from another folder."""
    source = tmp_path / "source"  # built here, so the checkout gains no build/ folder
    for package in ("tagger", "beetsplug"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE",
                 "requirements.txt", "requirements-torch.txt", "requirements-beam.txt",
                 "requirements-faiss.txt", "requirements-serve.txt", "requirements-beets.txt"):
        shutil.copy(ROOT / name, source / name)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    sees_running_packages(python)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-cache-dir", str(source)],
        capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for command in ("tagger-train", "tagger-build-msd", "tagger-tag"):
        done = subprocess.run([str(env_dir / "bin" / command), "--help"],
                              capture_output=True, text=True, cwd=tmp_path, env=clean)
        assert done.returncode == 0 and f"usage: {command}" in done.stdout, done.stderr
    where = subprocess.run([str(python), "-c", "import tagger; print(tagger.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert str(env_dir) in where.stdout
    # the beets plugin is a module of beets' namespace package beetsplug, which
    # the install must not turn into a regular package (no __init__.py)
    plugin = subprocess.run(
        [str(python), "-c", "import importlib.util; print(importlib.util.find_spec("
                            "'beetsplug.musictagger').origin)"],
        capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert plugin.stdout.strip().startswith(str(env_dir)), plugin.stderr
    assert not (pathlib.Path(plugin.stdout.strip()).parent / "__init__.py").exists()
    # tagger-serve's page files are package data (read as tagger.serve.app reads
    # them, without the serve extra's FastAPI, which a plain install lacks)
    names = sorted(p.name for p in (ROOT / "tagger" / "serve" / "page").iterdir())
    page = subprocess.run(
        [str(python), "-c", "import sys; from importlib import resources; "
                            "page = resources.files('tagger.serve').joinpath('page'); "
                            "print(*(len(page.joinpath(n).read_bytes()) for n in sys.argv[1:]))",
         *names], capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert page.returncode == 0, page.stderr
    assert page.stdout.split() == [
        str((ROOT / "tagger" / "serve" / "page" / name).stat().st_size) for name in names]
