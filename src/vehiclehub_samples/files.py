"""Writing agency files the way an agency's exporter does (ICD §1)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from vehiclehub.icd.manifest import SCHEMA_VERSION, Manifest
from vehiclehub.icd.names import FileName, manifest_name

SHANGHAI = timezone(timedelta(hours=8))


def feed_file_name(agency: str, feed: str, day: date, seq: int) -> str:
    return str(FileName(agency, feed, day, seq))


def render_rows(
    columns: list[str],
    rows: Iterable[Mapping[str, Any]],
    encoding: str = "utf-8",
    bom: bool = False,
) -> bytes:
    """CSV bytes with a header; None becomes an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    text = buffer.getvalue()
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def count_rows(body: bytes) -> int:
    """Data rows of a CSV body: its lines less the header."""
    lines = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
    return max(lines - 1, 0)


def _atomic_write(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def write_feed(
    root: Path,
    agency: str,
    feed: str,
    day: date,
    seq: int,
    columns: list[str],
    rows: Iterable[Mapping[str, Any]] | None = None,
    *,
    data: bytes | None = None,
    encoding: str = "utf-8",
    bom: bool = False,
    manifest: dict[str, Any] | None = None,
    with_manifest: bool = True,
) -> Path:
    """Write ``<root>/outbox/<name>`` and, last, its manifest; return the data file's path.

    ``data`` replaces the rendered rows (for damaged files); ``manifest`` entries
    override the computed ones.
    """
    outbox = root / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (root / "inbox").mkdir(exist_ok=True)
    name = feed_file_name(agency, feed, day, seq)
    body = data if data is not None else render_rows(columns, rows or [], encoding, bom)
    _atomic_write(outbox / name, body)
    if with_manifest:
        write_manifest(
            outbox,
            name,
            agency,
            feed,
            day,
            seq,
            rows=count_rows(body),
            sha256=hashlib.sha256(body).hexdigest(),
            encoding=encoding,
            overrides=manifest,
        )
    return outbox / name


def write_manifest(
    outbox: Path,
    name: str,
    agency: str,
    feed: str,
    day: date,
    seq: int,
    *,
    rows: int,
    sha256: str,
    encoding: str = "utf-8",
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Write the manifest of data file ``outbox/name`` (last, as ``.part`` then renamed)."""
    document = Manifest(
        file=name,
        agency=agency,
        feed=feed,
        business_date=day,
        seq=seq,
        rows=rows,
        sha256=sha256,
        encoding=encoding,
        schema_version=SCHEMA_VERSION,
        generated_at=datetime.combine(day + timedelta(days=1), datetime.min.time())
        .replace(hour=1, tzinfo=SHANGHAI)
        .isoformat(),
    ).dump()
    document.update(overrides or {})
    path = outbox / manifest_name(name)
    _atomic_write(path, json.dumps(document, ensure_ascii=False).encode())
    return path
