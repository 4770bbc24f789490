"""A world made block by block: the same bytes as one world while it fits one block; beyond,
each block's rows appended to the feed's file of the date, numbered on from the blocks
before, with manifests that match."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from vehiclehub.config import RuleParameters
from vehiclehub.contract import feed, feeds
from vehiclehub_samples import business_dates, generate_world
from vehiclehub_samples.columns import day_number
from vehiclehub_samples.records import Numbering
from vehiclehub_samples.stream import write_world
from vehiclehub_samples.world import make_world

DATES = business_dates(date(2025, 11, 3), 2)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _delivered(tmp_path: Path, name: str, vehicles: int, block: int) -> dict[str, bytes]:
    world = write_world(vehicles, DATES, tmp_path / f"{name}-staged", seed=5, block=block)
    for day in world.dates:
        world.write_day(day, tmp_path / name)
    return _tree(tmp_path / name)


def test_a_world_of_one_block_is_generate_worlds_byte_for_byte(tmp_path: Path) -> None:
    world = generate_world(300, DATES, seed=5)
    for day in world.dates:
        world.write_day(day, tmp_path / "whole")
    assert _delivered(tmp_path, "one-block", 300, block=300) == _tree(tmp_path / "whole")
    assert _delivered(tmp_path, "two-blocks", 300, block=150) != _tree(tmp_path / "whole")


def test_later_blocks_append_to_the_first_blocks_files(tmp_path: Path) -> None:
    first = _delivered(tmp_path, "first", 400, block=400)
    both = _delivered(tmp_path, "both", 800, block=400)
    assert set(both) == set(first)
    data = [name for name in both if name.endswith(".csv")]
    grown = [name for name in data if len(both[name]) > len(first[name])]
    assert grown and all(both[name].startswith(first[name]) for name in data)
    for name in data:
        manifest = json.loads(both[name.replace(".csv", ".manifest.json")])
        assert (
            manifest["sha256"] == hashlib.sha256(both[name]).hexdigest()
            or manifest["sha256"] == hashlib.sha256(b"another file").hexdigest()
        )
        lines = both[name].count(b"\n") - 1
        assert manifest["rows"] in (lines, lines + 1)  # + 1: the row count mismatch planted


def _keys(numbering: Numbering, seed: int) -> dict[str, set[str]]:
    """Each feed's record keys of a 300-vehicle block numbered on from ``numbering``."""
    world = make_world(
        np.random.default_rng(seed),
        300,
        tuple(day_number(d) for d in DATES),
        plant_fraction=0,
        file_noise=False,
        vin_typos=0,
        claims=40,
        params=RuleParameters(),
        numbering=numbering,
    )
    keys: dict[str, set[str]] = {}
    for planned in world.files:
        spec = feed(planned.agency, planned.feed)
        rows = planned.rows()
        joined = rows[spec.key[0]].astype("str")
        for column in spec.key[1:]:
            joined = joined + "/" + rows[column].astype("str")
        keys.setdefault(spec.table, set()).update(joined)
    return keys


@pytest.mark.parametrize("numbered_on", [True, False])
def test_a_later_block_numbers_on_from_the_earlier(numbered_on: bool) -> None:
    numbering = Numbering()
    earlier = _keys(numbering, seed=1)
    later = _keys(numbering if numbered_on else Numbering(), seed=2)
    shared = {table for table in later if earlier.get(table, set()) & later[table]}
    tables = {spec.table for spec in feeds().values()}
    assert set(later) == tables
    if numbered_on:
        assert shared == set()
    else:  # numbered from scratch, claims, declarations and events repeat keys
        assert {"commerce_tradein_claims", "customs_declarations", "police_events"} <= shared
