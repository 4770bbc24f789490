"""The whole rulebook over one store: every rule fires, and PostgreSQL agrees with SQLite."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import write_config
from tests.factories import RNG, Vehicle

from vehiclehub import pipeline
from vehiclehub.config import RuleParameters, load_settings
from vehiclehub.rules import RULES
from vehiclehub.rules.subsidy import export_subsidy
from vehiclehub.store import connect
from vehiclehub.store.schema import findings as findings_table
from vehiclehub_samples.identifiers import make_resident_id

from .test_quality import substituted, swapped, valid
from .world import D, World, evaluation


def every_rule_world() -> World:
    """A store where each rule of RULES.md fires at least once, among clean vehicles."""
    w = World()
    for _ in range(3):
        w.vehicle()
    # EXP-001, EXP-002, EXP-003
    w.event(lone := Vehicle(), "deregister", "2025-10-20", dereg_reason="export")
    w.vehicle(early := Vehicle(), dereg={"event_date": "2025-10-01"})
    w.add("item", Vehicle().item(exported_at="2025-08-01"))
    # LIC-001..005
    w.add("item", Vehicle().item())
    w.vehicle(item={"declared_at": "2025-09-20"})
    w.vehicle(item={"uscc": Vehicle().uscc})
    w.add("licence", Vehicle().licence())
    w.add("item", (twice := Vehicle()).item(), twice.item(decl_no="020120250000000888"))
    # LIC-006, LIC-007, POL-001..003
    w.vehicle(pending={"model": "秦PLUS DM-i"})
    w.vehicle(licence={"registration_date": "2025-06-01"})
    w.event(Vehicle(), "transfer_pending_export", "2025-07-01")
    resold = w.vehicle()
    w.event(resold["vehicle"], "transfer", "2025-10-01", owner_id=make_resident_id(RNG))
    w.vehicle(pending={"owner_id": Vehicle().uscc})
    # TAX-001..004
    w.add("refund", Vehicle().refund(w.serial("R")))
    w.vehicle(item={"record_status": "cancelled"})
    claimed = w.vehicle()
    w.add("refund", claimed["vehicle"].refund(w.serial("R")))
    w.vehicle(refund={"uscc": Vehicle().uscc})
    # TRD-001..005
    w.claim(Vehicle().vin, Vehicle().vin, claim_type="scrap")
    scrapped = w.vehicle()
    w.event(scrapped["vehicle"], "deregister", "2025-05-01", dereg_reason="scrap")
    w.claim(Vehicle().vin, Vehicle().vin)
    same = Vehicle().vin
    w.claim(same, Vehicle().vin, claim_type="scrap")
    w.claim(same, Vehicle().vin, claim_type="scrap")
    bought = Vehicle()
    w.claim(Vehicle().vin, bought.vin, applied_at="2025-08-01")
    w.event(bought, "transfer_pending_export", "2025-10-01")
    # VIN-001 (both VINs of a claim), VIN-002, VIN-003
    w.claim(
        valid("LSVAB2100R3100527").replace("0", "O"), valid("LFV1A21K1N3123411").replace("1", "I")
    )
    w.add("licence", Vehicle(vin=substituted(valid("LSVCD3200R3100999"), 8, "X")).licence())
    typo = Vehicle()
    w.vehicle(typo, item={"vin": swapped(typo.vin, 3 if typo.vin[3] != typo.vin[4] else 4)})
    # SLA-001, SLA-002
    w.vehicle(licence={"applied_at": "2025-09-30", "issued_at": "2025-10-13"})
    w.vehicle(refund={"applied_at": "2025-09-30", "approved_at": "2025-10-13"})
    del lone, early
    return w


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), ignore_index=True)


def test_every_rule_fires(settings) -> None:  # type: ignore[no-untyped-def]
    every_rule_world().load(settings)
    found = evaluation(settings).findings
    assert set(found["rule_id"]) == set(RULES)


@pytest.mark.postgres
def test_postgresql_and_sqlite_find_the_same(tmp_path: Path, pg_url: str) -> None:
    world = every_rule_world()
    results = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'hub.db'}"), ("postgresql", pg_url)):
        root = tmp_path / name
        root.mkdir()
        settings = load_settings(write_config(root, url))
        copy.deepcopy(world).load(settings)
        # records the findings: identities unique
        summary = pipeline.reconcile(settings, D).to_dict()
        engine = connect(url)
        with engine.connect() as conn:
            stored = pd.DataFrame(
                conn.execute(
                    findings_table.select().with_only_columns(
                        findings_table.c.identity,
                        findings_table.c.rule_id,
                        findings_table.c.agency,
                        findings_table.c.record_key,
                        findings_table.c.vin,
                        findings_table.c.related,
                        findings_table.c.detail,
                    )
                ).all()
            )
            subsidy = export_subsidy(conn, D, RuleParameters())
        engine.dispose()
        results[name] = (_sorted(evaluation(settings).findings), _sorted(stored), subsidy, summary)

    sqlite, postgresql = results["sqlite"], results["postgresql"]
    assert set(sqlite[0]["rule_id"]) == set(RULES)
    pd.testing.assert_frame_equal(sqlite[0], postgresql[0])
    pd.testing.assert_frame_equal(sqlite[1], postgresql[1])
    pd.testing.assert_frame_equal(sqlite[2], postgresql[2])
    assert sqlite[3] == postgresql[3]
