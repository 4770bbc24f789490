"""File names of the exchange (ICD §1, §4): read and made by one value object."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from vehiclehub.icd.names import BadFileName, FileName, manifest_name

ROOT = Path(__file__).resolve().parents[3]


def test_a_name_reads_and_is_made_back() -> None:
    name = FileName.parse("commerce_tradein_claims_20251103_002.csv")
    assert name == FileName("commerce", "tradein_claims", date(2025, 11, 3), 2)
    assert str(name) == "commerce_tradein_claims_20251103_002.csv"
    assert name.manifest == "commerce_tradein_claims_20251103_002.manifest.json"
    assert manifest_name(str(name)) == name.manifest
    assert FileName.prefix("police", "events", date(2025, 11, 3)) == "police_events_20251103_"


def test_a_drop_is_named_with_the_hub_as_author() -> None:
    drop = FileName.of_drop("police", "export_verification", date(2025, 11, 3))
    assert str(drop) == "hub_police_export_verification_20251103_001.csv"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("police_events_20251103_1.csv", "does not follow"),
        ("police_events_2025110３_001.csv", "does not follow"),  # a full-width digit
        ("police_events_20251103_001.csv\n", "does not follow"),
        ("police_events_20251103_001.csv.part", "does not follow"),
        ("Police_events_20251103_001.csv", "does not follow"),
        ("police_events_20251332_001.csv", "no valid date 20251332"),
    ],
)
def test_a_name_outside_the_grammar_is_refused_saying_why(name: str, why: str) -> None:
    with pytest.raises(BadFileName, match=why):
        FileName.parse(name)
    assert FileName.read(name) is None


def test_no_other_module_reads_or_makes_a_name_by_hand() -> None:
    by_hand = re.compile(r"_\(\?P<seq>|%Y%m%d}_(?:\"|001)|:03d}\.csv|\[: -len\(\"\.csv\"\)\]")
    places = [
        str(path.relative_to(ROOT))
        for folder in ("src/vehiclehub", "src/vehiclehub_samples")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "names.py" and by_hand.search(path.read_text(encoding="utf-8"))
    ]
    assert places == []
