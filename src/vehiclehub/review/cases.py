"""Cases and decisions: what operators decide on findings, and what the drops carry.

Every finding is a case. Its ``status`` comes from the nightly lifecycle (``new`` on
the business date it was first found, ``open`` while it holds, ``resolved`` once the
data no longer supports it); its ``review`` is the operators' (``unreviewed``,
``confirmed``, ``dismissed``, ``escalated``). A decision is recorded once, as an event
of the case's history and as the case's current state, with the evidence it was made
on; it lapses when that evidence changes (ICD §4). A run counts the decisions made
before it began (:func:`mark_run`); one made while it is under way counts from the
next run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, delete, func, insert, select, update

from vehiclehub.errors import HubError
from vehiclehub.icd.codes import FindingStatus, Review, ShownReview
from vehiclehub.icd.codes import values as code_values
from vehiclehub.review.evidence import evidence_of
from vehiclehub.store.review import case_events, case_states, review_runs, review_users
from vehiclehub.store.schema import findings

REVIEWS = tuple(code_values(Review))
#: What an operator may decide: every review but none.
DECISIONS = tuple(review for review in REVIEWS if review != Review.UNREVIEWED)
REASONS = ("false_positive", "corrected_at_source", "duplicate_case", "known_exception", "other")
#: Reviews the drops show (ICD §4): a dismissed finding is left out instead.
SHOWN_REVIEWS = tuple(code_values(ShownReview))
NOTE_MAX = 500
#: Events that set a case's review; the latest one before a run began is what it counts.
REVIEW_EVENTS = ("decision", "reopen", "lapse")


class CaseError(HubError):
    """A request on a case that cannot be done; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite gives them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Fifteen or eighteen id-shaped characters (digits, spaces allowed between them, the 18th
# may be X), not part of a longer run of digits: masked wherever they stand (ICD §5).
_ID_SHAPED = re.compile(
    r"(?<![0-9])(?:[0-9] ?){17}[0-9Xx](?![0-9A-Za-z])|(?<![0-9])(?:[0-9] ?){14}[0-9](?![0-9])"
)
_LINE_BREAKS = re.compile(r"[\u0000-\u001f\u007f-\u009f\u2028\u2029]")


def mask_personal(text: str) -> str:
    """The text with every id-shaped run masked: its first 6 digits kept, the rest ``*``."""

    def mask(match: re.Match[str]) -> str:
        kept, out = 0, []
        for char in match.group(0):
            if char == " ":
                out.append(char)
            elif kept < 6:
                kept += 1
                out.append(char)
            else:
                out.append("*")
        return "".join(out)

    return _ID_SHAPED.sub(mask, text)


def clean_note(note: str | None) -> str | None:
    """A note as stored: one line, at most 500 characters, personal data masked."""
    if note is None or not note.strip():
        return None
    note = note.strip()
    if _LINE_BREAKS.search(note):
        raise CaseError("note: one line, without line breaks or control characters")
    if len(note) > NOTE_MAX:
        raise CaseError(f"note: at most {NOTE_MAX} characters (got {len(note)})")
    return mask_personal(note)


@dataclass(frozen=True)
class Decision:
    """An operator's decision on a case, as asked for."""

    review: str
    reason: str | None = None
    note: str | None = None
    assignee: str | None = None


def _finding(conn: Connection, finding_id: int) -> Any:
    row = conn.execute(select(findings).where(findings.c.id == finding_id)).first()
    if row is None:
        raise CaseError(f"no case {finding_id}", 404)
    return row


def _state(conn: Connection, finding_id: int) -> Any:
    return conn.execute(select(case_states).where(case_states.c.finding_id == finding_id)).first()


def _supervisor(conn: Connection, name: str | None) -> str:
    if not name:
        raise CaseError("assignee: an escalated case names the supervisor it goes to")
    role = conn.execute(select(review_users.c.role).where(review_users.c.name == name)).scalar()
    if role != "supervisor":
        raise CaseError(f"assignee: {name!r} is not a supervisor")
    return name


def validate(conn: Connection, decision: Decision) -> Decision:
    """The decision as it will be stored, or a CaseError saying what is wrong with it."""
    if decision.review not in DECISIONS:
        raise CaseError(f"review: one of {', '.join(DECISIONS)} (got {decision.review!r})")
    note = clean_note(decision.note)
    reason, assignee = decision.reason or None, decision.assignee or None
    if decision.review == Review.DISMISSED:
        if reason not in REASONS:
            raise CaseError(f"reason: a dismissal gives one of {', '.join(REASONS)}")
        if reason == "other" and not note:
            raise CaseError("note: a dismissal for reason 'other' says why in the note")
    elif reason is not None:
        raise CaseError("reason: only a dismissal has a reason")
    if decision.review == Review.ESCALATED:
        assignee = _supervisor(conn, assignee)
    return Decision(decision.review, reason, note, assignee)


def _set_state(conn: Connection, finding_id: int, **values: Any) -> None:
    conn.execute(delete(case_states).where(case_states.c.finding_id == finding_id))
    conn.execute(insert(case_states).values(finding_id=finding_id, **values))


def _event(conn: Connection, finding_id: int, actor: str, kind: str, **values: Any) -> None:
    values.setdefault("at", now())
    conn.execute(
        insert(case_events).values(finding_id=finding_id, actor=actor, kind=kind, **values)
    )


def decide(
    conn: Connection, finding_id: int, actor: str, decision: Decision, *, supervisor: bool = False
) -> Decision:
    """Record a decision on an open case; what was stored is returned.

    An operator decides an unreviewed case; a supervisor also an escalated one. A case
    already decided is re-opened by a supervisor first; a resolved case is history.
    """
    row = _finding(conn, finding_id)
    if row.resolved_on is not None:
        raise CaseError(f"case {finding_id} is resolved: the data no longer supports it", 409)
    decision = validate(conn, decision)
    state = _state(conn, finding_id)
    current = state.review if state is not None else Review.UNREVIEWED
    if current != Review.UNREVIEWED and not (supervisor and current == Review.ESCALATED):
        raise CaseError(f"case {finding_id} is already {current}: a supervisor re-opens it", 409)
    evidence = evidence_of(conn, [(row.id, row.agency, row.record_key, row.related)])[row.id]
    at = now()
    assignee = decision.assignee or (state.assignee if state is not None else None)
    _set_state(
        conn,
        finding_id,
        review=decision.review,
        reason=decision.reason,
        note=decision.note,
        assignee=assignee,
        decided_by=actor,
        decided_at=at,
        evidence=evidence,
    )
    _event(
        conn,
        finding_id,
        actor,
        "decision",
        at=at,
        review=decision.review,
        reason=decision.reason,
        note=decision.note,
        assignee=decision.assignee,
        evidence=evidence,
    )
    return decision


def reopen(conn: Connection, finding_id: int, actor: str) -> None:
    """A supervisor sets a decided case back to unreviewed (its history keeps the decision)."""
    _finding(conn, finding_id)
    state = _state(conn, finding_id)
    if state is None or state.review == Review.UNREVIEWED:
        raise CaseError(f"case {finding_id} is not decided", 409)
    _set_state(conn, finding_id, review=Review.UNREVIEWED.value, assignee=state.assignee)
    _event(conn, finding_id, actor, "reopen", review=Review.UNREVIEWED.value)


def assign(conn: Connection, finding_id: int, actor: str, assignee: str | None) -> None:
    """Give a case to a user of the desk (or to no one, with ``None``)."""
    _finding(conn, finding_id)
    if assignee:
        known = conn.execute(select(review_users.c.role).where(review_users.c.name == assignee))
        role = known.scalar()
        if role not in ("operator", "supervisor"):
            raise CaseError(f"assignee: {assignee!r} is not an operator or supervisor")
    state = _state(conn, finding_id)
    if state is None:
        conn.execute(
            insert(case_states).values(
                finding_id=finding_id, review=Review.UNREVIEWED.value, assignee=assignee or None
            )
        )
    else:
        conn.execute(
            update(case_states)
            .where(case_states.c.finding_id == finding_id)
            .values(assignee=assignee or None)
        )
    _event(conn, finding_id, actor, "assign", assignee=assignee or None)


def comment(conn: Connection, finding_id: int, actor: str, text: str) -> None:
    """An internal comment on a case (never sent to the agencies)."""
    _finding(conn, finding_id)
    note = clean_note(text)
    if note is None:
        raise CaseError("comment: empty")
    _event(conn, finding_id, actor, "comment", note=note)


def mark_run(conn: Connection, day: date, at: datetime | None = None) -> datetime:
    """Record when the run for ``day`` began: it counts the decisions made before then."""
    at = at or now()
    conn.execute(delete(review_runs).where(review_runs.c.run_date == day))
    conn.execute(insert(review_runs).values(run_date=day, counts_from=at))
    return at


def counts_from(conn: Connection, day: date) -> datetime:
    """When the run for ``day`` began (now, when no run was recorded)."""
    at = conn.execute(select(review_runs.c.counts_from).where(review_runs.c.run_date == day))
    return as_utc(at.scalar()) or now()


def lapse_changed(conn: Connection) -> int:
    """Let every decision on an open case lapse whose evidence has changed; how many did.

    The case comes back unreviewed (its assignee kept); the history records the lapse.
    """
    decided = conn.execute(
        select(
            findings.c.id,
            findings.c.agency,
            findings.c.record_key,
            findings.c.related,
            case_states.c.evidence,
        )
        .join(case_states, case_states.c.finding_id == findings.c.id)
        .where(case_states.c.review != Review.UNREVIEWED.value, findings.c.resolved_on.is_(None))
    ).all()
    current = evidence_of(conn, [(r.id, r.agency, r.record_key, r.related) for r in decided])
    lapsed = [r for r in decided if current[r.id] != r.evidence]
    for row in lapsed:
        conn.execute(
            update(case_states)
            .where(case_states.c.finding_id == row.id)
            .values(
                review=Review.UNREVIEWED.value,
                reason=None,
                note=None,
                decided_by=None,
                decided_at=None,
            )
        )
        _event(
            conn, row.id, "hub", "lapse", review=Review.UNREVIEWED.value, evidence=current[row.id]
        )
    return len(lapsed)


def counted_decisions(conn: Connection, day: date) -> pd.DataFrame:
    """The decisions the run for ``day`` counts, still on their evidence: one row per
    case (``finding_id``, ``review``, ``note``) whose latest review event before the run
    began is a decision, and whose cited records are still at the versions it was made on.
    """
    began = counts_from(conn, day)
    latest = (
        select(func.max(case_events.c.id).label("id"))
        .where(case_events.c.kind.in_(REVIEW_EVENTS), case_events.c.at < began)
        .group_by(case_events.c.finding_id)
        .subquery("latest")
    )
    rows = conn.execute(
        select(
            case_events.c.finding_id,
            case_events.c.review,
            case_events.c.note,
            case_events.c.evidence,
            findings.c.agency,
            findings.c.record_key,
            findings.c.related,
        )
        .join(latest, latest.c.id == case_events.c.id)
        .join(findings, findings.c.id == case_events.c.finding_id)
        .where(case_events.c.kind == "decision", findings.c.resolved_on.is_(None))
    ).all()
    current = evidence_of(conn, [(r.finding_id, r.agency, r.record_key, r.related) for r in rows])
    kept = [r for r in rows if current[r.finding_id] == r.evidence]
    return pd.DataFrame(
        {
            "finding_id": pd.Series([r.finding_id for r in kept], dtype="int64"),
            "review": pd.Series([r.review for r in kept], dtype=object),
            "note": pd.Series([r.note for r in kept], dtype=object),
        }
    )


def _status(first_seen: date, day: date) -> str:
    """A finding's ``status`` in the drop of ``day`` (ICD §4)."""
    return (FindingStatus.NEW if first_seen == day else FindingStatus.OPEN).value


def review_columns(decisions: pd.DataFrame, day: date, found: pd.DataFrame) -> pd.DataFrame:
    """The findings of a drop with their review columns (ICD §4), dismissed ones left out.

    ``decisions`` are those the run for ``day`` counts (:func:`counted_decisions`);
    ``found`` holds findings that hold at the end of the run (``id`` and ``first_seen``
    among its columns). ``status`` is ``new`` when first found on ``day``, else ``open``;
    ``review`` is ``confirmed`` or ``escalated`` or empty; ``note`` is a confirmed case's
    note to the agencies.
    """
    counted = decisions.set_index("finding_id")
    review = found["id"].map(counted["review"])
    dismissed = review.eq(Review.DISMISSED.value).fillna(False).astype(bool)
    shown = review.where(review.isin(SHOWN_REVIEWS))
    note = found["id"].map(counted["note"]).where(review.eq(Review.CONFIRMED.value).fillna(False))
    first_seen = pd.to_datetime(found["first_seen"]).dt.date
    out = found.assign(
        status=first_seen.map(lambda d: _status(d, day)).astype(object),
        review=shown.astype(object).where(shown.notna(), ""),
        note=note.astype(object).where(note.notna(), ""),
    )
    return out.loc[~dismissed.to_numpy()]
