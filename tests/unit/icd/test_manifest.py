"""One manifest model: what the publish and sample writers dump, intake reads back."""

from __future__ import annotations

import json
from datetime import date

import pytest

from vehiclehub.icd.manifest import Manifest
from vehiclehub.intake.manifest import FileRejected, parse_manifest

NAME = "customs_declarations_20251103_001.csv"


def _manifest(**more: object) -> Manifest:
    fields: dict[str, object] = {
        "file": NAME,
        "agency": "customs",
        "feed": "declarations",
        "business_date": date(2025, 11, 3),
        "seq": 1,
        "rows": 1234,
        "sha256": "ab" * 32,
        "encoding": "utf-8",
    }
    return Manifest.model_validate(fields | more)


def test_a_manifest_dumps_its_members_in_the_icd_order_leaving_out_absent_ones() -> None:
    document = _manifest(generated_at="2025-11-04T01:12:00+08:00").dump()
    assert list(document) == [
        "file",
        "agency",
        "feed",
        "business_date",
        "seq",
        "rows",
        "sha256",
        "encoding",
        "schema_version",
        "generated_at",
    ]
    assert document["business_date"] == "2025-11-03" and document["schema_version"] == "1"
    drop = _manifest(missing_evidence=["tax"], log_head={"seq": 3, "hash": "00" * 32}).dump()
    assert drop["missing_evidence"] == ["tax"] and drop["log_head"]["seq"] == 3


def test_what_is_dumped_intake_reads_back() -> None:
    written = _manifest(generated_at="2025-11-04T01:12:00+08:00")
    read = parse_manifest(json.dumps(written.dump()).encode(), NAME)
    assert read == written.model_copy(update={"generated_at": None})
    assert read.codec == "utf-8-sig"


def test_a_manifest_for_another_file_is_rejected() -> None:
    with pytest.raises(FileRejected, match="disagrees with the file name"):
        parse_manifest(json.dumps(_manifest(seq=2).dump()).encode(), NAME)
