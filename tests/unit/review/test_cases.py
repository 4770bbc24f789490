"""Decision semantics on the store: validation, evidence, lapse, the run's cut-off."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, insert, update

from vehiclehub.review.cases import (
    CaseError,
    Decision,
    assign,
    counted_decisions,
    decide,
    lapse_changed,
    mark_run,
    mask_personal,
    reopen,
    review_columns,
    validate,
)
from vehiclehub.review.evidence import record_versions
from vehiclehub.store import connect, feed_table
from vehiclehub.store.review import review_users
from vehiclehub.store.schema import findings

D1, D2 = date(2025, 11, 3), date(2025, 11, 4)
VIN = "LSVAM4187C2184847"
DECL = "530420250040970934"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    made = connect(url)
    request.addfinalizer(made.dispose)
    return made


def _store(engine: Engine) -> int:
    """A police event and a customs item, a finding on the event citing the item, and
    two users; the finding's id."""
    common = {"record_status": "active", "content_hash": 1, "file_id": 1, "line": 2}
    vin = {"vin": VIN, "vin_raw": VIN, "vin_substituted": False, "vin_check_ok": True}
    with engine.begin() as conn:
        conn.execute(
            insert(feed_table("police", "events")).values(
                event_id="E1", record_version=1, **vin, **common
            )
        )
        conn.execute(
            insert(feed_table("customs", "declarations")).values(
                decl_no=DECL, item_no=1, record_version=3, **vin, **common
            )
        )
        now = datetime.now(UTC)
        conn.execute(
            insert(review_users),
            [
                {"name": n, "password_hash": "-", "role": r, "agencies": "", "created_at": now}
                for n, r in (("op1", "operator"), ("boss", "supervisor"))
            ],
        )
        return int(
            conn.execute(
                insert(findings).values(
                    identity="x" * 64,
                    rule_id="EXP-002",
                    severity="error",
                    vin=VIN,
                    agency="police",
                    record_key="E1",
                    related=f"customs:{DECL}/1",
                    detail="exported after deregistration",
                    first_seen=D1,
                    last_seen=D2,
                )
            ).inserted_primary_key[0]
        )


def _drop(engine: Engine, case: int, day: date = D2) -> pd.DataFrame:
    found = pd.DataFrame({"id": [case], "first_seen": [D1.isoformat()]})
    with engine.connect() as conn:
        return review_columns(counted_decisions(conn, day), day, found)


def test_masking_keeps_six_characters_of_every_id_shaped_run() -> None:
    assert mask_personal("申请人110101199003077777已核") == "申请人110101************已核"
    assert mask_personal("id 1101 0119 9003 077") == "id 1101 01** **** ***"
    assert mask_personal("x11010119900307777X") == "x110101************"
    # Near misses: 16 digits, and a 21-digit declaration reference, are not id-shaped.
    assert mask_personal("1234567890123456") == "1234567890123456"
    assert mask_personal(f"{DECL}001") == f"{DECL}001"


def test_decisions_are_validated(engine: Engine) -> None:
    _store(engine)
    with engine.connect() as conn:
        for bad, message in [
            (Decision("maybe"), "review"),
            (Decision("dismissed"), "reason"),
            (Decision("dismissed", "other"), "note"),
            (Decision("confirmed", "false_positive"), "only a dismissal"),
            (Decision("escalated", assignee="op1"), "not a supervisor"),
            (Decision("confirmed", note="two\nlines"), "one line"),
            (Decision("confirmed", note="长" * 501), "at most 500"),
        ]:
            with pytest.raises(CaseError, match=message):
                validate(conn, bad)
        assert validate(conn, Decision("escalated", note=" ok ", assignee="boss")) == Decision(
            "escalated", None, "ok", "boss"
        )
        assert validate(conn, Decision("confirmed", note="长" * 500)).note == "长" * 500


def test_a_dismissal_holds_while_the_cited_records_keep_their_versions(engine: Engine) -> None:
    case = _store(engine)
    with engine.connect() as conn:
        assert record_versions(conn, ["police:E1", f"customs:{DECL}/1", "tax:R9/1"]) == {
            "police:E1": "events@1",
            f"customs:{DECL}/1": "declarations@3",
            "tax:R9/1": "absent",
        }
    with engine.begin() as conn:
        decide(conn, case, "op1", Decision("dismissed", "false_positive"))
        with pytest.raises(CaseError, match="already dismissed") as refused:
            decide(conn, case, "op1", Decision("confirmed"))
        assert refused.value.status == 409
    assert _drop(engine, case).empty
    with engine.begin() as conn:
        assert lapse_changed(conn) == 0
        table = feed_table("customs", "declarations")
        conn.execute(update(table).values(record_version=4))
    shown = _drop(engine, case)
    assert shown[["status", "review", "note"]].to_dict("records") == [
        {"status": "open", "review": "", "note": ""}
    ]
    with engine.begin() as conn:
        assert lapse_changed(conn) == 1
        assert lapse_changed(conn) == 0


def test_a_run_counts_only_decisions_made_before_it_began(engine: Engine) -> None:
    case = _store(engine)
    with engine.begin() as conn:
        mark_run(conn, D2, datetime.now(UTC) - timedelta(minutes=5))
        decide(conn, case, "op1", Decision("confirmed", note="请更正"))
    assert _drop(engine, case)["review"].tolist() == [""]
    with engine.begin() as conn:
        mark_run(conn, D2)
    assert _drop(engine, case)[["status", "review", "note"]].to_dict("records") == [
        {"status": "open", "review": "confirmed", "note": "请更正"}
    ]


def test_a_supervisor_reopens_and_an_escalated_case_goes_to_a_supervisor(engine: Engine) -> None:
    case = _store(engine)
    with engine.begin() as conn:
        assign(conn, case, "op1", "op1")
        decide(conn, case, "op1", Decision("escalated", note="请主管确认", assignee="boss"))
        decide(conn, case, "boss", Decision("confirmed"), supervisor=True)
        reopen(conn, case, "boss")
        with pytest.raises(CaseError, match="not decided"):
            reopen(conn, case, "boss")
        decide(conn, case, "op1", Decision("dismissed", "duplicate_case"))
        with pytest.raises(CaseError, match="not an operator"):
            assign(conn, case, "op1", "nobody")
