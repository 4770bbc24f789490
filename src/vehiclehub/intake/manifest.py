"""Manifests (ICD §1): parsed and checked against the file name they describe."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from pydantic import ValidationError

from vehiclehub.errors import HubError
from vehiclehub.icd.manifest import Manifest
from vehiclehub.icd.names import BadFileName, FileName
from vehiclehub.identifiers import mask_id_shaped


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


def _quoted(value: object) -> str:
    """A manifest value as a rejection quotes it: repr-escaped, masked where it holds
    id-shaped characters (ICD §5), its first 64 characters (ICD §1)."""
    text = str(mask_id_shaped(pd.Series([repr(value)])).iloc[0])
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


def _defects(exc: ValidationError, document: dict[str, Any]) -> str:
    """What is wrong with a manifest's members, in one line an agency's engineer can act
    on: the members it lacks, then each wrong value, quoted, and what it must be."""
    errors = exc.errors()
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
    defects = [f"manifest lacks {', '.join(missing)}"] if missing else []
    for error in errors:
        member = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] != "missing":
            field = Manifest.model_fields.get(member)
            must_be = field.description if field else error["msg"]
            defects.append(f"manifest {member} {_quoted(document.get(member))} is not {must_be}")
    return "; ".join(defects)


def parse_manifest(raw: bytes, data_name: str) -> Manifest:
    """Parse a manifest and check it names ``data_name``; raise FileRejected otherwise."""
    doc = load_manifest_json(raw)
    try:
        manifest = Manifest.parse(doc)
    except ValidationError as exc:
        raise FileRejected(_defects(exc, doc)) from exc
    name = parse_file_name(data_name)
    mismatches = [
        f"{field} {_quoted(doc[field])} (file name says {expected!r})"
        for field, got, expected in (
            ("file", manifest.file, data_name),
            ("agency", manifest.agency, name.agency),
            ("feed", manifest.feed, name.feed),
            ("business_date", manifest.business_date, name.business_date),
            ("seq", manifest.seq, name.seq),
        )
        if got != expected
    ]
    if mismatches:
        raise FileRejected("manifest disagrees with the file name: " + "; ".join(mismatches))
    return manifest
