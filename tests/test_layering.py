"""The package's layering (docs/architecture.md): every import under tagger/
points down the layer order, and no modules import each other in a circle
(nor do bench/'s scripts and helpers).

Reads the source with ast (no module is imported, so no TensorFlow), every
import statement included: top-level ones and those inside functions, and
the modules imported later by name (LAZY_IMPORTS).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tagger"

# Bottom to top; the same order as docs/architecture.md. A unit is a
# subpackage (tagger/<name>/), a top-level module (tagger/<name>.py) or
# `tagger` itself (tagger/__init__.py, the public API). A unit imports only
# units of lower layers; units of one layer do not import each other,
# except in the foundation and the commands (whose modules share tagger/cli.py).
LAYERS = (
    ("foundation", ("errors", "config", "strict_json", "csv_cells", "fileio", "destination",
                    "cache", "timing_cache", "safe_pickle", "folder_lock", "host_memory",
                    "runtime", "backends", "cpu_features", "xla_cpu", "audio", "audio_spans",
                    "mp3_frames", "multiprocessing_internals", "parallel", "fork_server",
                    "registry")),
    ("building blocks", ("layers", "augment")),
    ("models", ("models",)),
    ("records", ("records",)),
    ("data sources and engines", ("datasets", "beam")),
    ("uses of a model", ("evaluation", "inference", "interpret", "convert")),
    ("pretrained", ("pretrained",)),
    ("training", ("training",)),
    ("demos", ("demos",)),
    ("commands", ("commands", "serve", "cli", "tagger")),
)
PEERS_MAY_IMPORT = {"foundation", "commands"}  # layers whose units use one another
# Inside `inference`, the same rule over its parts (tagger/inference/<name>),
# bottom to top: helpers shared by all, export, the tagging engines, the
# subsystems that tag with an engine, and tag.py's run.
INFERENCE_LAYERS = (
    ("shared helpers", ("inputs", "outputs", "common", "window_choice")),
    ("export", ("export",)),
    ("engine", ("engine",)),
    ("tagging subsystems", ("library", "api", "beam_tagging")),
    ("tag run", ("tag",)),
)


def layer_index(layers) -> dict[str, int]:
    return {unit: index for index, (_, units) in enumerate(layers) for unit in units}


LAYER_OF = layer_index(LAYERS)


def module_files() -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every module under tagger/."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def _known(name: str) -> str:
    """The module `name` refers to: itself, or the package holding it."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


# Calls that import a module named by a string, later: `LazyModule("tagger.layers")`
# (models/lazy.py), `importlib.import_module("tagger...")`, and a registry's
# entry named by its module (`SOURCES.register("mtt", "tagger.datasets.mtt")`).
LAZY_IMPORTS = {"LazyModule", "import_module", "register"}


def lazily_imported(call: ast.Call) -> list[str]:
    """The tagger modules that `call` names by a literal, if it is one of
    LAZY_IMPORTS."""
    function = call.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    if name not in LAZY_IMPORTS:
        return []
    return [arg.value for arg in call.args if isinstance(arg, ast.Constant)
            and isinstance(arg.value, str) and arg.value.split(".")[0] == "tagger"]


def imports_of(module: str, path: pathlib.Path) -> list[tuple[str, int]]:
    """(imported tagger module, line) for every import of the file, at any
    depth (module level, functions, classes, branches): the import
    statements, and the modules imported by name later (LAZY_IMPORTS)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            found += [(_known(name), node.lineno) for name in lazily_imported(node)]
        elif isinstance(node, ast.Import):
            found += [(_known(alias.name), node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "tagger"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "tagger":
                continue
            for alias in node.names:  # `from tagger import fileio` names a module
                full = f"{source}.{alias.name}"
                found.append((full if full in MODULES else _known(source), node.lineno))
    return found


def unit_of(module: str) -> str:
    parts = module.split(".")
    if parts[-1] == "__main__":  # `python -m tagger.<package>`: a program entry point
        return "commands"
    return parts[1] if len(parts) > 1 else "tagger"


IMPORTS = {module: imports_of(module, path) for module, path in MODULES.items()}


def test_every_unit_has_a_layer():
    units = {unit_of(module) for module in MODULES}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, (f"{missing} belong to no layer: add them to LAYERS here and to "
                         "docs/architecture.md")


def inference_part(module: str) -> str | None:
    """The part of `inference` (its subpackage or module) holding `module`."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "inference" else None


def layering_violations(imports, layers=LAYERS, unit=unit_of,
                        peers=PEERS_MAY_IMPORT) -> list[str]:
    layer_of, wrong = layer_index(layers), []
    for module, targets in imports.items():
        source = unit(module)
        for target, line in targets:
            imported = unit(target)
            if imported == source or imported not in layer_of or source not in layer_of:
                continue
            low, high = layer_of[imported], layer_of[source]
            if low < high or (low == high and layers[low][0] in peers):
                continue
            wrong.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports "
                         f"{target} ({layers[low][0]} layer) from the {layers[high][0]} "
                         "layer")
    return wrong


