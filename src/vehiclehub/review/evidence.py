"""A finding's evidence: the ``record_version`` of every record it cites.

A decision on a finding holds while its evidence is unchanged (ICD §4, review columns):
the record it is on and every related record still at the version they had when the
decision was made. Records are named as in the drops, ``agency:key`` with the key
columns joined by ``/``; the agency's feed is the one whose key has that many columns
and holds the key (when two feeds of an agency could, both are looked up: a change in
either changes the evidence).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, and_, or_, select

from vehiclehub.contract import FeedSpec, agency_feeds
from vehiclehub.store.schema import feed_table

#: Records looked up per statement.
LOOKUP_BATCH = 200


def cited_records(agency: str, record_key: str, related: str) -> list[str]:
    """The records a finding cites, as ``agency:key``: the one it is on, then related ones."""
    return [f"{agency}:{record_key}", *(r for r in (related or "").split(";") if r)]


def candidate_feeds(agency: str, key: str) -> list[FeedSpec]:
    parts = key.split("/")
    return [spec for spec in agency_feeds(agency) if len(spec.key) == len(parts)]


def record_versions(conn: Connection, records: Iterable[str]) -> dict[str, str]:
    """Each ``agency:key`` record's versions, ``feed@version`` per feed holding the key
    (joined by ``,``), or ``absent`` when no feed holds it."""
    records = sorted(set(records))
    wanted: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    specs: dict[str, FeedSpec] = {}
    names: dict[tuple[str, tuple[str, ...]], str] = {}
    for record in records:
        agency, _, key = record.partition(":")
        for spec in candidate_feeds(agency, key):
            parts = tuple(key.split("/"))
            wanted[spec.table].append(parts)
            specs[spec.table] = spec
            names[spec.table, parts] = record
    found: dict[str, list[str]] = defaultdict(list)
    for table_name, keys in wanted.items():
        spec = specs[table_name]
        table = feed_table(spec.agency, spec.feed)
        columns = [table.c[name] for name in spec.key]
        for start in range(0, len(keys), LOOKUP_BATCH):
            batch = keys[start : start + LOOKUP_BATCH]
            condition = or_(
                *(
                    and_(*(c == typed_key(c, v) for c, v in zip(columns, parts, strict=True)))
                    for parts in batch
                )
            )
            rows = conn.execute(select(*columns, table.c.record_version).where(condition))
            for *key_values, version in rows:
                parts = tuple(str(v) for v in key_values)
                found[names[table_name, parts]].append(f"{spec.feed}@{version}")
    return {record: ",".join(sorted(found.get(record, []))) or "absent" for record in records}


def typed_key(column: object, value: str) -> object:
    """A key part as its column compares it: integer columns (``item_no``) as integers."""
    python_type = getattr(getattr(column, "type", None), "python_type", str)
    if python_type is int:
        return int(value) if value.isdigit() else -1
    return value


def fingerprint(records: list[str], versions: Mapping[str, str]) -> str:
    """One text naming each cited record with its versions, in citation order."""
    return ";".join(f"{record}={versions.get(record, 'absent')}" for record in records)


def evidence_of(conn: Connection, findings: Iterable[tuple[int, str, str, str]]) -> dict[int, str]:
    """The evidence fingerprint of each finding given as (id, agency, record_key, related)."""
    cited = {fid: cited_records(a, k, r) for fid, a, k, r in findings}
    versions = record_versions(conn, (rec for recs in cited.values() for rec in recs))
    return {fid: fingerprint(recs, versions) for fid, recs in cited.items()}
