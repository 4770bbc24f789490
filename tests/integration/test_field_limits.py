"""What a field may hold (ICD §1), enforced alike on SQLite and PostgreSQL: a value the
validator accepts loads on both, one it refuses is a rejected row shown as §1 says."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import write_config
from tests.factories import Vehicle, send

from vehiclehub.config import Settings, load_settings
from vehiclehub.pipeline import intake_agency
from vehiclehub.store import connect
from vehiclehub.store.schema import feed_table, intake_files, rejections

DAY = date(2025, 11, 3)
LONG_BRAND = "丰" * 201


@pytest.fixture
def store_settings(store_url: str, tmp_path: Path) -> Settings:
    return load_settings(write_config(tmp_path, store_url))


# event_id -> (the row's overrides, the rejected column and the error's start, or None
# when the row loads — with the value stored for the column overridden, when it is given)
CASES: dict[str, tuple[dict, tuple[str, str] | None]] = {
    "E01": ({"brand": "丰" * 200}, None),
    "E02": ({"brand": LONG_BRAND}, ("brand", "longer than 200 characters (201 characters)")),
    "E03": ({"brand": "\\N"}, None),
    "E04": ({"brand": "丰田\x00"}, ("brand", "holds a control character")),
    "E05": ({"model": "a\u2028b"}, ("model", "holds a control character")),
    "E06": ({"model": "a\x85b"}, ("model", "holds a control character")),
    "E07": ({"event_date": "２０２５-10-01"}, ("event_date", "not a date")),
    "E08": ({"event_date": "1899-12-31"}, ("event_date", "not a date")),
    "E09": ({"event_date": "1900-01-01", "registration_date": "2099-12-31"}, None),
    "E10": ({"registration_date": "2100-01-01"}, ("registration_date", "not a date")),
    "E11": ({"vin": "L-" * 32 + "X"}, ("vin", "longer than 64 characters")),
    "E12": ({"plate_no": "晋A" + "1" * 198}, None),
    "E13": ({"plate_no": None}, None),
}
# Keys and references: 1 to 64 characters, no white space, none of ; : / \
KEYS = {
    "\tE20": None,  # a leading TAB is trimmed
    "事件【21】": None,
    "E" * 64: None,
    "E" * 65: "not a key or reference",
    "L1;police:X": "not a key or reference",
    "E/23": "not a key or reference",
    "E\\24": "not a key or reference",
    "E 25": "not a key or reference",
    "E\u300026": "not a key or reference",
}


def _stored(settings: Settings, table: str, *columns: str) -> dict[str, tuple]:
    spec = feed_table(*table.split("_", 1))
    with connect(settings.database_url).connect() as conn:
        rows = conn.execute(select(spec.c.event_id, *(spec.c[c] for c in columns)))
        return {r[0]: tuple(r[1:]) for r in rows}


def _rejected(settings: Settings) -> list[dict]:
    with connect(settings.database_url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(rejections))]


def test_field_limits_are_enforced_alike_on_both_stores(store_settings: Settings) -> None:
    settings = store_settings
    v = Vehicle()
    rows = [{**v.event(eid, "transfer", "2025-10-01"), **over} for eid, (over, _) in CASES.items()]
    rows += [v.event(eid, "transfer", "2025-10-01") for eid in KEYS]
    send(settings.work_dir.parent, "police", "events", rows)

    (taken,) = intake_agency(settings, "police", DAY).to_dict()["files"]

    expected = {
        line: outcome
        for line, (_, outcome) in enumerate(CASES.values(), start=2)
        if outcome is not None
    } | {
        line: ("event_id", error)
        for line, error in enumerate(KEYS.values(), start=2 + len(CASES))
        if error is not None
    }
    found = {r["line"]: (r["column"], r["error"]) for r in _rejected(settings)}
    assert found.keys() == expected.keys()
    for line, (column, error) in expected.items():
        assert found[line][0] == column and found[line][1].startswith(error), found[line]
    assert taken["loaded"] == len(rows) - len(expected)
    stored = _stored(settings, "police_events", "brand", "plate_no")
    assert stored["E03"] == ("\\N", "津A12345")  # the text \N, not null
    assert stored["E13"][1] is None
    assert "E20" in stored and "事件【21】" in stored


def test_a_rejected_value_shows_its_first_64_characters(store_settings: Settings) -> None:
    settings = store_settings
    v = Vehicle()
    send(
        settings.work_dir.parent,
        "police",
        "events",
        [
            v.event("E1", "transfer", "2025-10-01", brand=LONG_BRAND),
            v.event("E2", "transfer", "2025-10-01", brand="丰\x1f田\x00"),
        ],
    )
    intake_agency(settings, "police", DAY)
    long, control = sorted(_rejected(settings), key=lambda r: r["line"])
    assert long["value"] == "丰" * 64 + "…"
    assert long["error"].endswith("(201 characters)")
    assert control["value"] == "丰\\u001f田\\u0000"
    assert not control["error"].endswith("characters)")


def test_rows_loaded_count_on_a_table_that_holds_records(store_settings: Settings) -> None:
    settings = store_settings
    v = Vehicle()
    root = settings.work_dir.parent
    send(root, "police", "events", [v.event("E1", "transfer", "2025-10-01")])
    send(
        root,
        "police",
        "events",
        [
            v.event("E1", "transfer", "2025-10-01"),  # the same again: ignored
            v.event("E2", "transfer", "2025-10-02"),
            v.event("E3", "transfer", "2025-10-03"),
        ],
        seq=2,
    )
    intake_agency(settings, "police", DAY)
    with connect(settings.database_url).connect() as conn:
        counts = conn.execute(
            select(intake_files.c.rows_loaded, intake_files.c.rows_ignored).order_by(
                intake_files.c.seq
            )
        ).all()
    assert [tuple(c) for c in counts] == [(1, 0), (2, 1)]
