"""Quality gates, completeness and the operator's report, through the whole cycle."""

from __future__ import annotations

import json
import os
import random
import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from tests.factories import Vehicle, read_drop, send

from vehiclehub.config import Settings, load_settings
from vehiclehub.pipeline import _docs, intake_agency, run_cycle
from vehiclehub.publish.report import write_report
from vehiclehub.quality.datadocs import DocsBuild, DocsFailed, build_run_docs
from vehiclehub.store import connect
from vehiclehub.store.schema import (
    expectation_results,
    feed_table,
    intake_files,
    quality_validations,
)
from vehiclehub.summary import format_summary, intake_lines
from vehiclehub_samples.identifiers import make_vin

D1 = date(2025, 11, 3)


def _root(settings: Settings) -> Path:
    return settings.work_dir.parent


def declaration_items(count: int, day: date, first: int = 0) -> list[dict[str, Any]]:
    """``count`` valid customs items of as many vehicles, with distinct declaration numbers."""
    rng = random.Random(first)
    template = Vehicle().item(
        declared_at=(day - timedelta(days=3)).isoformat(),
        exported_at=(day - timedelta(days=1)).isoformat(),
    )
    return [
        template | {"decl_no": f"530420250{first + i:09d}", "vin": make_vin(rng)}
        for i in range(count)
    ]


def _send_normal_days(settings: Settings, days: int, rows: int) -> date:
    """``days`` business dates of customs files of ``rows`` rows each; the next date."""
    day = D1
    for n in range(days):
        send(
            _root(settings),
            "customs",
            "declarations",
            declaration_items(rows, day, first=n * rows),
            day=day,
        )
        (outcome,) = intake_agency(settings, "customs", day).to_dict()["files"]
        assert outcome["status"] == "loaded", outcome
        day += timedelta(days=1)
    return day


def _count(settings: Settings, agency: str, feed: str) -> int:
    with connect(settings.database_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(feed_table(agency, feed))).scalar()


def _results(settings: Settings, name: str) -> dict[str, dict[str, Any]]:
    with connect(settings.database_url).connect() as conn:
        rows = conn.execute(
            select(expectation_results)
            .join(intake_files, intake_files.c.id == expectation_results.c.file_id)
            .where(intake_files.c.name == name)
        )
        return {r.expectation: dict(r._mapping) for r in rows}


def test_a_truncated_customs_file_is_rejected_whole_naming_the_expectation(
    settings: Settings,
) -> None:
    day = _send_normal_days(settings, days=4, rows=300)
    before = _count(settings, "customs", "declarations")
    send(
        _root(settings),
        "customs",
        "declarations",
        declaration_items(90, day, first=10_000),
        day=day,
    )
    run = run_cycle(settings, day)
    summary = run.to_dict()

    (outcome,) = next(i for i in summary["intake"] if i["agency"] == "customs")["files"]
    assert outcome["status"] == "rejected"
    assert 'critical expectation "volume_not_truncated"' in outcome["error"]
    assert (
        "90 rows (limit 100: median 300 rows of the last 4 loaded first files)"
        in (outcome["error"])
    )
    assert _count(settings, "customs", "declarations") == before  # nothing of it loaded
    drop = read_drop(_root(settings), "customs", "rejections", day)
    assert len(drop) == 1
    row = drop.iloc[0]
    assert (row["file"], row["line"], row["column"], row["value"]) == (
        f"customs_declarations_{day:%Y%m%d}_001.csv",
        "",
        "",
        "",
    )
    assert "volume_not_truncated" in row["error"]
    results = _results(settings, row["file"])
    assert results["volume_not_truncated"]["outcome"] == "failed"
    assert results["volume_not_truncated"]["severity"] == "critical"
    text = format_summary(run)
    assert "REJECTED WHOLE" in text and "volume_not_truncated" in text
    report = (settings.reports_dir / day.isoformat() / "index.html").read_text()
    assert "volume_not_truncated" in report
    # The feed sent a file, but none loaded: rejected, not "not received".
    states = {(f["agency"], f["feed"]): f["state"] for f in summary["completeness"]["feeds"]}
    assert states["customs", "declarations"] == "rejected"


