"""Manifests (ICD §1): parsed and checked against the file name they describe."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from vehiclehub.errors import HubError
from vehiclehub.icd.manifest import ENCODINGS, SCHEMA_VERSION, Manifest
from vehiclehub.icd.names import BadFileName, FileName


class FileRejected(HubError):
    """The whole file is rejected; the message says why, in words."""


def parse_file_name(name: str) -> FileName:
    """Read a data file's name; raise FileRejected when it is none."""
    try:
        return FileName.parse(name)
    except BadFileName as exc:
        raise FileRejected(str(exc)) from exc


#: The largest manifest read (ICD §1); a longer one rejects its file.
MANIFEST_MAX_BYTES = 64 << 10

#: Nesting a manifest may have: its members are scalars, lists and small objects.
_MAX_DEPTH = 32

#: ``rows`` the store can count (a 32-bit integer column).
_MAX_ROWS = 2**31 - 1


def _quoted(value: object) -> str:
    """A manifest value as a rejection quotes it: its first 64 characters, repr-escaped."""
    text = repr(value)
    return text if len(text) <= 64 else text[:64] + "…"


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members; a name given twice makes the manifest ambiguous."""
    doc: dict[str, Any] = {}
    for name, value in pairs:
        if name in doc:
            raise FileRejected(f"manifest names the member {_quoted(name)} twice")
        doc[name] = value
    return doc


def _depth_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit`` (checked before parsing,
    so that no depth reaches the parser's recursion)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def load_manifest_json(raw: bytes) -> dict[str, Any]:
    """A manifest's JSON object (ICD §1): at most 64 KiB, UTF-8, no duplicate member names.

    Raises FileRejected for anything else, whatever the bytes hold.
    """
    if len(raw) > MANIFEST_MAX_BYTES:
        raise FileRejected(
            f"manifest is larger than {MANIFEST_MAX_BYTES // 1024} KiB (ICD §1 limit)"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected(f"manifest is not valid UTF-8 JSON: {exc}") from exc
    if _depth_exceeds(text, _MAX_DEPTH):
        raise FileRejected(f"manifest nests deeper than {_MAX_DEPTH} levels; it is no manifest")
    try:
        doc = json.loads(text, object_pairs_hook=_members)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise FileRejected(f"manifest is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise FileRejected("manifest is not a JSON object")
    return doc


def parse_manifest(raw: bytes, data_name: str) -> Manifest:
    """Parse a manifest and check it names ``data_name``; raise FileRejected otherwise."""
    doc = load_manifest_json(raw)
    missing = [
        k
        for k in ("file", "agency", "feed", "business_date", "seq", "rows", "sha256", "encoding")
        if k not in doc
    ]
    if missing:
        raise FileRejected(f"manifest lacks {', '.join(missing)}")
    name = parse_file_name(data_name)
    if str(doc.get("schema_version")) != SCHEMA_VERSION:
        raise FileRejected(
            f"manifest schema_version is {_quoted(doc.get('schema_version'))}; "
            "this hub reads version 1"
        )
    try:
        business_date = date.fromisoformat(str(doc["business_date"]))
    except ValueError as exc:
        raise FileRejected(
            f"manifest business_date {_quoted(doc['business_date'])} is no date"
        ) from exc
    rows, seq = doc["rows"], doc["seq"]
    if not isinstance(rows, int) or isinstance(rows, bool) or not 0 <= rows <= _MAX_ROWS:
        raise FileRejected(f"manifest rows {_quoted(rows)} is not a whole number")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise FileRejected(f"manifest seq {_quoted(seq)} is not a whole number")
    mismatches = [
        f"{field} {_quoted(doc[field])} (file name says {expected!r})"
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
        raise FileRejected(f"manifest encoding {_quoted(doc['encoding'])} is not utf-8 or gb18030")
    sha = str(doc["sha256"]).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise FileRejected("manifest sha256 is not a hex SHA-256 digest")
    return Manifest(
        file=data_name,
        agency=name.agency,
        feed=name.feed,
        business_date=business_date,
        seq=seq,
        rows=rows,
        sha256=sha,
        encoding=encoding,
    )
