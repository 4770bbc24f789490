"""No input can stop the hub (issue 11): every hostile file ends as one rejection of that
file, recorded so that it is never taken again, while the other files go on loading."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.factories import Vehicle, columns, send

from vehiclehub.config import Settings
from vehiclehub.pipeline import intake_agency
from vehiclehub.store import connect
from vehiclehub.store.schema import intake_files, rejections
from vehiclehub_samples.files import render_rows, write_manifest

DAY = date(2025, 11, 3)
HOSTILE = "customs_declarations_20251103_001.csv"


def _outbox(settings: Settings) -> Path:
    return settings.work_dir.parent / "exchange" / "customs" / "outbox"


def _manifest_of(path: Path) -> Path:
    return path.with_name(path.name.replace(".csv", ".manifest.json"))


def _body(*rows: dict) -> bytes:
    return render_rows(columns("customs", "declarations"), rows)


def _send_bytes(settings: Settings, body: bytes, *, seq: int = 1, **manifest: object) -> Path:
    """A data file of exactly ``body`` with a manifest that matches it."""
    return send(
        settings.work_dir.parent, "customs", "declarations", [], seq=seq, data=body,
        manifest=manifest or None,
    )  # fmt: skip


def _nested_manifest(settings: Settings) -> None:
    path = _send_bytes(settings, _body(Vehicle().item()))
    _manifest_of(path).write_bytes(b"[" * 30_000 + b"]" * 30_000)


def _huge_manifest(settings: Settings) -> None:
    _send_bytes(settings, _body(Vehicle().item()), padding="x" * (70 << 10))


def _duplicate_member_manifest(settings: Settings) -> None:
    path = _send_bytes(settings, _body(Vehicle().item()))
    text = _manifest_of(path).read_text()
    _manifest_of(path).write_text(text[:-1] + ', "rows": 7}')


def _huge_first_field(settings: Settings) -> None:
    _send_bytes(settings, _body(Vehicle().item(goods_name="旧" * (17 << 20)), Vehicle().item()))


def _no_newline(settings: Settings) -> None:
    _send_bytes(settings, b"x" * (50 << 20), rows=0)


def _line_break_in_quotes(settings: Settings) -> None:
    _send_bytes(settings, _body(Vehicle().item(goods_name="旧丰田\n轿车"), Vehicle().item()))


def _symlinked_data_file(settings: Settings) -> None:
    elsewhere = settings.work_dir.parent / "elsewhere.csv"
    elsewhere.write_bytes(_body(Vehicle().item()))
    os.symlink(elsewhere, _outbox(settings) / HOSTILE)
    body = elsewhere.read_bytes()
    write_manifest(
        _outbox(settings), HOSTILE, "customs", "declarations", DAY, 1,
        rows=1, sha256=hashlib.sha256(body).hexdigest(),
    )  # fmt: skip


def _symlinked_manifest(settings: Settings) -> None:
    path = _send_bytes(settings, _body(Vehicle().item()))
    manifest = _manifest_of(path)
    moved = settings.work_dir.parent / "manifest.json"
    manifest.rename(moved)
    os.symlink(moved, manifest)


def _pipe_as_data_file(settings: Settings) -> None:
    path = _send_bytes(settings, _body(Vehicle().item()))
    path.unlink()
    os.mkfifo(path)


HOSTILE_FILES: dict[str, tuple[Callable[[Settings], None], str]] = {
    "manifest nested 30,000 deep": (_nested_manifest, "nests deeper than"),
    "manifest over 64 KiB": (_huge_manifest, "larger than 64 KiB"),
    "manifest naming a member twice": (_duplicate_member_manifest, "names the member 'rows' twice"),
    "a 50 MB field in the first row": (_huge_first_field, "line 2 is longer than 64 KiB"),
    "50 MB without a line break": (_no_newline, "line 1 is longer than 64 KiB"),
    "a line break inside a quoted field": (_line_break_in_quotes, "line 2 has an unbalanced quote"),
    "a symbolic link to a file outside": (_symlinked_data_file, "is a symbolic link"),
    "a symbolic link as manifest": (_symlinked_manifest, "is a symbolic link"),
    "a named pipe as data file": (_pipe_as_data_file, "not a regular file"),
}


def _recorded(settings: Settings) -> dict[str, tuple[str, list[str]]]:
    """Each file taken: its status and its rejections' errors."""
    with connect(settings.database_url).connect() as conn:
        files = conn.execute(select(intake_files.c.id, intake_files.c.name, intake_files.c.status))
        errors = conn.execute(select(rejections.c.file_id, rejections.c.error)).all()
        return {
            name: (status, [e for f, e in errors if f == file_id])
            for file_id, name, status in files
        }


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_a_hostile_file_is_rejected_once_and_the_next_file_loads(
    settings: Settings, case: str
) -> None:
    make, reason = HOSTILE_FILES[case]
    make(settings)
    good = send(settings.work_dir.parent, "customs", "declarations", [Vehicle().item()], seq=2)

    first = intake_agency(settings, "customs", DAY).to_dict()

    assert [(f["name"], f["status"]) for f in first["files"]] == [
        (HOSTILE, "rejected"),
        (good.name, "loaded"),
    ]
    status, errors = _recorded(settings)[HOSTILE]
    assert status == "rejected" and len(errors) == 1 and reason in errors[0], errors
    assert intake_agency(settings, "customs", DAY).to_dict()["files"] == []  # never taken again


def test_a_file_name_with_a_full_width_digit_is_reported_not_taken(settings: Settings) -> None:
    real = send(settings.work_dir.parent, "police", "events", [Vehicle().event("E1", "register",
                "2025-11-01")])  # fmt: skip
    lookalike = real.with_name("police_events_2025110４_001.csv")
    lookalike.write_bytes(real.read_bytes())
    _manifest_of(lookalike).write_bytes(_manifest_of(real).read_bytes())

    taken = intake_agency(settings, "police", DAY).to_dict()["files"]

    assert [(f["name"], f["status"]) for f in taken] == [
        (real.name, "loaded"),
        (lookalike.name, "rejected"),
    ]
    assert "does not follow" in _recorded(settings)[lookalike.name][1][0]


def test_a_file_name_that_is_not_text_is_shown_escaped(settings: Settings) -> None:
    outbox = os.fsencode(_outbox(settings))
    name = b"customs_declarations_20251103_\xff\n1.csv"
    with open(os.path.join(outbox, name), "wb") as data:
        data.write(_body(Vehicle().item()))
    with open(os.path.join(outbox, name[:-4] + b".manifest.json"), "wb") as manifest:
        manifest.write(json.dumps({"file": "x"}).encode())

    (taken,) = intake_agency(settings, "customs", DAY).to_dict()["files"]

    assert taken["status"] == "rejected"
    assert taken["name"] == "customs_declarations_20251103_\\udcff\\u000a1.csv"