def test_a_normal_day_after_history_passes_the_volume_check(settings: Settings) -> None:
    day = _send_normal_days(settings, days=3, rows=200)
    send(
        _root(settings),
        "customs",
        "declarations",
        declaration_items(180, day, first=9_000),
        day=day,
    )
    (outcome,) = intake_agency(settings, "customs", day).to_dict()["files"]
    assert outcome["status"] == "loaded"
    results = _results(settings, outcome["name"])
    assert results["volume_not_truncated"]["outcome"] == "passed"
    assert results["volume_not_inflated"]["outcome"] == "passed"


def test_a_file_of_exactly_10000_rows_loads_with_a_warning(settings: Settings) -> None:
    send(_root(settings), "customs", "declarations", declaration_items(10_000, D1))
    result = intake_agency(settings, "customs", D1)
    (outcome,) = result.files
    assert (outcome.status, outcome.loaded) == ("loaded", 10_000)
    assert outcome.warnings == ["not_cut_at_10000_rows"]
    assert _count(settings, "customs", "declarations") == 10_000
    results = _results(settings, outcome.name)
    assert results["not_cut_at_10000_rows"] | {"file_id": None} == {
        "file_id": None,
        "expectation": "not_cut_at_10000_rows",
        "type": "expect_table_row_count_to_not_equal",
        "column": None,
        "severity": "warning",
        "outcome": "failed",
        "observed": "10,000 rows",
        "unexpected_count": None,
        "element_count": None,
        "description": results["not_cut_at_10000_rows"]["description"],
    }
    # History is too short for the volume checks: recorded as skipped, not passed.
    assert results["volume_not_truncated"]["outcome"] == "skipped"
    assert f"    {outcome.name}: quality warnings: not_cut_at_10000_rows" in intake_lines(result)


def test_a_missing_seq_shows_as_missing(settings: Settings) -> None:
    root = _root(settings)
    send(root, "customs", "declarations", [Vehicle().item()], seq=1)
    send(root, "customs", "declarations", [Vehicle().item()], seq=3)
    run = run_cycle(settings, D1)
    summary = run.to_dict()
    (gap,) = summary["completeness"]["gaps"]
    assert gap == {
        "agency": "customs",
        "feed": "declarations",
        "business_date": "2025-11-03",
        "missing": [2],
        "files": ["customs_declarations_20251103_002.csv"],
    }
    assert "missing file number(s): customs_declarations_20251103_002.csv" in format_summary(run)
    report = (settings.reports_dir / D1.isoformat() / "index.html").read_text()
    assert "customs_declarations_20251103_002.csv" in report
    # The file arrives late: the gap closes.
    send(root, "customs", "declarations", [Vehicle().item()], seq=2)
    later = run_cycle(settings, D1 + timedelta(days=1)).to_dict()
    assert later["completeness"]["gaps"] == []
    assert later["completeness"]["late"][0]["file"] == "customs_declarations_20251103_002.csv"


def test_a_feed_not_sent_shows_as_not_received(settings: Settings) -> None:
    root = _root(settings)
    v = Vehicle()
    send(root, "customs", "declarations", [v.item()])
    send(root, "police", "events", [v.export_deregistration("E1")])
    run = run_cycle(settings, D1)
    summary = run.to_dict()
    completeness = summary["completeness"]
    assert completeness["expected"] == 6 and completeness["received"] == 2
    assert completeness["not_received"] == [
        "commerce/enterprises",
        "commerce/licences",
        "commerce/tradein_claims",
        "tax/refunds",
    ]
    states = {(f["agency"], f["feed"]): f for f in completeness["feeds"]}
    assert states["tax", "refunds"]["state"] == "not received"
    assert states["tax", "refunds"]["detail"] == "no file for 2025-11-03 by this run"
    text = format_summary(run)
    assert "completeness: 2 of 6 expected feeds received" in text
    assert (
        "not received: commerce/enterprises, commerce/licences, commerce/tradein_claims, "
        "tax/refunds" in text
    )
    # The agency itself answered: its exchange status stays "received".
    (tax_line,) = [line for line in text.splitlines() if line.strip().startswith("tax ")]
    assert "NOT RECEIVED" not in tax_line
    report = (settings.reports_dir / D1.isoformat() / "index.html").read_text()
    assert '<span class="state state-not-received">not received</span>' in report


