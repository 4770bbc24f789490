"""Layers one way: no import cycle between the product's modules or its packages.

The graph is read from the source (every ``import``, at module level or inside a
function, since a deferred import is still a dependency). ``from package import name``
depends on the submodule ``package.name`` when there is one, else on the package.
Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` and ``a``: those count too, but
for the packages the importing module is itself in (they are being imported already).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def module_names(root: Path) -> dict[str, Path]:
    """Every module under ``root`` (a ``src`` directory) by its dotted name."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _imported(module: str, path: Path) -> Iterable[str]:
    """The dotted names ``module`` imports, with the imported names of ``from`` imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}"
            yield base


def import_graph(root: Path, top: str) -> dict[str, set[str]]:
    """Module -> the modules of package ``top`` it imports."""
    modules = {m: p for m, p in module_names(root).items() if m.split(".")[0] == top}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        wanted = set()
        for name in _imported(module, path):
            # ``from a import b``: the submodule a.b if it is one, else the module a.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            # ... and the packages it is in, which importing it runs first.
            while name and name != module and not module.startswith(name + "."):
                wanted.add(name)
                name = name.rpartition(".")[0]
        graph[module] = wanted
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed to the top package's direct subpackages and modules."""

    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    collapsed: dict[str, set[str]] = {}
    for module, wanted in graph.items():
        mine = collapsed.setdefault(unit(module), set())
        mine |= {unit(w) for w in wanted if unit(w) != unit(module)}
    return collapsed


def _cycle_edges(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component]


def test_no_import_cycle_between_the_products_modules() -> None:
    graph = import_graph(SRC, "vehiclehub")
    assert "vehiclehub.pipeline" in graph  # the graph is the product's
    assert [_cycle_edges(graph, c) for c in cycles(graph)] == []


def test_no_import_cycle_between_the_products_packages() -> None:
    graph = package_graph(import_graph(SRC, "vehiclehub"))
    assert {"vehiclehub.intake", "vehiclehub.quality", "vehiclehub.cli"} <= set(graph)
    assert [_cycle_edges(graph, c) for c in cycles(graph)] == []


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "found"),
    [
        pytest.param(
            {"hub/a.py": "from hub.b import x\n", "hub/b.py": "def f():\n    import hub.a\n"},
            [["hub.a", "hub.b"]],
            id="deferred-import",
        ),
        pytest.param(
            {"hub/a.py": "from hub import b\n", "hub/b.py": "from . import a\n"},
            [["hub.a", "hub.b"]],
            id="relative-import",
        ),
        pytest.param(
            {
                "hub/q/__init__.py": "from hub.q.gate import judge\n",
                "hub/q/gate.py": "from hub.q import runtime\n",
                "hub/q/runtime.py": "import os\n",
            },
            [],
            id="a-package-re-exporting-its-submodules-is-no-cycle",
        ),
        pytest.param(
            {
                "hub/report/__init__.py": "from hub.book import write\n",
                "hub/report/model.py": "class Row: ...\n",
                "hub/book.py": "from hub.report.model import Row\n",
            },
            [["hub.book", "hub.report"]],
            id="a-cycle-through-a-package-init",
        ),
    ],
)
def test_a_cycle_between_modules_is_found_and_only_then(
    tmp_path: Path, files: dict[str, str], found: list[list[str]]
) -> None:
    root = _package(tmp_path, {"hub/__init__.py": "", **files})
    assert cycles(import_graph(root, "hub")) == found


def test_a_cycle_between_packages_through_different_modules_is_found(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "hub/__init__.py": "",
            "hub/intake/__init__.py": "",
            "hub/intake/take.py": "from hub.quality.gate import judge\n",
            "hub/intake/manifest.py": "class Manifest: ...\n",
            "hub/quality/__init__.py": "",
            "hub/quality/gate.py": "from hub.intake.manifest import Manifest\n",
        },
    )
    graph = import_graph(root, "hub")
    assert cycles(graph) == []  # no cycle between modules,
    assert cycles(package_graph(graph)) == [["hub.intake", "hub.quality"]]  # but between packages
