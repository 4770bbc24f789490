"""The ``vhub`` command line: fast to answer, ``-v`` anywhere, quiet libraries, progress
only for a person at a terminal."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from vehiclehub import progress
from vehiclehub.cli import LIBRARY_LOGGERS, build_parser, configure_logging, main

HEAVY = ("pandas", "pandera", "sqlalchemy", "great_expectations", "airflow", "pyarrow")


def _modules_after(code: str) -> set[str]:
    """The heavy modules a fresh interpreter has imported after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_and_argument_errors_import_no_heavy_module() -> None:
    help_code = (
        "import contextlib, io\nfrom vehiclehub.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )
    assert _modules_after(help_code) == set()
    # A missing configuration is reported without loading the store either.
    config_code = (
        "import contextlib, io\nfrom vehiclehub.cli import main\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['run', '--config', '/nonexistent/hub.toml', '--date', '2025-11-03']) == 2"
    )
    assert _modules_after(config_code) == set()


def test_the_probe_sees_a_heavy_import() -> None:
    """Near miss of the above: importing the pipeline does load them."""
    assert {"pandas", "sqlalchemy"} <= _modules_after("import vehiclehub.pipeline")


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [
        (["run", "--date", "2025-11-03"], 0),
        (["-v", "run", "--date", "2025-11-03"], 1),
        (["run", "-v", "--date", "2025-11-03"], 1),
        (["run", "--date", "2025-11-03", "-vv"], 2),
        (["-v", "demo", "-v"], 2),
    ],
)
def test_verbose_before_or_after_the_subcommand(argv: list[str], verbosity: int) -> None:
    args = build_parser().parse_args(argv)
    assert args.verbose + args.verbose_after == verbosity


def test_missing_configuration_exits_2_saying_what_to_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    code = main(["run", "--config", "/nonexistent/hub.toml", "--date", "2025-11-03"])
    assert code == 2
    assert (
        "vhub: configuration file /nonexistent/hub.toml does not exist" in capsys.readouterr().err
    )


def test_libraries_stay_at_warning_unless_vv() -> None:
    try:
        configure_logging(1)
        assert logging.getLogger("vehiclehub.pipeline").isEnabledFor(logging.INFO)
        for name in LIBRARY_LOGGERS:
            assert not logging.getLogger(f"{name}.core").isEnabledFor(logging.INFO), name
        configure_logging(2)
        assert logging.getLogger("great_expectations.core").isEnabledFor(logging.INFO)
        assert logging.getLogger("vehiclehub.pipeline").isEnabledFor(logging.DEBUG)
        configure_logging(0)
        assert not logging.getLogger("vehiclehub.pipeline").isEnabledFor(logging.INFO)
    finally:
        for name in ("vehiclehub", *LIBRARY_LOGGERS):
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger().setLevel(logging.WARNING)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    screen = _Terminal()
    with progress.shown_on(screen), progress.step("rules evaluated", total=3) as advance:
        for _ in range(3):
            advance(1)
    assert "rules evaluated" in screen.getvalue()
    assert "3/3" in screen.getvalue()


def test_progress_silent_off_a_terminal_and_under_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = io.StringIO()
    with progress.shown_on(plain), progress.step("rules evaluated", total=3) as advance:
        advance(3)
    assert plain.getvalue() == ""
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "vehiclehub_nightly")
    task_log = _Terminal()
    with progress.shown_on(task_log), progress.step("rules evaluated", total=3) as advance:
        advance(3)
    assert task_log.getvalue() == ""


@pytest.mark.parametrize(
    "command", ["run --date 2025-11-03", "reconcile --date 2025-11-03", "health"]
)
def test_every_command_reads_its_configuration(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command.split(), "--config", "/nonexistent/hub.toml"]) == 2
    assert "/nonexistent/hub.toml does not exist" in capsys.readouterr().err


def test_reconcile_again_in_full_then_incrementally(
    hub_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in (["--full"], []):
        argv = ["reconcile", "--config", str(hub_config), "--date", "2025-11-03", *extra]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("business date 2025-11-03\n")
        assert "  findings: 0\n" in out
        assert "  export_verification: none" in out