def test_expected_feeds_come_from_the_configuration(tmp_path: Path) -> None:
    from tests.conftest import write_config

    config = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'hub.db'}",
        **{"quality.expected_feeds": '{ commerce = ["licences"], tax = [] }'},
    )
    settings = load_settings(config)
    send(tmp_path, "commerce", "licences", [Vehicle().licence()])
    run = run_cycle(settings, D1)
    summary = run.to_dict()
    expected = {(f["agency"], f["feed"]) for f in summary["completeness"]["feeds"]}
    assert expected == {
        ("commerce", "licences"),
        ("police", "events"),
        ("customs", "declarations"),
    }
    assert summary["completeness"]["not_received"] == ["police/events", "customs/declarations"]


def test_data_docs_are_built_linked_and_hold_no_resident_id(settings: Settings) -> None:
    root = _root(settings)
    owner, applicant = Vehicle(), Vehicle()
    send(root, "police", "events", [owner.event("E1", "register", "2023-03-01")])
    claim = {
        "claim_no": "C20251103001",
        "claim_type": "scrap",
        "applicant_id": applicant.person,
        "old_vin": applicant.vin,
        "new_vin": Vehicle().vin,
        "amount_cny": "20000.00",
        "applied_at": "2025-10-30",
    }
    bad_claim = claim | {"claim_no": "C20251103002", "applicant_id": owner.person[:-1] + "Q"}
    send(root, "commerce", "tradein_claims", [claim, bad_claim])
    run_cycle(settings, D1)
    folder = settings.reports_dir / D1.isoformat()
    report = (folder / "index.html").read_text()
    assert 'href="datadocs/index.html"' in report
    index = (folder / "datadocs" / "index.html").read_text()
    assert "commerce_tradein_claims_20251103_001.csv" in index
    pages = list((folder / "datadocs" / "validations").rglob("*.html"))
    assert len(pages) == 2
    for page in pages:
        assert f'href="{page.relative_to(folder).as_posix()}"' in report
    # Each validation page names the feed's data asset in its overview, never "None".
    assets = [re.findall(r"Data asset:\s*([^<\s]*)", p.read_text()) for p in pages]
    assert sorted(assets) == [["commerce_tradein_claims"], ["police_events"]]
    needles = [owner.person, applicant.person, owner.person[:-1] + "Q"]
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".xlsx":
            text = path.read_bytes()
            assert not any(n.encode() in text for n in needles), path
    with connect(settings.database_url).connect() as conn:
        stored = " ".join(r for (r,) in conn.execute(select(quality_validations.c.result_json)))
    assert stored and not any(n in stored for n in needles)
    # Offline: scripts and stylesheets only from the site itself (its vendored copies).
    for page in [folder / "datadocs" / "index.html", *pages]:
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page.read_text()), page
    assert '<script src="../../../../static/vendor/jquery-3.7.1/jquery.min.js">' in (
        pages[0].read_text()
    )


def test_the_workbook_keeps_identifiers_as_text(settings: Settings) -> None:
    root = _root(settings)
    ok, missing, early = Vehicle(), Vehicle(), Vehicle()
    send(root, "customs", "declarations", [ok.item(), early.item()])
    send(
        root,
        "police",
        "events",
        [
            ok.export_deregistration("E1"),
            missing.export_deregistration("E2"),
            early.export_deregistration("E3", event_date="2025-10-01"),
        ],
    )
    send(root, "tax", "refunds", [ok.refund("R1"), missing.refund("R2")])
    run_cycle(settings, D1)
    path = settings.reports_dir / D1.isoformat() / "vehiclehub_20251103.xlsx"
    report = (settings.reports_dir / D1.isoformat() / "index.html").read_text()
    assert 'href="vehiclehub_20251103.xlsx"' in report
    book = load_workbook(path)
    assert book.sheetnames[0] == "summary"

    def cells(sheet: str, value: str) -> list[Any]:
        return [c for row in book[sheet].iter_rows() for c in row if c.value == value]

    assert len(early.decl_no) == 18 and len(missing.decl_ref) == 21
    # Verdicts needing action are listed (before_export names the item), verified ones counted.
    (decl_no,) = cells("export_verification", early.decl_no)
    (decl_ref,) = cells("refund_verification", missing.decl_ref)
    assert not cells("export_verification", ok.decl_no)
    assert not cells("refund_verification", ok.decl_ref)
    for cell in (decl_no, decl_ref, *cells("export_verification", early.vin)):
        assert (cell.data_type, cell.number_format) == ("s", "@"), cell.coordinate
        assert isinstance(cell.value, str)
    finding = cells("findings", "EXP-001")
    assert finding, "the findings sheet lists the EXP-001 finding on E2"
    header = [c.value for c in book["findings"][1]]
    row = dict(zip(header, [c.value for c in book["findings"][finding[0].row]], strict=True))
    assert (row["record_key"], row["status"], row["agencies"]) == ("E2", "new", "police")


