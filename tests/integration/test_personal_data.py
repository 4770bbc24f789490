"""Personal data only where it belongs (ICD §5): a resident ID where none may stand
rejects its row and is shown masked; nowhere is one stored or written in the clear."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

from sqlalchemy import select
from tests.factories import Vehicle, read_drop, send

from vehiclehub.config import Settings
from vehiclehub.pipeline import run_cycle
from vehiclehub.store import connect
from vehiclehub.store.schema import feed_table, metadata
from vehiclehub_samples.identifiers import make_resident_id

DAY = date(2025, 11, 3)
RNG = random.Random(11)
PEOPLE = [make_resident_id(RNG, date(1960 + i, 1 + i, 1 + i)) for i in range(8)]


def _full_width(value: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)


def _everything_stored(settings: Settings) -> str:
    """Every value in every table of the store, as one text."""
    with connect(settings.database_url).connect() as conn:
        return "\n".join(
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in conn.execute(select(table))
        )


def _everything_written(root: Path) -> bytes:
    """Every file under the hub's work dir and the agencies' inboxes."""
    files = [*(root / "work").rglob("*"), *(root / "exchange").glob("*/inbox/*")]
    return b"\n".join(p.read_bytes() for p in files if p.is_file())


def test_resident_ids_where_none_may_stand_reject_the_row_and_leak_nowhere(
    settings: Settings,
) -> None:
    root = settings.work_dir.parent
    v = Vehicle()
    events = {
        "E1": v.event("E1", "transfer", "2025-10-01", brand=f"丰田{PEOPLE[0]}"),
        "E2": v.event("E2", "transfer", "2025-10-01", plate_no=_full_width(PEOPLE[1])),
        "E3": v.event("E3", "transfer", "2025-10-01", owner_id=PEOPLE[2][:9] + " " + PEOPLE[2][9:]),
        "E4": v.event("E4", "transfer", "2025-10-01", vin=PEOPLE[3]),
        "E5": v.event("E5", "transfer", "2025-10-01", model=f"A{PEOPLE[4]}"),  # joined: kept
        "E6": v.event("E6", "register", "2025-10-01", owner_id=PEOPLE[5]),  # where it belongs
    }
    send(root, "police", "events", list(events.values()))
    send(root, "commerce", "enterprises", [
        Vehicle().filing(), Vehicle().filing(uscc=PEOPLE[6]),
        Vehicle().filing(name=f"天津{PEOPLE[7]}汽车贸易有限公司"),
    ])  # fmt: skip

    run_cycle(settings, DAY)

    police = read_drop(root, "police", "rejections")
    assert police[["line", "column"]].values.tolist() == [
        ["2", "brand"],
        ["3", "plate_no"],
        ["4", "owner_id"],
        ["5", "vin"],
    ]
    assert police["value"].tolist() == [
        f"丰田{PEOPLE[0][:6]}{'*' * 12}",
        _full_width(PEOPLE[1][:6]) + "*" * 12,
        PEOPLE[2][:6] + "*" * 13,
        PEOPLE[3][:6] + "*" * 12,
    ]
    assert "personal data" in police["error"].iloc[0]
    commerce = read_drop(root, "commerce", "rejections")
    assert commerce[["line", "column", "value"]].values.tolist() == [
        ["3", "uscc", PEOPLE[6][:6] + "*" * 12],
        ["4", "name", f"天津{PEOPLE[7][:6]}{'*' * 12}汽车贸易有限公司"],
    ]
    with connect(settings.database_url).connect() as conn:
        ids = conn.execute(select(feed_table("police", "events").c.event_id)).scalars().all()
    assert sorted(ids) == ["E5", "E6"]

    stored, written = _everything_stored(settings), _everything_written(root)
    for person in PEOPLE[:4] + PEOPLE[5:]:
        for shape in {person, _full_width(person)}:
            assert shape not in stored
            assert shape.encode() not in written
