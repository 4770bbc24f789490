"""The nightly cycle as a whole: idempotent re-runs, drop format, verdict changes, PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path

import pytest
from tests.conftest import write_config
from tests.factories import Vehicle, read_drop, send

from vehiclehub.cli import main
from vehiclehub.config import Settings, load_settings
from vehiclehub.pipeline import run_cycle

D1, D2 = date(2025, 11, 3), date(2025, 11, 4)


def _story(root: Path) -> tuple[Vehicle, Vehicle, Vehicle]:
    """Three vehicles: verified, deregistered without export, and a bad row."""
    ok, missing, other = Vehicle(), Vehicle(), Vehicle()
    send(root, "commerce", "enterprises", [ok.filing(), missing.filing()])
    send(root, "commerce", "licences", [ok.licence(), missing.licence()])
    send(root, "customs", "declarations", [ok.item(), other.item(vin="NOT-A-VIN")])
    send(
        root,
        "police",
        "events",
        [
            ok.event("E0", "register", "2023-03-01"),
            ok.export_deregistration("E1"),
            missing.export_deregistration("E2"),
        ],
    )
    send(root, "tax", "refunds", [ok.refund("R1"), missing.refund("R2")])
    return ok, missing, other


def _drop_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "exchange").glob("*/inbox/hub_*.csv"))}


def test_running_a_date_again_gives_the_same_drops(settings: Settings) -> None:
    root = settings.work_dir.parent
    _story(root)
    run_cycle(settings, D1)
    first = _drop_bytes(root)
    run_cycle(settings, D1)
    assert _drop_bytes(root) == first
    assert len(first) == 11  # findings and rejections for four, three reports
    assert b"NOT-A-VIN" in first["hub_customs_rejections_20251103_001.csv"]


def test_drops_follow_the_icd_format(settings: Settings) -> None:
    root = settings.work_dir.parent
    _ok, _missing, _ = _story(root)
    run_cycle(settings, D1)
    inbox = root / "exchange" / "police" / "inbox"
    data = (inbox / "hub_police_export_verification_20251103_001.csv").read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.splitlines()[0] == b"event_id,vin,verdict,decl_no,exported_at,rule_ids"
    manifest = json.loads(
        (inbox / "hub_police_export_verification_20251103_001.manifest.json").read_text()
    )
    assert manifest["signature"]["alg"] == "Ed25519"  # ICD §6, tested in test_signed_drops
    assert manifest["log_head"]["seq"] > 0  # every file taken was logged before the drop
    del manifest["signature"], manifest["log_head"]
    assert manifest | {"generated_at": None} == {
        "file": "hub_police_export_verification_20251103_001.csv",
        "agency": "police",
        "feed": "export_verification",
        "business_date": "2025-11-03",
        "seq": 1,
        "rows": 2,
        "sha256": hashlib.sha256(data).hexdigest(),
        "encoding": "utf-8",
        "schema_version": "1",
        "generated_at": None,
        "missing_evidence": [],  # every agency sent files for the date
    }
    assert manifest["generated_at"].endswith("+08:00")
    assert not list(root.glob("exchange/*/inbox/*.part"))
    verdicts = read_drop(root, "police", "export_verification").set_index("event_id")
    assert verdicts.loc["E1", "verdict"] == "verified"
    assert verdicts.loc["E2", "verdict"] == "no_export"
    for agency, header in {
        "customs": "file,line,column,value,error",
        "commerce": "rule_id,severity,vin,record_key,related,detail,status,review,note",
    }.items():
        name = "rejections" if agency == "customs" else "findings"
        text = (root / f"exchange/{agency}/inbox/hub_{agency}_{name}_20251103_001.csv").read_text()
        assert text.splitlines()[0] == header


def test_verification_drops_carry_only_new_or_changed_verdicts(settings: Settings) -> None:
    root = settings.work_dir.parent
    _ok, missing, _ = _story(root)
    run_cycle(settings, D1)
    assert len(read_drop(root, "police", "export_verification", D1)) == 2
    assert len(read_drop(root, "tax", "refund_verification", D1)) == 2
    # Next day customs clears the missing vehicle's export; a new deregistration arrives.
    late = Vehicle()
    send(root, "customs", "declarations", [missing.item()], day=D2)
    send(root, "police", "events", [late.export_deregistration("E3")], day=D2)
    run_cycle(settings, D2)
    police = read_drop(root, "police", "export_verification", D2)
    assert sorted(zip(police["event_id"], police["verdict"], strict=True)) == [
        ("E2", "verified"),
        ("E3", "no_export"),
    ]
    tax = read_drop(root, "tax", "refund_verification", D2)
    assert tax[["refund_no", "verdict"]].values.tolist() == [["R2", "verified"]]
    # Findings list everything that holds, rejections only the files of the day's run.
    assert read_drop(root, "police", "findings", D2)["record_key"].tolist() == ["E3"]
    assert read_drop(root, "customs", "rejections", D2).empty


@pytest.mark.postgres
def test_postgresql_gives_the_same_drops_as_sqlite(tmp_path: Path, pg_url: str) -> None:
    results = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'sqlite' / 'hub.db'}"), ("pg", pg_url)):
        root = tmp_path / name
        root.mkdir()
        settings = load_settings(write_config(root, url))
        import random

        from tests import factories

        factories.RNG = random.Random(7)
        _story(root)
        run_cycle(settings, D1)
        results[name] = _drop_bytes(root)
    assert results["pg"] == results["sqlite"]
    assert any(b"EXP-001" in data for data in results["pg"].values())


def test_cli_run_prints_a_summary(hub_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _story(hub_config.parent)
    assert main(["run", "--config", str(hub_config), "--date", "2025-11-03"]) == 0
    out = capsys.readouterr().out
    assert "customs" in out and "1 rejected" in out
    assert "EXP-001" in out and "report:" in out
    took = next(line for line in out.splitlines() if line.strip().startswith("took:"))
    assert re.fullmatch(r"\s+took:\s+intake [\d.]+ s, reconcile [\d.]+ s, publish [\d.]+ s", took)


def test_cli_says_what_to_fix_when_the_run_cannot_proceed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--config", str(tmp_path / "missing.toml"), "--date", "2025-11-03"]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = write_config(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert main(["run", "--config", str(bad), "--date", "2025-11-03"]) == 2
    err = capsys.readouterr().err
    assert "cannot use the store" in err and "database_url" in err
    invalid = tmp_path / "invalid.toml"
    invalid.write_text('database_url = "sqlite://"\nwork_dir = "relative"\n')
    assert main(["run", "--config", str(invalid), "--date", "2025-11-03"]) == 2
    err = capsys.readouterr().err
    assert "work_dir" in err and "pseudonym_key" in err and "agencies" in err


def _intake_in_process(config: str, agency: str) -> str:
    from vehiclehub.pipeline import intake_agency

    return str(intake_agency(load_settings(config), agency, D1).to_dict()["status"])


def test_agencies_can_be_taken_in_parallel_on_a_fresh_store(hub_config: Path) -> None:
    """As Airflow runs the four intake tasks: separate processes, one new SQLite store."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    _story(hub_config.parent)
    agencies = ["commerce", "police", "customs", "tax"]
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        statuses = list(pool.map(_intake_in_process, [str(hub_config)] * 4, agencies))
    assert statuses == ["received"] * 4
    settings = load_settings(hub_config)
    from vehiclehub.pipeline import publish, reconcile

    assert reconcile(settings, D1).to_dict()["per_rule"]["EXP-001"] == 1
    publish(settings, D1)
    assert len(read_drop(hub_config.parent, "customs", "rejections")) == 1
