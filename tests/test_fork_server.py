"""The workers' fork server loads the program's main module once, so that
workers do not import it again each (tagger.fork_server)."""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).parents[1]

# The main module: notes in LOG which process imports `heavy` (what a
# command's imports stand for) and runs its body; maps over two workers.
PROGRAM = textwrap.dedent("""
    import os, sys
    import heavy
    with open(os.environ["LOG"], "a") as log:
        log.write(f"main {os.getpid()}\\n")

    def main():
        from tagger.parallel import ordered_map
        import tests.test_parallel as work
        assert list(ordered_map(work.square, range(6), 2)) == [x * x for x in range(6)]
        print(os.getpid())

    if __name__ == "__main__":
        main()
""")
HEAVY = 'import os\nopen(os.environ["LOG"], "a").write(f"heavy {os.getpid()}\\n")\n'


@pytest.mark.slow
@pytest.mark.parametrize("how", ["path", "module"])
def test_workers_find_the_main_module_loaded(tmp_path, how):
    folder = tmp_path / "program"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "__init__.py").write_text("")
    (folder / "app" / "program.py").write_text(PROGRAM)
    (folder / "heavy.py").write_text(HEAVY)
    log = tmp_path / "log"
    command = [sys.executable, "app/program.py"] if how == "path" else [
        sys.executable, "-m", "app.program"]
    env = {**os.environ, "LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr  # runpy's, where a worker finds it imported
    parent = int(done.stdout.split()[-1])
    lines = [line.split() for line in log.read_text().splitlines()]
    heavy = [int(pid) for kind, pid in lines if kind == "heavy"]
    mains = [int(pid) for kind, pid in lines if kind == "main"]
    # `heavy` is imported by this program and by the fork server, by no worker
    assert len(heavy) == 2 and heavy[0] == parent, lines
    if how == "path":  # the server runs the main module's body; workers find it run
        assert mains == heavy, lines
    else:  # imported there as `app.program`; each worker runs the body again (quick)
        assert mains[:2] == heavy and len(mains) == 4, lines