def test_imports_point_down_the_layers():
    wrong = layering_violations(IMPORTS)
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def inference_violations(imports) -> list[str]:
    return layering_violations(imports, INFERENCE_LAYERS, inference_part, peers=())


def test_every_part_of_inference_has_a_layer():
    parts = {inference_part(module) for module in MODULES} - {None}
    missing = sorted(parts - set(layer_index(INFERENCE_LAYERS)))
    assert not missing, (f"{missing} belong to no layer of inference: add them to "
                         "INFERENCE_LAYERS here and to docs/architecture.md")


def test_the_parts_of_inference_import_down_their_layers():
    wrong = inference_violations(IMPORTS)
    assert not wrong, "imports against the order inside inference:\n" + "\n".join(wrong)


def import_circles(imports) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph = {m: sorted({t for t, _ in targets if t != m}) for m, targets in imports.items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_modules_import_each_other_in_a_circle():
    """Every import counts, those inside functions too."""
    circles = import_circles(IMPORTS)
    assert not circles, "modules importing each other: " + "; ".join(
        " <-> ".join(circle) for circle in circles)


@pytest.mark.parametrize("importer, imported, message", [
    ("tagger.records.writer", "tagger.datasets.mtt", "imports tagger.datasets.mtt"),
    ("tagger.models.samplecnn", "tagger.cli", "imports tagger.cli"),
    ("tagger.inference.api", "tagger.interpret.plots", "(uses of a model layer) from the "
                                                      "uses of a model layer"),
])
def test_an_upward_import_is_caught(importer, imported, message):
    imports = {**IMPORTS, importer: [*IMPORTS[importer], (imported, 1)]}
    assert any(message in line for line in layering_violations(imports))


def test_the_modules_imported_by_name_are_seen():
    assert ("tagger.layers", 22) in IMPORTS["tagger.models.lazy"]  # LazyModule("tagger.layers")
    assert {"tagger.datasets.mtt", "tagger.datasets.msd.plan", "tagger.datasets.folder"} <= {
        target for target, _ in IMPORTS["tagger.datasets"]}  # SOURCES' entries


@pytest.mark.parametrize("importer, code, message", [
    ("tagger.models.samplecnn", 'layers = LazyModule("tagger.inference.api")',
     "imports tagger.inference.api (uses of a model layer) from the models layer"),
    ("tagger.records.writer", 'importlib.import_module("tagger.datasets.mtt").SOURCE',
     "imports tagger.datasets.mtt (data sources and engines layer) from the records layer"),
    ("tagger.datasets", 'SOURCES.register("tag", "tagger.commands.tag")',
     "imports tagger.commands.tag (commands layer) from the data sources and engines layer"),
])
def test_an_upward_import_by_name_is_caught(importer, code, message, tmp_path):
    (tmp_path / "snippet.py").write_text(code + "\n")
    imports = {**IMPORTS, importer: [*IMPORTS[importer],
                                     *imports_of(importer, tmp_path / "snippet.py")]}
    assert any(message in line for line in layering_violations(imports))


@pytest.mark.parametrize("importer, imported, message", [
    ("tagger.inference.engine.tagging", "tagger.inference.library.results_db",
     "(tagging subsystems layer) from the engine layer"),
    ("tagger.inference.library.similar", "tagger.inference.beam_tagging",
     "(tagging subsystems layer) from the tagging subsystems layer"),
])
def test_an_import_against_the_order_inside_inference_is_caught(importer, imported, message):
    imports = {**IMPORTS, importer: [*IMPORTS[importer], (imported, 1)]}
    assert any(message in line for line in inference_violations(imports))


def test_a_circle_is_caught():
    imports = {**IMPORTS, "tagger.config": [("tagger.fileio", 1)]}  # fileio uses config
    assert ["tagger.config", "tagger.fileio"] in import_circles(imports)


# bench/: scripts and the helpers they share (common.py, flops.py,
# accelerator_jax.py), imported by their plain names from bench/
BENCH = PACKAGE.parent / "bench"


def bench_imports() -> dict[str, list[tuple[str, int]]]:
    """(module of bench/, line) for every import of a module of bench/, at
    any depth, as `imports_of` gives them for tagger/."""
    names = {path.stem for path in BENCH.glob("*.py")}
    found = {}
    for path in sorted(BENCH.glob("*.py")):
        targets = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets += [(alias.name, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets.append((node.module, node.lineno))
        found[path.stem] = [(name, line) for name, line in targets if name in names]
    return found


def test_no_bench_modules_import_each_other_in_a_circle():
    """Every import counts, those inside functions too: the model benches'
    shared bench cases live in common.py, which imports no bench."""
    imports = bench_imports()
    assert {name for name, _ in imports["accelerator_jax"]} == {"common", "flops"}
    circles = import_circles(imports)
    assert not circles, "bench modules importing each other: " + "; ".join(
        " <-> ".join(circle) for circle in circles)


@pytest.mark.parametrize("name, other", [("accelerator_jax", "bench_models"),
                                         ("bench_models", "accelerator_jax")])
def test_a_model_bench_module_imports_alone_without_the_other(name, other, monkeypatch):
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(BENCH))
    for module in (name, other):
        monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.import_module(name)
    assert other not in sys.modules