def test_the_summary_json_is_serialisable(settings: Settings) -> None:
    send(_root(settings), "customs", "declarations", [Vehicle().item()])
    run = run_cycle(settings, D1)
    summary = run.to_dict()
    json.dumps(summary)


@pytest.mark.postgres
def test_gates_and_report_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    from tests.conftest import write_config

    settings = load_settings(write_config(tmp_path, pg_url))
    send(tmp_path, "customs", "declarations", declaration_items(10_000, D1))
    send(tmp_path, "customs", "declarations", [Vehicle().item()], seq=3)
    run = run_cycle(settings, D1)
    summary = run.to_dict()
    (first, _third) = next(i for i in summary["intake"] if i["agency"] == "customs")["files"]
    assert first["warnings"] == ["not_cut_at_10000_rows"]
    assert summary["completeness"]["gaps"][0]["missing"] == [2]
    assert (settings.reports_dir / D1.isoformat() / "datadocs" / "index.html").is_file()


def _site(folder: Path) -> dict[str, bytes]:
    """A Data Docs site's files, by path; the times and GX's random element ids left out."""
    varying = rb"\d{4}-\d\d-\d\dT[\d:.+-]+|[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}"
    return {
        p.relative_to(folder).as_posix(): re.sub(varying, b"", p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_data_docs_built_by_their_own_process_are_those_built_in_the_publish(
    settings: Settings,
) -> None:
    root = _root(settings)
    send(root, "police", "events", [Vehicle().event("E1", "register", "2023-03-01")])
    send(root, "customs", "declarations", declaration_items(3, D1))
    run_cycle(settings, D1)
    engine = connect(settings.database_url)
    built = DocsBuild.start(engine, settings.reports_dir, D1)
    assert built.process.pid != os.getpid()
    docs = built.result()
    assert docs is not None and len(docs.pages) == 2
    assert not built.folder.exists()
    site = settings.reports_dir / D1.isoformat() / "datadocs"
    theirs = _site(site)
    mine = build_run_docs(engine, settings.reports_dir, D1)
    assert mine is not None and mine.pages == docs.pages
    assert _site(site) == theirs


def test_a_failed_data_docs_process_is_named_in_the_report(settings: Settings) -> None:
    root = _root(settings)
    send(root, "police", "events", [Vehicle().event("E1", "register", "2023-03-01")])
    run_cycle(settings, D1)
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        conn.execute(quality_validations.update().values(result_json='{"results": ['))
    with pytest.raises(DocsFailed, match=r"JSONDecodeError|ValidationError"):
        DocsBuild.start(engine, settings.reports_dir, D1).result()
    report = write_report(
        engine, settings, D1, {}, docs_build=DocsBuild.start(engine, settings.reports_dir, D1)
    ).read_text()
    assert "Data Docs could not be built" in report and "DocsFailed" in report


def test_a_data_docs_process_cancelled_stops_and_leaves_nothing(settings: Settings) -> None:
    root = _root(settings)
    send(root, "police", "events", [Vehicle().event("E1", "register", "2023-03-01")])
    run_cycle(settings, D1)
    built = DocsBuild.start(connect(settings.database_url), settings.reports_dir, D1)
    built.cancel()
    assert built.process.poll() is not None and not built.folder.exists()


def test_a_publish_builds_the_data_docs_aside_only_where_gx_is_not_loaded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that has loaded GX renders them itself; one that has not (a publish task,
    a run whose intake had a worker) leaves loading it to the Data Docs process."""
    root = _root(settings)
    send(root, "police", "events", [Vehicle().event("E1", "register", "2023-03-01")])
    run_cycle(settings, D1)
    engine = connect(settings.database_url)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setitem(sys.modules, "great_expectations", sys.modules.get("great_expectations"))
    with _docs(engine, settings, D1) as docs:
        assert docs is None
    monkeypatch.delitem(sys.modules, "great_expectations")
    with _docs(engine, settings, D1) as docs:
        assert isinstance(docs, DocsBuild)
        assert docs.result() is not None
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    with _docs(engine, settings, D1) as docs:
        assert docs is None
