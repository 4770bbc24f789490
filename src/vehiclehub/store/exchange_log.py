"""The exchange log (ICD §6): every file taken, drop written and delivery, hash-chained.

An entry is exactly the members of ICD §6; its ``hash`` is the sha256 of the entry
without ``hash`` serialised by RFC 8785, and its ``prev`` the hash of the entry before
(64 zeros for the first), so a changed, removed or inserted entry breaks the chain from
there on. Entries are appended under a lock on the log's head, so ``seq`` runs 1, 2, 3,
... without gaps however many intakes append at once, and are never changed or deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, text

from vehiclehub.signing import canonical_json
from vehiclehub.store.schema import exchange_log

ZERO_HASH = "0" * 64
MEMBERS = ("seq", "at", "agency", "direction", "file", "sha256", "rows", "outcome", "prev", "hash")
Outcome = Literal["loaded", "rejected", "duplicate", "written", "delivered", "delivery_failed"]
OUTCOMES: dict[str, tuple[str, ...]] = {
    "in": ("loaded", "rejected", "duplicate"),
    "out": ("written", "delivered", "delivery_failed"),
}
#: PostgreSQL advisory lock that stands for the log's head (any fixed 64-bit number).
HEAD_LOCK = int.from_bytes(
    hashlib.sha256(b"vehiclehub exchange log head").digest()[:8], "big", signed=True
)


@dataclass(frozen=True)
class LogHead:
    """The latest entry's ``seq`` and ``hash``; ``seq`` 0 and 64 zeros for an empty log."""

    seq: int
    hash: str

    def as_json(self) -> dict[str, Any]:
        """The ``log_head`` member of a drop manifest."""
        return {"seq": self.seq, "hash": self.hash}

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


EMPTY_HEAD = LogHead(0, ZERO_HASH)


def entry_hash(entry: Mapping[str, Any]) -> str:
    """sha256 hex digest of the entry without ``hash``, serialised by RFC 8785."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _lock_head(conn: Connection) -> None:
    """Hold the log's head until the transaction ends: appenders queue here."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": HEAD_LOCK})
    else:
        # SQLite has one writer at a time: a write statement (this one changes no row)
        # takes the database's write lock for the rest of the transaction, before the
        # head is read.
        conn.execute(text("UPDATE exchange_log SET seq = seq WHERE 0 = 1"))


def log_head(conn: Connection) -> LogHead:
    """The log's latest entry as it stands for this connection."""
    row = conn.execute(
        select(exchange_log.c.seq, exchange_log.c.hash).order_by(exchange_log.c.seq.desc()).limit(1)
    ).first()
    return EMPTY_HEAD if row is None else LogHead(int(row.seq), str(row.hash))


def append_entry(
    conn: Connection,
    *,
    agency: str,
    direction: Literal["in", "out"],
    file: str,
    sha256: str | None,
    rows: int | None,
    outcome: Outcome,
) -> dict[str, Any]:
    """Append one entry in the caller's transaction and return it.

    The head stays locked until that transaction ends, so the entry commits or rolls
    back with what it records and the next appender chains onto it.
    """
    if outcome not in OUTCOMES[direction]:
        raise ValueError(f"{outcome!r} is no outcome of direction {direction!r}")
    _lock_head(conn)
    head = log_head(conn)
    entry: dict[str, Any] = {
        "seq": head.seq + 1,
        "at": _utc_now(),
        "agency": agency,
        "direction": direction,
        "file": file,
        "sha256": sha256,
        "rows": None if rows is None else int(rows),
        "outcome": outcome,
        "prev": head.hash,
    }
    entry["hash"] = entry_hash(entry)
    conn.execute(insert(exchange_log).values(**entry))
    return entry


def log_entries(
    conn: Connection, agency: str | None = None, since: date | None = None
) -> Iterator[dict[str, Any]]:
    """Entries in ``seq`` order, of one agency and from a UTC date on when given."""
    query = select(*(exchange_log.c[m] for m in MEMBERS)).order_by(exchange_log.c.seq)
    if agency is not None:
        query = query.where(exchange_log.c.agency == agency)
    if since is not None:
        query = query.where(exchange_log.c.at >= since.isoformat())
    for row in conn.execute(query).mappings():
        entry = dict(row)
        entry["seq"] = int(entry["seq"])
        entry["rows"] = None if entry["rows"] is None else int(entry["rows"])
        yield entry


@dataclass
class ChainCheck:
    """What recomputing the chain found: intact up to ``head``, or where it breaks."""

    entries: int
    head: LogHead
    broken_at: int | None = None  # position in the chain (1 = first entry)
    problem: str | None = None
    hashes: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def intact(self) -> bool:
        return self.problem is None

    def holds(self, head: LogHead) -> bool:
        """Whether an entry ``head.seq`` with ``head.hash`` lies on the intact chain (the
        empty log's head always does)."""
        return head == EMPTY_HEAD or self.hashes.get(head.seq) == head.hash


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> ChainCheck:
    """Recompute the chain over entries in order; stop at the first broken one."""
    check = ChainCheck(0, EMPTY_HEAD)
    for position, entry in enumerate(entries, start=1):
        stated = entry.get("seq")
        problem = None
        if set(entry) != set(MEMBERS):
            odd = sorted(set(entry) ^ set(MEMBERS))
            problem = f"its members differ from ICD §6 ({', '.join(odd)})"
        elif stated != position:
            problem = f"seq {stated} stands where {position} is due (an entry removed or inserted)"
        elif entry["prev"] != check.head.hash:
            problem = f"prev is not the hash of entry {position - 1}"
        elif entry_hash(entry) != entry["hash"]:
            problem = "its hash does not match its content (the entry was changed)"
        if problem is not None:
            check.broken_at, check.problem = position, f"entry {position} (seq {stated}): {problem}"
            return check
        check.entries, check.head = position, LogHead(position, str(entry["hash"]))
        check.hashes[position] = str(entry["hash"])
    return check


def parse_head(value: str) -> LogHead:
    """``SEQ:HASH`` as an agency copies it from a drop's ``log_head``."""
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{value!r} is not SEQ:HASH (a number, a colon, 64 lower-case hex digits)")
    return LogHead(int(seq), digest)
