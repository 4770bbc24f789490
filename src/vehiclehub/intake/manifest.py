"""Manifests (ICD §1): parsed and checked against the file name they describe."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from vehiclehub.exchange.base import FILE_NAME

ENCODINGS = {"utf-8": "utf-8-sig", "gb18030": "gb18030"}


class FileRejected(Exception):
    """The whole file is rejected; the message says why, in words."""


@dataclass(frozen=True)
class Manifest:
    file: str
    agency: str
    feed: str
    business_date: date
    seq: int
    rows: int
    sha256: str
    encoding: str

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]


@dataclass(frozen=True)
class FileName:
    agency: str
    feed: str
    business_date: date
    seq: int


def parse_file_name(name: str) -> FileName:
    match = FILE_NAME.match(name)
    if not match:
        raise FileRejected(
            f"file name {name!r} does not follow <agency>_<feed>_<YYYYMMDD>_<seq>.csv"
        )
    raw_date = match["date"]
    try:
        day = date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:]))
    except ValueError as exc:
        raise FileRejected(f"file name {name!r} has no valid date {raw_date}") from exc
    return FileName(match["agency"], match["feed"], day, int(match["seq"]))


def parse_manifest(raw: bytes, data_name: str) -> Manifest:
    """Parse a manifest and check it names ``data_name``; raise FileRejected otherwise."""
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileRejected(f"manifest is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise FileRejected("manifest is not a JSON object")
    missing = [
        k
        for k in ("file", "agency", "feed", "business_date", "seq", "rows", "sha256", "encoding")
        if k not in doc
    ]
    if missing:
        raise FileRejected(f"manifest lacks {', '.join(missing)}")
    name = parse_file_name(data_name)
    if str(doc.get("schema_version")) != "1":
        raise FileRejected(
            f"manifest schema_version is {doc.get('schema_version')!r}; this hub reads version 1"
        )
    try:
        business_date = date.fromisoformat(str(doc["business_date"]))
    except ValueError as exc:
        raise FileRejected(f"manifest business_date {doc['business_date']!r} is no date") from exc
    rows, seq = doc["rows"], doc["seq"]
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise FileRejected(f"manifest rows {rows!r} is not a whole number")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise FileRejected(f"manifest seq {seq!r} is not a whole number")
    mismatches = [
        f"{field} {doc[field]!r} (file name says {expected!r})"
        for field, got, expected in (
            ("file", doc["file"], data_name),
            ("agency", doc["agency"], name.agency),
            ("feed", doc["feed"], name.feed),
            ("business_date", business_date, name.business_date),
            ("seq", seq, name.seq),
        )
        if got != expected
    ]
    if mismatches:
        raise FileRejected("manifest disagrees with the file name: " + "; ".join(mismatches))
    encoding = str(doc["encoding"]).lower()
    if encoding not in ENCODINGS:
        raise FileRejected(f"manifest encoding {doc['encoding']!r} is not utf-8 or gb18030")
    sha = str(doc["sha256"]).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise FileRejected("manifest sha256 is not a hex SHA-256 digest")
    return Manifest(data_name, name.agency, name.feed, business_date, seq, rows, sha, encoding)
