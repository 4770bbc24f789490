"""One manifest model: what the publish and sample writers dump, intake reads back."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from pydantic import ValidationError

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
        "schema_version": "1",
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


def _sent(**changes: object) -> dict[str, object]:
    """A sound agency manifest of NAME as JSON holds it, with ``changes`` (a member given
    as ``...`` left out)."""
    document = _manifest(generated_at="2025-11-04T01:12:00+08:00").dump() | changes
    return {k: v for k, v in document.items() if v is not ...}


def _parsed(document: dict[str, object]) -> Manifest:
    return parse_manifest(json.dumps(document).encode(), NAME)


DEFECTS: dict[str, tuple[dict[str, object], str]] = {
    "members missing": (
        {"rows": ..., "schema_version": ...},
        "manifest lacks rows, schema_version",
    ),
    "schema_version 2": ({"schema_version": "2"}, "manifest schema_version '2' is not \"1\""),
    "schema_version a number": ({"schema_version": 1}, 'manifest schema_version 1 is not "1"'),
    "business_date a date-time": (
        {"business_date": "2025-11-03T00:00"},
        "manifest business_date '2025-11-03T00:00' is not a date YYYY-MM-DD",
    ),
    "business_date a number": (
        {"business_date": 20251103},
        "manifest business_date 20251103 is not a date",
    ),
    "business_date without dashes": (
        {"business_date": "20251103"},
        "manifest business_date '20251103' is not a date",
    ),
    "business_date no calendar has": (
        {"business_date": "2025-02-30"},
        "manifest business_date '2025-02-30' is not a date",
    ),
    "seq a string": ({"seq": "1"}, "manifest seq '1' is not a whole number from 0 to 999"),
    "seq a boolean": ({"seq": True}, "manifest seq True is not a whole number"),
    "seq beyond three digits": ({"seq": 1000}, "manifest seq 1000 is not a whole number"),
    "rows negative": ({"rows": -1}, "manifest rows -1 is not a whole number from 0 to 2147483647"),
    "rows beyond the store": ({"rows": 2**31}, "manifest rows 2147483648 is not a whole number"),
    "rows a decimal": ({"rows": 3.0}, "manifest rows 3.0 is not a whole number"),
    "sha256 one digit short": ({"sha256": "ab" * 31 + "a"}, "is not a hex SHA-256 digest"),
    "sha256 not hex": ({"sha256": "g" * 64}, "manifest sha256 'gggg"),
    "sha256 with a line break": ({"sha256": "ab" * 32 + "\n"}, "is not a hex SHA-256 digest"),
    "encoding another": (
        {"encoding": "latin-1"},
        "manifest encoding 'latin-1' is not utf-8 or gb18030",
    ),
    "encoding unnamed": ({"encoding": None}, "manifest encoding None is not utf-8 or gb18030"),
    "feed a number": ({"feed": 7}, "manifest feed 7 is not text"),
}


@pytest.mark.parametrize("case", list(DEFECTS))
def test_a_manifest_defect_rejects_the_file_saying_which_member_is_wrong(case: str) -> None:
    changes, reason = DEFECTS[case]
    with pytest.raises(FileRejected) as rejected:
        _parsed(_sent(**changes))
    assert reason in str(rejected.value)
    assert "\n" not in str(rejected.value)


NEAR_MISSES: dict[str, dict[str, object]] = {
    "members the hub does not read": {"generated_at": 20251104, "x": [1], "log_head": "?"},
    "no generated_at": {"generated_at": ...},
    "business_date an ISO date": {"business_date": "2025-11-03"},
    "seq and rows at their limits": {"seq": 1, "rows": 2**31 - 1},
    "no rows": {"rows": 0},
    "sha256 in upper case": {"sha256": "AB" * 32},
    "encoding in upper case": {"encoding": "UTF-8"},
    "encoding gb18030": {"encoding": "GB18030"},
}


@pytest.mark.parametrize("case", list(NEAR_MISSES))
def test_a_manifest_near_a_defect_is_read(case: str) -> None:
    manifest = _parsed(_sent(**NEAR_MISSES[case]))
    assert manifest.sha256 == manifest.sha256.lower()
    assert manifest.encoding in ("utf-8", "gb18030")
    assert manifest.business_date == date(2025, 11, 3)


def test_a_manifest_with_several_defects_names_each_in_one_line() -> None:
    with pytest.raises(FileRejected) as rejected:
        _parsed(_sent(file=..., rows="many", encoding="latin-1"))
    assert str(rejected.value) == (
        "manifest lacks file; manifest rows 'many' is not a whole number from 0 to 2147483647;"
        " manifest encoding 'latin-1' is not utf-8 or gb18030"
    )


def test_a_wrong_value_is_shown_escaped_and_cut_to_64_characters() -> None:
    with pytest.raises(FileRejected) as rejected:
        _parsed(_sent(encoding="utf-8\n" + "x" * 100))
    shown = str(rejected.value).removeprefix("manifest encoding ").split(" is not ")[0]
    assert shown == repr("utf-8\n" + "x" * 100)[:64] + "…"


def test_a_writer_cannot_make_a_manifest_intake_would_reject() -> None:
    with pytest.raises(ValidationError):
        _manifest(encoding="latin-1")
    with pytest.raises(ValidationError):
        _manifest(business_date=datetime(2025, 11, 3, 0, 0))
    unversioned = {k: v for k, v in _manifest().dump().items() if k != "schema_version"}
    with pytest.raises(ValidationError, match="schema_version"):
        Manifest.model_validate(unversioned)


def test_a_wrong_value_holding_a_resident_id_is_shown_masked() -> None:
    with pytest.raises(FileRejected) as rejected:
        _parsed(_sent(file="110101199003071234.csv"))
    assert "'110101************.csv'" in str(rejected.value)
    assert "1990" not in str(rejected.value)
    with pytest.raises(FileRejected) as near:  # eight digits are a date, not an id
        _parsed(_sent(business_date=20251103))
    assert "20251103" in str(near.value)
