"""End to end: a generated world through the nightly cycle on SQLite, scored against its
ground truth; and ``vhub demo``.

A world of 500 vehicles over three business dates, with every planted rule case, near
miss and intake trouble, goes through ``pipeline.run_cycle`` once per date. What the hub
says (its drops, read as an agency would) must be exactly what the world's ground truth
says: precision and recall 1.0 per rule, the verdicts, every rejection by file, line and
column.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, select
from tests.conftest import write_config

from vehiclehub.cli import main
from vehiclehub.config import Settings, load_settings
from vehiclehub.pipeline import run_cycle
from vehiclehub.review.auth import check_password
from vehiclehub.rules import RULES
from vehiclehub.store import connect
from vehiclehub.store.review import review_users
from vehiclehub.store.schema import feed_table, intake_files
from vehiclehub_samples import World, business_dates, generate_world

pytestmark = pytest.mark.slow


@dataclass
class Run:
    world: World
    settings: Settings
    root: Path
    summaries: list[dict[str, Any]]

    def drops(self, report: str, day: date | None = None) -> pd.DataFrame:
        """Every drop of a report (of one date, or all in date order), as an agency reads it."""
        pattern = f"*/hub_*_{report}_*.csv" if day is None else f"{day}/hub_*_{report}_*.csv"
        paths = sorted((self.root / "work" / "drops").glob(pattern))
        return pd.concat(
            [pd.read_csv(p, dtype=str, keep_default_na=False).assign(_drop=p.name) for p in paths],
            ignore_index=True,
        )


def _run(root: Path, world: World) -> Run:
    settings = load_settings(write_config(root, f"sqlite:///{root / 'hub.db'}"))
    summaries = []
    for day in world.dates:
        world.write_day(day, root / "exchange")
        summaries.append(run_cycle(settings, day).to_dict())
    return Run(world, settings, root, summaries)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    world = generate_world(500, business_dates(date(2025, 11, 3), 3), seed=11, plant_fraction=0.01)
    return _run(tmp_path_factory.mktemp("world"), world)


def _findings(run: Run) -> set[tuple[str, str]]:
    found = run.drops("findings", run.world.dates[-1])
    return set(zip(found["rule_id"], found["record_key"], strict=True))


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_each_rule_finds_exactly_what_was_planted(run: Run, rule_id: str) -> None:
    got = {key for rule, key in _findings(run) if rule == rule_id}
    expected = run.world.truth.expected(rule_id)
    hits = got & expected
    precision = len(hits) / len(got) if got else float(not expected)
    recall = len(hits) / len(expected) if expected else float(not got)
    assert (precision, recall) == (1.0, 1.0), (
        f"{rule_id}: not planted {sorted(got - expected)}, missed {sorted(expected - got)}"
    )


def test_every_planted_rule_is_implemented(run: Run) -> None:
    assert set(run.world.truth.findings["rule_id"]) <= set(RULES)


def test_the_world_plants_the_whole_rulebook(run: Run) -> None:
    """Every rule has planted cases, and fires on them: none passes for want of a case."""
    assert set(run.world.truth.findings["rule_id"]) == set(RULES)
    assert {rule for rule, _ in _findings(run)} == set(RULES)


def test_vin003_proposes_the_typed_over_records_counterparts(run: Run) -> None:
    found = run.drops("findings", run.world.dates[-1])
    proposed = found[found["rule_id"] == "VIN-003"]
    pairs = {
        (key, related)
        for key, listed in zip(proposed["record_key"], proposed["related"], strict=True)
        for related in listed.split(";")
    }
    expected = run.world.truth.expected_candidates()
    assert expected and pairs == expected


def _latest(drops: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    """The current row per key when each drop carries the rows new or changed since."""
    return drops.assign(_key=key).drop_duplicates("_key", keep="last").drop(columns="_key")


def test_police_verdicts(run: Run) -> None:
    drops = run.drops("export_verification")
    overdue = "overdue:" + drops["vin"] + "/" + drops["decl_no"]
    current = _latest(drops, drops["event_id"].where(drops["event_id"] != "", overdue))
    truth = run.world.truth.police_verdicts.fillna("")
    columns = ["event_id", "vin", "verdict", "decl_no"]
    assert set(current[columns].itertuples(index=False, name=None)) == set(
        truth[columns].itertuples(index=False, name=None)
    )


def test_tax_verdicts(run: Run) -> None:
    drops = run.drops("refund_verification")
    current = _latest(drops, drops["refund_no"] + "/" + drops["decl_ref"])
    truth = run.world.truth.tax_verdicts.fillna("")
    columns = ["refund_no", "decl_ref", "vin", "verdict"]
    assert set(current[columns].itertuples(index=False, name=None)) == set(
        truth[columns].itertuples(index=False, name=None)
    )


def test_every_planted_rejection_is_reported_where_it_is(run: Run) -> None:
    drops = run.drops("rejections")
    got = set(zip(drops["file"], drops["line"], drops["column"], strict=True))
    truth = run.world.truth.rejections
    expected = set(
        zip(
            truth["file"],
            truth["line"].astype("string").fillna(""),
            truth["column"].fillna(""),
            strict=True,
        )
    )
    assert got == expected


def test_rejected_personal_values_are_masked(run: Run) -> None:
    drops = run.drops("rejections")
    applicant = drops[drops["column"] == "applicant_id"]
    assert len(applicant) == 1 and applicant["value"].iloc[0].endswith("*" * 12)


def test_resent_waiting_and_unfinished_files(run: Run) -> None:
    truth = run.world.truth
    statuses = {
        f["name"]: f["status"] for s in run.summaries for i in s["intake"] for f in i["files"]
    }
    assert {statuses[name] for name in truth.duplicates["file"]} == {"duplicate"}
    for summary, day in zip(run.summaries, run.world.dates, strict=True):
        waiting = {name for i in summary["intake"] for name in i.get("waiting", [])}
        assert waiting == set(truth.waiting.loc[truth.waiting["business_date"] == day, "file"])
    taken = {name.removesuffix(".part") for name in truth.unfinished} & set(statuses)
    assert not taken
    assert all(list(run.root.glob(f"exchange/*/outbox/{name}")) for name in truth.unfinished)


def test_corrections_replace_the_earlier_version(run: Run) -> None:
    engine = create_engine(run.settings.database_url)
    events = feed_table("police", "events")
    with engine.connect() as conn:
        for row in run.world.truth.corrections.itertuples():
            stored = conn.execute(
                select(events.c.record_version, events.c[row.column]).where(
                    events.c.event_id == row.record_key
                )
            ).one()
            assert tuple(stored) == (row.record_version, row.value)


def test_every_row_is_loaded_or_rejected(run: Run) -> None:
    engine = create_engine(run.settings.database_url)
    with engine.connect() as conn:
        files = pd.DataFrame(conn.execute(select(intake_files)).mappings().all())
    loaded = files[files["status"] == "loaded"]
    assert (
        loaded["rows_read"] == loaded[["rows_loaded", "rows_ignored", "rows_rejected"]].sum(axis=1)
    ).all()
    written = {f.name: len(f.rows()) for f in run.world.files if not f.part}
    assert dict(zip(loaded["name"], loaded["rows_read"], strict=True)).items() <= written.items()


#: How pandas and Python print a missing value; none may reach an operator or an agency.
MISSING = {"nan", "NaN", "None", "NaT", "<NA>"}


class _Text(HTMLParser):
    """The words of a page, outside its tags."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []

    def handle_data(self, data: str) -> None:
        self.words += data.split()


