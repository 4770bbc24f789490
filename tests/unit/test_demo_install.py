"""``vhub demo`` without the sample world: it says how to install it and exits 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vehiclehub import demo
from vehiclehub.cli import main


def test_demo_without_the_sample_world_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "vehiclehub_samples", None)  # as if not installed
    assert main(["demo", "--dir", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err
    assert "sample world" in err and "make demo" in err and "pip install -e" in err
    assert not (tmp_path / "demo").exists()  # nothing made, nothing removed


def test_demo_does_not_hide_another_missing_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(days: int) -> None:
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow")

    monkeypatch.setattr(demo, "_demo_world", broken)
    with pytest.raises(ModuleNotFoundError, match="pyarrow"):
        demo.run_demo(tmp_path / "demo", days=1)
