"""The README's install on the system's own Python: Debian's ``/usr/bin/python3`` is
"externally managed" (PEP 668), so ``make`` must build ``.venv`` with the standard
library's ``venv`` and put every tool inside it.

The copy is installed from the same uv cache as the checkout's own ``.venv``, so only
linking the packages takes time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system Python at /usr/bin/python3"),
    pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to list the files"),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed"),
]


def _fresh_copy(target: Path) -> Path:
    """The repository's files as a clone would have them (with uncommitted changes)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _system_only_env() -> dict[str, str]:
    """Only the system's directories on the PATH: no pyenv, no checkout's .venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYENV", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/bin:/bin"
    env.pop("PYTHONPATH", None)
    return env


def test_system_python_builds_the_venv_and_runs_help_and_a_demo_day(tmp_path: Path) -> None:
    clone = _fresh_copy(tmp_path / "clone")
    env = _system_only_env()
    made = subprocess.run(
        ["make", "install", "PYTHON=/usr/bin/python3"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert "externally-managed-environment" not in made.stderr
    venv_python = clone / ".venv" / "bin" / "python"
    base = subprocess.run(
        [str(venv_python), "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert base == "/usr"
    vhub = clone / ".venv" / "bin" / "vhub"
    helped = subprocess.run(
        [str(vhub), "--help"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert helped.returncode == 0 and "usage: vhub" in helped.stdout, helped.stderr
    day = subprocess.run(
        [str(vhub), "demo", "--dir", str(clone / "demo"), "--days", "1"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert day.returncode == 0, day.stdout[-2000:] + day.stderr[-4000:]
    assert "business date 2025-11-03" in day.stdout
    assert (clone / "demo" / "work" / "reports" / "2025-11-03" / "index.html").exists()