def test_no_missing_value_shows_as_nan_none_or_nat(run: Run) -> None:
    """Every page of the report, every cell of the workbook, every field of every drop
    and drop manifest: a missing value is empty, never pandas' or Python's name for it."""
    shown: list[str] = []
    work = run.root / "work"
    pages = sorted(work.glob("reports/*/index.html"))
    for page in pages:
        words = _Text()
        words.feed(page.read_text(encoding="utf-8"))
        shown += [f"{page}: {w}" for w in words.words if w in MISSING]
    books = sorted(work.glob("reports/*/*.xlsx"))
    for path in books:
        for sheet in load_workbook(path, read_only=True).worksheets:
            for row in sheet.iter_rows(values_only=True):
                # an empty cell reads as None: only text counts
                shown += [
                    f"{path.name}/{sheet.title}: {v}"
                    for v in row
                    if str(v) in MISSING and isinstance(v, str)
                ]
    drops = sorted(work.glob("drops/*/hub_*.csv"))
    for path in drops:
        with path.open(encoding="utf-8", newline="") as f:
            shown += [f"{path.name}: {v}" for row in csv.reader(f) for v in row if v in MISSING]
        manifest = json.loads(path.with_name(path.name[:-4] + ".manifest.json").read_text())
        shown += [f"{path.name} manifest: {v}" for v in manifest.values() if str(v) in MISSING]
    assert len(pages) == len(books) == 3 and len(drops) >= 30
    assert shown == []


