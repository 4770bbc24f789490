"""Property-based fuzzing of intake (issue 11): whatever a file holds, a run never
raises, every input row is loaded or rejected, and no resident ID is stored in clear.

Bounded for the default suite; a longer run for nightly use:
``HYPOTHESIS_PROFILE=nightly .venv/bin/python -m pytest tests/integration/test_fuzz_intake.py``
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.conftest import write_config
from tests.factories import Vehicle, columns, send

from vehiclehub.config import Settings, load_settings
from vehiclehub.pipeline import intake_agency
from vehiclehub.store import connect
from vehiclehub.store.schema import intake_files, metadata
from vehiclehub_samples.files import write_manifest
from vehiclehub_samples.identifiers import make_resident_id

DAY = date(2025, 11, 3)
NAME = "police_events_20251103_001.csv"

settings.register_profile(
    "default", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "nightly", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@contextmanager
def _hub() -> Iterator[Settings]:
    """A fresh hub on SQLite for one example."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        yield load_settings(write_config(root, f"sqlite:///{root / 'hub.db'}"))


def _outbox(hub: Settings) -> Path:
    return hub.work_dir.parent / "exchange" / "police" / "outbox"


def _files(hub: Settings) -> list[dict]:
    with connect(hub.database_url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(intake_files))]


def _accounted(hub: Settings) -> None:
    """The file is recorded; if loaded, its rows add up."""
    (recorded,) = _files(hub)
    assert recorded["status"] in ("loaded", "rejected")
    if recorded["status"] == "loaded":
        assert (
            recorded["rows_loaded"] + recorded["rows_ignored"] + recorded["rows_rejected"]
            == recorded["rows_read"]
        )


@given(body=st.binary(max_size=4096), rows=st.integers(min_value=0, max_value=50))
def test_random_bytes_end_loaded_or_rejected(body: bytes, rows: int) -> None:
    with _hub() as hub:
        (_outbox(hub) / NAME).write_bytes(body)
        write_manifest(
            _outbox(hub), NAME, "police", "events", DAY, 1,
            rows=rows, sha256=hashlib.sha256(body).hexdigest(),
        )  # fmt: skip
        intake_agency(hub, "police", DAY)
        _accounted(hub)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(manifest=st.dictionaries(st.sampled_from(["file", "agency", "feed", "business_date",
       "seq", "rows", "sha256", "encoding", "schema_version", "x"]), _JSON))  # fmt: skip
def test_random_manifests_end_rejected(manifest: dict) -> None:
    with _hub() as hub:
        send(hub.work_dir.parent, "police", "events", [Vehicle().event("E1", "transfer",
             "2025-10-01")])  # fmt: skip
        (_outbox(hub) / NAME.replace(".csv", ".manifest.json")).write_text(json.dumps(manifest))
        intake_agency(hub, "police", DAY)
        _accounted(hub)


_FIELD = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789０１２３４５６７８９Xx ;:/\\\t\x00\u2028", max_size=40),
    st.none(),
)


@given(
    values=st.lists(st.dictionaries(st.sampled_from(columns("police", "events")), _FIELD),
                    min_size=1, max_size=6),
    seed=st.integers(min_value=0, max_value=2**32),
)  # fmt: skip
def test_random_field_contents_are_loaded_or_rejected_and_no_resident_id_is_stored(
    values: list[dict], seed: int
) -> None:
    rng = random.Random(seed)
    people = []
    rows = []
    for n, changed in enumerate(values):
        person = make_resident_id(rng)
        people.append(person)
        where = rng.choice(["brand", "model", "plate_no", "owner_id"])
        row = Vehicle().event(f"E{n}", "transfer", "2025-10-01", **{where: f"车{person}"})
        rows.append({**row, **changed})
    with _hub() as hub:
        send(hub.work_dir.parent, "police", "events", rows)
        intake_agency(hub, "police", DAY)
        _accounted(hub)
        with connect(hub.database_url).connect() as conn:
            stored = "\n".join(
                repr(tuple(r)) for t in metadata.sorted_tables for r in conn.execute(select(t))
            )
        for person in people:
            assert person not in stored
