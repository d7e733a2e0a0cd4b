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
    (["--column", "AMD EPYC, AVX2"], "--column writes a --table or --from-logs run's figures"),
    (["--from-logs", ".", "--gpu", "--column", "H200"], "--column writes the CPU table's column"),
    (["--from-logs", ".", "--page", "x.md"], "--page is the page --column writes"),
    (["--from-logs", ".", "--page", str(PAGE)], "--page is the page --column writes"),
    (["--from-logs", ".", "--column", "AMD EPYC, AVX2", "--page", "nowhere.md"],
     "--page expects the performance page"),
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
    """{machine kind: its rows, each (what, figure, goal, date, command)} of
    the page's section of tables: a column of the CPU table (`| what | goal
    |`, cells `FIGURE, DATE`) per CPU kind, and a table per GPU kind."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(TABLES, 1)[1].split("\n## ", 1)[0]
    tables = {}
    head = next(line for line in section.splitlines() if line.startswith("| what | goal |"))
    table = section[section.index(head):].split("\n\n", 1)[0]
    kinds = table_rows(f"{head}\n|\n{head}")[0][2:-1]
    for row in table_rows(table):
        for kind, cell in zip(kinds, row[2:-1]):
            figure, _, date = cell.rpartition(", ") if cell != "not measured" else (cell, "", "-")
            tables.setdefault(kind, []).append((row[0], figure, row[1], date, row[-1]))
    for part in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
        kind, body = part.split("\n", 1)
        if "| what | figure | goal | date | command |" in body:
            tables[kind.strip()] = table_rows(body[body.index("| what |"):])
    return tables


def test_each_table_of_the_page_has_exactly_the_registry_rows(module):
    tables = page_tables()
    assert len(tables) >= 4 and sum("GPU" in kind for kind in tables) == 1, tables.keys()
    for kind, rows in tables.items():
        gpu = "GPU" in kind
        expected = [(*module.row_cells(row), row.goal) for row in module.ROWS if row.gpu == gpu]
        assert [(what, command, goal) for what, _, goal, _, command in rows] == expected, (
            f"{kind}: the rows of bench/measure_docs_figures.py's ROWS, in its order")
        for what, figure, goal, date, _ in rows:
            assert figure and goal, what
            assert (date == "-") == figure.startswith("not measured"), (what, date)
            assert date == "-" or re.fullmatch(r"\d{4}-\d\d-\d\d", date), (what, date)


def test_column_writes_one_machine_kind_of_the_page_and_nothing_else(module, tmp_path, capsys):
    page = tmp_path / "performance.md"
    page.write_text(PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    kinds = list(page_tables())
    write_log(tmp_path, module, "python bench/bench_build.py", "CPU: Intel Xeon, 2 cores; "
              "SIMD: amx_bf16\nratio builder_floor 0.931\n", "2026-12-01")
    write_log(tmp_path, module, module.MODELS, "CPU: Intel Xeon, 2 cores; SIMD: amx_bf16\n"
              "disturbed mfu_train_musicnn 0.7 (the peak moved)\n", "2026-12-02")
    before = page.read_text(encoding="utf-8")
    assert module.main(["--from-logs", str(tmp_path), "--column", kinds[1],
                        "--page", str(page)]) == 0
    assert capsys.readouterr().out == ("Measured 2026-12-01 to 2026-12-02 (UTC) on `CPU: Intel "
                                       "Xeon, 2 cores; SIMD: amx_bf16`, with `python "
                                       "bench/measure_docs_figures.py --table`.\n")
    after = page.read_text(encoding="utf-8")
    assert outside_the_table(after) == outside_the_table(before)
    cpu = [row for row in module.ROWS if not row.gpu]
    index = whole_rows(before)[0].index(kinds[1])
    old_rows, new_rows = whole_rows(before)[1:], whole_rows(after)[1:]
    assert [row[:index] + row[index + 1:] for row in new_rows] == [
        row[:index] + row[index + 1:] for row in old_rows]  # the other columns as they were
    written = {row.ratio + row.command: new[index] for row, new in zip(cpu, new_rows)}
    assert written["builder_floorpython bench/bench_build.py"] == "0.931, 2026-12-01"
    assert written["builder_2wpython bench/bench_build.py"] == "not measured"  # not in its log
    assert written["mfu_train_musicnn" + module.MODELS] == (
        "0.7 (disturbed: the peak moved), 2026-12-02")
    ran = ("python bench/bench_build.py", module.MODELS)
    assert [cell for row, cell in zip(cpu, written.values()) if row.command in ran].count(
        "not measured") == sum(row.command in ran for row in cpu) - 2
    # the rows of commands that left no log keep their cells
    assert [new[index] for row, new in zip(cpu, new_rows) if row.command not in ran] == [
        old[index] for row, old in zip(cpu, old_rows) if row.command not in ran]
    with pytest.raises(SystemExit) as exit:  # refused before a --table run measures anything
        module.main(["--table", "--column", "Apple M9", "--page", str(page)])
    assert exit.value.code == 2
    assert "--column 'Apple M9' is not a column of" in capsys.readouterr().err
    assert page.read_text(encoding="utf-8") == after
    with pytest.raises(ValueError, match="is not the row of 'builder_2w'"):
        lines = after.split("\n")
        head = module.table_head(lines)[0]
        lines[head + 3] = lines[head + 4]  # a row left out
        module.with_column("\n".join(lines), kinds[1], cpu, ["x"] * len(cpu))


def outside_the_table(text: str) -> tuple:
    """A page's `text` before and after its CPU table."""
    head = next(line for line in text.splitlines() if line.startswith("| what | goal |"))
    before, rest = text.split(head, 1)
    return before, rest.split("\n\n", 1)[1]


def whole_rows(text: str) -> list:
    """The header's cells, then each row's, of the CPU table in a page's `text`."""
    head = next(line for line in text.splitlines() if line.startswith("| what | goal |"))
    table = text[text.index(head):].split("\n\n", 1)[0]
    rows = [table_rows(f"{head}\n|\n{head}")[0], *table_rows(table)]
    assert all(len(row) == len(rows[0]) for row in rows), "a row of another number of cells"
    return rows


def test_the_page_is_a_page(module):
    assert len(PAGE.read_text(encoding="utf-8").splitlines()) <= 400