def test_a_clean_world_gives_no_findings(tmp_path: Path) -> None:
    world = generate_world(200, [date(2025, 11, 3)], seed=2, plant_fraction=0, noise=False)
    clean = _run(tmp_path, world)
    assert _findings(clean) == set()
    assert clean.drops("rejections").empty
    verdicts = clean.summaries[-1]["reconcile"]["verdicts"]
    assert set(verdicts["export_verification"]) == {"verified"}
    assert set(verdicts["refund_verification"]) == {"verified"}


def test_vhub_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dir", str(tmp_path), "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert "demo finished: 2 business dates" in out
    assert ", 0 not planted" in out
    summary = out.split("demo finished:")[1]
    for rule_id in RULES:  # every rule of RULES.md fires in the demo
        assert re.search(rf"^    {rule_id} +[1-9][0-9]*  ", summary, re.MULTILINE), rule_id
    proposed = re.search(r"VIN-003 proposed (\d+) candidates, (\d+) of the (\d+) expected", out)
    assert proposed is not None and int(proposed[3]) > 0
    assert proposed[1] == proposed[2] == proposed[3]
    inbox = tmp_path / "exchange"
    drops = [
        pd.read_csv(p, dtype=str, keep_default_na=False)
        for p in inbox.glob("*/inbox/hub_*_findings_20251104_*.csv")
    ]
    assert set(pd.concat(drops)["rule_id"]) == set(RULES)
    assert (tmp_path / "work" / "reports" / "2025-11-04" / "index.html").is_file()
    assert list((tmp_path / "exchange" / "police" / "inbox").glob("hub_police_findings_*.csv"))
    assert re.search(
        r"customs_declarations_20251103_\d{3}\.csv: REJECTED WHOLE, invalid signature", out
    )
    assert "signed: drops with key" in out and "(signing_key_file)" in out
    assert main(["audit", "verify", "--config", str(tmp_path / "hub.toml")]) == 0
    assert "exchange log intact" in capsys.readouterr().out  # after two nights
    config = (tmp_path / "hub.toml").read_text()
    # The demo ends by saying how to open the review desk, as a user whose password works.
    desk = re.search(r'vhub serve --config (\S+), .*\n.*operator "demo", password (\S+) ', out)
    assert desk is not None and desk[1] == str(tmp_path / "hub.toml")
    engine = connect(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.connect() as conn:
        hashed = conn.execute(
            select(review_users.c.password_hash).where(review_users.c.name == "demo")
        ).scalar_one()
    engine.dispose()
    assert check_password(desk[2], hashed)

    assert main(["demo", "--dir", str(tmp_path), "--days", "1"]) == 0
    assert (tmp_path / "hub.toml").read_text() != config  # afresh, with a new pseudonym key
    assert not (tmp_path / "work" / "reports" / "2025-11-04").exists()


@pytest.mark.sshd
def test_vhub_demo_over_sftp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/usr/sbin/sshd").exists() or os.geteuid() != 0:
        pytest.skip("needs root and OpenSSH's sshd")
    assert main(["demo", "--dir", str(tmp_path), "--days", "1", "--sftp"]) == 0
    out = capsys.readouterr().out
    assert "behind sshd on 127.0.0.1" in out and ", 0 not planted" in out
    assert list((tmp_path / "exchange" / "tax" / "inbox").glob("hub_tax_findings_*.csv"))
