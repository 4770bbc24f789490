"""Dependencies declared exactly as imported.

Every third-party module the product (``src/vehiclehub``) imports, at module level or
inside a function, comes from a distribution named in pyproject's ``dependencies``, not
only from something a dependency happens to pull in. A module is mapped to the
distributions that install it by ``importlib.metadata.packages_distributions()``; a
declared distribution that installs no module of its own (``apache-airflow``, a meta
package) declares its unconditional requirements. The other way round, a declared
distribution the product does not import says why it is there in a comment above it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
PYPROJECT = REPO / "pyproject.toml"


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The distribution a requirement line names: ``psycopg[binary]==3.3.9`` -> psycopg."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return canonical(match.group(1))


def imported_modules(package: Path, first_party: Iterable[str]) -> dict[str, set[str]]:
    """Each top-level third-party module imported under ``package`` -> the files importing it."""
    own = set(first_party)
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in own:
                    found.setdefault(top, set()).add(path.relative_to(package.parent).as_posix())
    return found


def declared_distributions(requirements: Iterable[str]) -> set[str]:
    """The declared distributions, with the parts of those that install no module."""
    declared = {requirement_name(r) for r in requirements}
    installing = {canonical(d) for dists in packages_distributions().values() for d in dists}
    for meta in declared - installing:
        try:
            parts = requires(meta) or []
        except PackageNotFoundError:  # not installed here: it cannot provide an import
            continue
        declared |= {requirement_name(r) for r in parts if ";" not in r}
    return declared


def undeclared(
    modules: Mapping[str, set[str]], declared: set[str], providers: Mapping[str, list[str]]
) -> dict[str, list[str]]:
    """Each imported module none of whose distributions is declared -> its distributions."""
    return {
        module: sorted(canonical(d) for d in providers.get(module, []))
        for module in sorted(modules)
        if not declared & {canonical(d) for d in providers.get(module, [])}
    }


def _first_party() -> list[str]:
    return [path.stem for path in SRC.iterdir() if path.suffix == ".py" or path.is_dir()]


def _dependencies() -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    return list(project["dependencies"])


def test_every_third_party_module_the_product_imports_is_declared() -> None:
    modules = imported_modules(SRC / "vehiclehub", _first_party())
    assert {"pandas", "airflow", "paramiko"} <= set(modules)  # the walk sees the product
    assert (
        undeclared(modules, declared_distributions(_dependencies()), packages_distributions()) == {}
    )


def test_a_declared_dependency_the_product_does_not_import_says_why() -> None:
    modules = imported_modules(SRC / "vehiclehub", _first_party())
    providers = packages_distributions()
    imported = {canonical(d) for module in modules for d in providers.get(module, [])}
    lines = PYPROJECT.read_text(encoding="utf-8").splitlines()
    start = lines.index("dependencies = [")
    block = lines[start + 1 : lines.index("]", start)]
    unexplained = [
        line.strip()
        for previous, line in zip(["", *block], block, strict=False)
        if line.strip().startswith('"')
        and not previous.strip().startswith("#")
        and not declared_distributions([line.strip().strip('",')]) & imported
    ]
    assert unexplained == []


def test_an_import_of_an_undeclared_distribution_is_found(tmp_path: Path) -> None:
    package = tmp_path / "hub"
    package.mkdir()
    (package / "a.py").write_text(
        "import json\nimport pandas as pd\nfrom hub import b\n"
        "def f():\n    from numpy import array\n    from .b import g\n"
    )
    modules = imported_modules(package, ["hub"])
    assert modules == {"pandas": {"hub/a.py"}, "numpy": {"hub/a.py"}}
    providers = {"pandas": ["pandas"], "numpy": ["numpy"]}
    assert undeclared(modules, {"pandas"}, providers) == {"numpy": ["numpy"]}
