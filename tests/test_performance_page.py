"""docs/performance.md's table of today's figures: bench/measure_docs_figures.py
builds it from the benches' `ratio` lines, and the page's tables hold
exactly its rows (no bench is run here)."""

import ast
import os
import re
import sys
import time
import types
from pathlib import Path

import pytest

from tests.test_bench_scripts import BENCH, load

ROOT = Path(__file__).parents[1]
PAGE = ROOT / "docs" / "performance.md"
TABLES = "## Today's figures"  # the page's section of the tables, one per machine kind


@pytest.fixture(scope="module")
def module():
    return load("measure_docs_figures")


def write_log(folder: Path, module, command: str, text: str, day: str) -> None:
    path = folder / module.log_name(command)
    path.write_text(text)
    stamp = time.mktime(time.strptime(f"{day} 12", "%Y-%m-%d %H"))
    os.utime(path, (stamp, stamp))


def table_rows(table: str) -> list:
    """The cells of a Markdown table's body rows."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines[2:]]


def test_the_table_from_logs_has_every_row_and_its_figure(module, tmp_path):
    """Each row reads its own command's log: rows of one ratio name from
    two commands keep their own figures; a disturbed figure says why; a
    ratio missing from the logs is a row that says so, not a row dropped."""
    library = [row.command for row in module.ROWS if row.ratio == "library_files_per_hour"]
    write_log(tmp_path, module, "python bench/bench_build.py",
              "CPU: AMD EPYC, 2 cores; SIMD: avx2 fma\nbuild ...\nratio builder_floor 0.926\n"
              "ratio builder_2w 1.797\nratio floor_2p 1.9\n", "2026-11-27")
    write_log(tmp_path, module, library[0], "CPU: AMD EPYC, 2 cores; SIMD: avx2 fma\n"
              "ratio library_files_per_hour 39293\n", "2026-11-28")
    write_log(tmp_path, module, library[1], "CPU: AMD EPYC, 2 cores; SIMD: avx2 fma\n"
              "ratio library_files_per_hour 77942\n", "2026-11-28")
    write_log(tmp_path, module, "python bench/bench_models.py",
              "CPU: AMD EPYC, 2 cores; SIMD: avx2 fma\nratio mfu_train_samplecnn 0.586\n"
              "disturbed mfu_train_multiscale 1.130 (above 1)\n", "2026-11-28")
    table = module.table_from_logs(str(tmp_path))
    assert table.splitlines()[0] == ("Measured 2026-11-27 to 2026-11-28 (UTC) on `CPU: AMD EPYC, "
                                     "2 cores; SIMD: avx2 fma`, with `python "
                                     "bench/measure_docs_figures.py --table`.")
    rows = table_rows(table)
    cpu = [row for row in module.ROWS if not row.gpu]
    assert [(what, command) for what, _, _, _, command in rows] == [
        module.row_cells(row) for row in cpu]
    found = {what: (figure, goal, date) for what, figure, goal, date, _ in rows}
    cell = {row.ratio + row.command: module.row_cells(row)[0] for row in cpu}
    assert found[cell["builder_floorpython bench/bench_build.py"]] == (
        "0.926", "0.9 or more", "2026-11-27")
    assert found[cell["builder_2wpython bench/bench_build.py"]][0] == "1.797"
    assert [found[cell["library_files_per_hour" + command]][0] for command in library] == [
        "39293", "77942"]
    assert found[cell["mfu_train_samplecnn" + module.MODELS]][:1] == ("0.586",)
    assert found[cell["mfu_train_multiscale" + module.MODELS]][0] == "1.130 (disturbed: above 1)"
    assert found[cell["reader_bare_int16python bench/bench_reader.py"]] == (
        "not measured", "0.8 or more", "-")
    assert found[cell["mfu_train_pons_vgg" + module.MODELS]][0] == "not measured"
    measured = {figure for figure, _, _ in found.values()} - {"not measured"}
    assert len(measured) == 6  # floor_2p, a ratio of no row, shows nowhere


def test_from_logs_prints_the_table_and_gpu_takes_the_gpu_rows(module, tmp_path, capsys):
    write_log(tmp_path, module, "python bench/bench_gpu_jax.py --epochs 3",
              "CPU: Intel Xeon, 16 cores; SIMD: avx2 amx_bf16\n"
              "ratio gpu_input_wait_share_samplecnn 0.4150\n", "2026-11-28")
    capsys.readouterr()
    assert module.main(["--from-logs", str(tmp_path), "--gpu"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert len(rows) == sum(row.gpu for row in module.ROWS)
    assert [figure for _, figure, _, _, _ in rows if figure != "not measured"] == ["0.4150"]
    with pytest.raises(SystemExit) as exit:
        module.main(["--from-logs", str(tmp_path / "nothing")])
    assert exit.value.code == 2
    assert "--from-logs expects a folder of logs" in capsys.readouterr().err


def test_a_table_run_runs_each_command_once_and_keeps_its_log(module, tmp_path, monkeypatch,
                                                               capsys):
    ran = []

    def run_logged(command, folder, peer_dir=None):
        ran.append((command, peer_dir))
        (Path(folder) / module.log_name(command)).write_text("ratio builder_floor 0.9\n")
        return 0

    monkeypatch.setattr(module, "run_logged", run_logged)
    assert module.main(["--table", "--keep", str(tmp_path)]) == 0
    commands = list(dict.fromkeys(row.command for row in module.ROWS if not row.gpu))
    peer = [command for command in commands if "CLONE" in command.split()]
    assert peer and ran == [(command, None) for command in commands if command not in peer]
    captured = capsys.readouterr()
    assert "| 0.9 | 0.9 or more |" in captured.out
    assert f"not running {peer[0]}: give --peer-dir" in captured.err
    assert (tmp_path / "bench_build.log").exists()
    ran.clear()
    assert module.main(["--table", "--keep", str(tmp_path), "--peer-dir", "zoo"]) == 0
    assert ran == [(command, "zoo") for command in commands]


def test_a_command_runs_with_the_peer_folder_in_place_of_clone(module, tmp_path, monkeypatch):
    started = []

    def run(argv, **kwargs):
        started.append(argv)
        return types.SimpleNamespace(returncode=3)

    monkeypatch.setattr(module.subprocess, "run", run)
    command = "python bench/bench_peer.py --peer-dir CLONE"
    assert module.run_logged(command, str(tmp_path), "/zoo") == 3
    assert started == [[sys.executable, "bench/bench_peer.py", "--peer-dir", "/zoo"]]
    assert (tmp_path / module.log_name(command)).exists()


@pytest.mark.parametrize("flags, message", [
    (["--peer-dir", "zoo"], "--peer-dir is for the commands --table runs"),
    (["--from-logs", ".", "--keep", "x"], "--keep does not apply"),
    (["--table", "--seeds", "3"], "--seeds sets the semi_supervised measure's seeds"),
])
def test_a_flag_that_does_not_apply_is_refused(module, flags, message, capsys):
    with pytest.raises(SystemExit) as exit:
        module.parse_args(flags)
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_the_registry_rows_are_distinct_and_name_runnable_benches(module):
    whats = [row.what for row in module.ROWS]
    assert len(set(whats)) == len(whats)
    assert len({(row.ratio, row.command) for row in module.ROWS}) == len(module.ROWS)
    logs = {module.log_name(row.command): row.command for row in module.ROWS}
    assert len(logs) == len({row.command for row in module.ROWS})  # a log per command
    for row in module.ROWS:
        assert row.command.startswith("python bench/"), row
    tree = ast.parse((BENCH / "bench_models.py").read_text())
    defaults = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                    and node.targets[0].id == "DEFAULT_FAMILIES")
    own = next(node.value for node in tree.body if isinstance(node, ast.Assign)
               and node.targets[0].id == "OWN_FAMILIES")
    assert module.MODEL_FAMILIES == (*ast.literal_eval(own),
                                     *(item.value for item in defaults.elts[1:]))
    peers = next(node.value for node in ast.parse((BENCH / "bench_peer.py").read_text()).body
                 if isinstance(node, ast.Assign) and node.targets[0].id == "PEERS")
    assert module.PEER_FAMILIES == tuple(ast.literal_eval(key) for key in peers.keys)


def page_tables() -> dict:
    """{machine kind: its table's rows} of the page's section of tables."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(TABLES, 1)[1].split("\n## ", 1)[0]
    tables = {}
    for part in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
        kind, body = part.split("\n", 1)
        if "| what | figure | goal | date | command |" in body:
            tables[kind.strip()] = table_rows(body[body.index("| what |"):])
    return tables


def test_each_table_of_the_page_has_exactly_the_registry_rows(module):
    tables = page_tables()
    assert len(tables) >= 3, tables.keys()
    for kind, rows in tables.items():
        gpu = "GPU" in kind
        expected = [(*module.row_cells(row), row.goal) for row in module.ROWS if row.gpu == gpu]
        assert [(what, command, goal) for what, _, goal, _, command in rows] == expected, (
            f"{kind}: the rows of bench/measure_docs_figures.py's ROWS, in its order")
        for what, figure, goal, date, _ in rows:
            assert figure and goal, what
            assert (date == "-") == figure.startswith("not measured"), (what, date)
            assert date == "-" or re.fullmatch(r"\d{4}-\d\d-\d\d", date), (what, date)


def test_the_page_is_a_page(module):
    assert len(PAGE.read_text(encoding="utf-8").splitlines()) <= 400
