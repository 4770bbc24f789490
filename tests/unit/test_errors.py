"""One exception root and one table of exit codes, shared by vhub, vhub health and the DAG."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest

from vehiclehub import cli
from vehiclehub.airflow.retry import is_transient
from vehiclehub.config import ConfigError
from vehiclehub.errors import CannotStart, ExitCode, HubError, exit_code_of
from vehiclehub.pipeline import RunFailed
from vehiclehub.preflight import PreflightFailed
from vehiclehub.store.db import StoreUnavailable
from vehiclehub.store.lease import StoreBusy

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_lists_the_table_as_declared() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", section, re.MULTILINE)
    assert [(int(code), name) for code, name in rows] == [(c.value, c.name) for c in ExitCode]


def test_the_codes_the_issue_names() -> None:
    assert (ExitCode.COMPLETED, ExitCode.FAILED, ExitCode.CANNOT_START) == (0, 1, 2)
    assert ExitCode.STORE_BUSY == 75


def _exceptions_declared(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.name, [ast.unparse(base) for base in node.bases])
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(b).endswith(("Exception", "Error")) for b in node.bases)
    ]


def test_every_error_of_the_product_derives_from_the_hub_error() -> None:
    import importlib

    outside = []
    for path in sorted((ROOT / "src" / "vehiclehub").rglob("*.py")):
        module_name = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        module_name = module_name.removesuffix(".__init__")
        for name, _ in _exceptions_declared(path):
            if name == "HubError":
                continue
            module = importlib.import_module(module_name)
            if not issubclass(getattr(module, name), HubError):
                outside.append(f"{module_name}.{name}")
    assert outside == []


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad"), ExitCode.CANNOT_START),
        (PreflightFailed(date(2025, 11, 3), ["bad"]), ExitCode.CANNOT_START),
        (StoreUnavailable("gone"), ExitCode.CANNOT_START),
        (StoreBusy("held"), ExitCode.STORE_BUSY),
        (RunFailed(date(2025, 11, 3), "publish", OSError("disk full")), ExitCode.FAILED),
        (ValueError("a defect"), None),
    ],
)
def test_each_error_carries_its_exit_code(error: Exception, code: ExitCode | None) -> None:
    assert exit_code_of(error) == code


def test_vhub_prints_a_hub_error_and_exits_with_its_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def busy(_: object) -> int:
        raise StoreBusy("another run holds the store")

    monkeypatch.setattr(cli, "_health", busy)
    assert cli.main(["health", "--config", "hub.toml"]) == ExitCode.STORE_BUSY
    assert capsys.readouterr().err == "vhub: another run holds the store\n"


def test_vhub_lets_a_defect_show_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "_health", broken)
    with pytest.raises(KeyError):
        cli.main(["health", "--config", "hub.toml"])


def test_the_dag_retries_a_busy_store_and_not_what_cannot_start() -> None:
    assert is_transient(StoreBusy("held"))
    assert not is_transient(ConfigError("bad"))
    assert not is_transient(PreflightFailed(date(2025, 11, 3), ["bad"]))
    assert not is_transient(RunFailed(date(2025, 11, 3), "publish", OSError("disk full")))
    assert is_transient(StoreUnavailable("refused", transient=True))
    assert issubclass(StoreUnavailable, CannotStart)
