"""``vhub demo`` without the sample world: it says how to install it and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vehiclehub import demo


@pytest.mark.parametrize("missing", ["vehiclehub_samples", "stdnum"])
def test_demo_without_the_sample_world_says_how_to_install_it(missing: str, tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    code = (
        f"import sys\nsys.modules[{missing!r}] = None  # as if not installed\n"
        f"from vehiclehub.cli import main\nsys.exit(main(['demo', '--dir', {str(directory)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "sample world" in done.stderr and "make demo" in done.stderr
    assert "pip install -e '.[demo]'" in done.stderr
    assert not directory.exists()  # nothing made, nothing removed


def test_demo_does_not_hide_another_missing_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(days: int) -> None:
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")

    monkeypatch.setattr(demo, "_demo_world", broken)
    with pytest.raises(ModuleNotFoundError, match="pyarrow"):
        demo.run_demo(tmp_path / "demo", days=1)
