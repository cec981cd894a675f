"""The layering of docs/architecture.md, enforced on the imports of every module: each module
imports only from its own unit (a top-level module or package of leanconv) or from a lower
layer, and no two modules import each other, directly or through others. Every import counts:
at module level, inside functions, and under ``if TYPE_CHECKING``. The drawing in the same
document is the unit graph computed here (transitively reduced), so it cannot go stale."""

import ast
import re
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "leanconv"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
FACADE = "leanconv"  # the package's own __init__: the public API, loaded on first use


def module_files() -> dict[str, Path]:
    """Every module of leanconv by dotted name (a package by its __init__)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The leanconv modules that module ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from leanconv import inherit` imports the module leanconv.inherit
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                found.add(target)
    return found


def unit(module: str) -> str:
    """The unit a module belongs to: ``leanconv.search.pipeline`` -> ``search``."""
    parts = module.split(".")
    return FACADE if len(parts) == 1 else parts[1]


def documented_layers() -> dict[str, int]:
    """Unit -> layer, from the table of docs/architecture.md (rows ``| N | `a`, `b` | ...``)."""
    layers = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        row = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if row:
            for name in re.findall(r"`([^`]+)`", row.group(2)):
                assert name not in layers, f"{name} is in two layers of the table"
                layers[name] = int(row.group(1))
    return layers


def module_graph() -> nx.DiGraph:
    modules = module_files()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        graph.add_edges_from((name, target) for target in imports(name, path, modules))
    return graph


def unit_graph(graph: nx.DiGraph) -> nx.DiGraph:
    units = nx.DiGraph()
    units.add_nodes_from(unit(m) for m in graph)
    units.add_edges_from((unit(a), unit(b)) for a, b in graph.edges if unit(a) != unit(b))
    return units


def mermaid(units: nx.DiGraph, layers: dict[str, int]) -> str:
    """The unit graph, transitively reduced (an edge that a path already implies is left
    out), as a Mermaid flowchart, higher layers first."""
    def node(name: str) -> str:
        return name.strip("_") + ("[leanconv: the public API]" if name == FACADE else "")

    reduced = nx.transitive_reduction(units)
    edges = sorted(reduced.edges, key=lambda e: (-layers[e[0]], e[0], -layers[e[1]], e[1]))
    return "\n".join(["flowchart TD", *(f"    {node(a)} --> {node(b)}" for a, b in edges)])


def test_the_reader_sees_the_imports_this_test_sees():
    graph = module_graph()
    assert "leanconv.search.pipeline" in graph
    assert graph.has_edge("leanconv.search.pipeline", "leanconv.train")
    assert graph.has_edge("leanconv.converter", "leanconv.inherit")  # from leanconv import ..
    assert graph.has_edge("leanconv.cli.shrink", "leanconv.search.pipeline")  # in a function


def test_every_unit_has_a_layer():
    layers, units = documented_layers(), set(map(unit, module_graph()))
    assert units - set(layers) == set(), "units missing from docs/architecture.md's table"
    assert set(layers) - units == set(), "the table names units that do not exist"


def test_no_module_imports_a_higher_layer_or_its_own_layer():
    layers, graph = documented_layers(), module_graph()
    wrong = [f"{a} (layer {layers[unit(a)]}) imports {b} (layer {layers[unit(b)]})"
             for a, b in graph.edges
             if unit(a) != unit(b) and layers[unit(a)] <= layers[unit(b)]]
    assert wrong == []


def test_no_import_cycle_between_modules():
    assert list(nx.simple_cycles(module_graph())) == []


@pytest.mark.parametrize("low", ["cost", "ops", "loading"])
def test_the_lower_layers_import_nothing_from_the_applications(low):
    units = unit_graph(module_graph())
    reachable = nx.descendants(units, low)
    assert reachable.isdisjoint({"train", "search", "bench", "cli", "converter", FACADE})


def test_the_drawing_is_the_import_graph():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    drawn = text.split("```mermaid\n", 1)[1].split("```", 1)[0].strip()
    expected = mermaid(unit_graph(module_graph()), documented_layers())
    assert drawn == expected, f"redraw docs/architecture.md's graph as:\n{expected}"
