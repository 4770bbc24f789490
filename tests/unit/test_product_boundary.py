"""The product's boundary: ``src/vehiclehub`` never imports from ``tests/`` nor names a
path in it, and takes the sample world (``vehiclehub_samples``, which the dev and demo
extras install) only inside a function or for type checking, so the hub installs and runs
without it."""

from __future__ import annotations

import ast
from pathlib import Path

PRODUCT = Path(__file__).resolve().parents[2] / "src" / "vehiclehub"


def _faults(source: str) -> list[str]:
    """What in ``source`` crosses the boundary, one line each."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def deferred(node: ast.AST) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return True
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                return True
        return False

    faults = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value == "tests" or node.value.startswith("tests/"):
                faults.append(f"line {node.lineno}: names {node.value!r}")
            continue
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top == "tests":
                faults.append(f"line {node.lineno}: imports {name}")
            elif top == "vehiclehub_samples" and not deferred(node):
                faults.append(f"line {node.lineno}: imports {name} when loaded")
    return faults


def test_the_product_keeps_out_of_tests_and_loads_the_sample_world_lazily() -> None:
    found = {
        str(path.relative_to(PRODUCT)): faults
        for path in sorted(PRODUCT.rglob("*.py"))
        if (faults := _faults(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_what_crosses_the_boundary_is_found() -> None:
    assert _faults("from tests.integration.sshd import running_sshd\n") == [
        "line 1: imports tests.integration.sshd"
    ]
    assert _faults("import vehiclehub_samples\n") == [
        "line 1: imports vehiclehub_samples when loaded"
    ]
    assert _faults('FIXTURE = ROOT / "tests" / "sshd.py"\n') == ["line 1: names 'tests'"]


def test_a_lazy_or_type_checking_import_of_the_sample_world_is_allowed() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from vehiclehub_samples import World\n"
        "def world() -> None:\n    from vehiclehub_samples import generate_world\n"
    )
    assert _faults(source) == []
