"""The rulebook at scale: each rule's time over a store of 1M vehicles, and peak memory.

``build`` puts a synthetic store straight into the feed tables (a bulk load, not the
intake: this measures the rules). Per vehicle: a licence row, register, pending-export
and export-deregistration events, a cleared customs item and a refund line (6 rows).
``--claims`` trade-in claims add old vehicles with a police register event, and new
VINs that are on the claims feed only: lone VINs, VIN-003's worst case. ``--typos``
customs items carry a VIN with two adjacent characters swapped.

``run`` times each rule (``--only`` some) on its own and prints the process's peak
RSS; run VIN-003 alone for its own peak. ``reconcile`` runs the whole reconcile stage
(rules side by side, findings recorded, verdicts stored) ``--runs`` times on successive
days, as the nightly cycle does; it writes findings and verdicts into the store.
``pairs`` times ``rules.quality.near_vin_pairs`` alone on the store's VINs. Times are wall and
CPU (all threads): on a busy machine the CPU time is the steadier measure.

    .venv/bin/python benchmarks/rules_at_scale.py build --database sqlite:////tmp/scale.db
    .venv/bin/python benchmarks/rules_at_scale.py run --database ... [--only VIN-003]
    .venv/bin/python benchmarks/rules_at_scale.py reconcile --database ... [--runs 2]
    .venv/bin/python benchmarks/rules_at_scale.py pairs --database ...
"""

from __future__ import annotations

import argparse
import random
import resource
import time
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, select

from vehiclehub.config import RuleParameters
from vehiclehub.rules import RULES, RuleContext
from vehiclehub.rules.engine import reconcile
from vehiclehub.rules.quality import VIN_COLUMNS, near_vin_pairs
from vehiclehub.store import connect, feed_table
from vehiclehub.store.load import bulk_insert
from vehiclehub_samples.identifiers import bulk_vins, make_uscc

DAY = date(2025, 11, 3)
WMIS = np.array(["LSV", "LFV", "LGB", "LVS", "LHG", "LBV", "LDC", "LGW", "LZW", "LNB"])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_vins(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` distinct VINs of Chinese makers with a correct check digit."""
    wmis = WMIS[rng.integers(0, len(WMIS), count)]
    return bulk_vins(rng, wmis, rng.integers(2012, 2024, count)).astype(object)


def _iso(days: np.ndarray) -> pd.Series:
    return pd.Series((np.datetime64("2025-01-01") + days.astype("timedelta64[D]")).astype(str))


def _vin_columns(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    flags: dict[str, Any] = {
        f"{column}_raw": frame[column],
        f"{column}_substituted": False,
        f"{column}_check_ok": True,
    }
    return frame.assign(**flags)


def _bookkeeping(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(
        record_version=1,
        record_status="active",
        content_hash=0,
        file_id=0,
        line=np.arange(len(frame)) + 2,
    )


def build(engine: Engine, vehicles: int, claims: int, typos: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    vins = synthetic_vins(rng, vehicles + 2 * claims)
    car, old, new = vins[:vehicles], vins[vehicles : vehicles + claims], vins[vehicles + claims :]
    exporters = np.array([make_uscc(random.Random(seed + i)) for i in range(2000)], object)
    exporter = exporters[rng.integers(0, len(exporters), vehicles)]
    person = np.char.mod("%064x", rng.integers(0, 2**62, vehicles + claims))
    n = np.arange(vehicles)
    pending = rng.integers(0, 240, vehicles)
    exported = pending + rng.integers(10, 40, vehicles)
    brand = np.array(["比亚迪", "丰田", "大众", "吉利", "长安"], object)[n % 5]
    model = np.array(["秦PLUS", "卡罗拉", "朗逸", "帝豪", "CS75"], object)[n % 5]
    decl_no = pd.Series(n).map("0201202500{:08d}".format)
    item_vin = car.copy()
    swapped = rng.choice(vehicles, typos, replace=False)
    item_vin[swapped] = [v[:12] + v[13] + v[12] + v[14:] for v in car[swapped]]
    print(f"generated {len(vins):,} VINs in {time.perf_counter() - started:.1f}s")

    licences = pd.DataFrame(
        {
            "licence_no": pd.Series(n // 20).map("L{:08d}".format),
            "uscc": exporter,
            "vin": car,
            "brand": brand,
            "model": model,
            "hs_code": "87032342",
            "destination_country": "RUS",
            "port_code": "0201",
            "registration_date": "2021-05-01",
            "pending_export_date": _iso(pending),
            "applied_at": _iso(pending + 1),
            "issued_at": _iso(pending + 2),
            "valid_to": _iso(pending + 180),
        }
    )
    register = pd.DataFrame(
        {
            "event_id": pd.Series(n).map("R{:08d}".format),
            "vin": car,
            "event_type": "register",
            "event_date": "2021-05-01",
            "owner_id": person[:vehicles],
        }
    )
    pending_events = pd.DataFrame(
        {
            "event_id": pd.Series(n).map("P{:08d}".format),
            "vin": car,
            "event_type": "transfer_pending_export",
            "event_date": _iso(pending),
            "owner_id": exporter,
        }
    )
    dereg = pd.DataFrame(
        {
            "event_id": pd.Series(n).map("D{:08d}".format),
            "vin": car,
            "event_type": "deregister",
            "event_date": _iso(exported + 5),
            "owner_id": exporter,
            "dereg_reason": "export",
            "decl_no": decl_no,
        }
    )
    claim_n = np.arange(claims)
    old_register = pd.DataFrame(
        {
            "event_id": pd.Series(claim_n).map("O{:08d}".format),
            "vin": old,
            "event_type": "register",
            "event_date": "2015-03-01",
            "owner_id": person[vehicles:],
        }
    )
    events = pd.concat([register, pending_events, dereg, old_register], ignore_index=True)
    events = events.assign(
        plate_no="津A12345",
        registration_date="2021-05-01",
        brand=np.resize(brand, len(events)),
        model=np.resize(model, len(events)),
    )
    items = pd.DataFrame(
        {
            "decl_no": decl_no,
            "item_no": 1,
            "vin": item_vin,
            "uscc": exporter,
            "licence_no": licences["licence_no"],
            "hs_code": "87032342",
            "goods_name": "旧" + brand + "1.5L轿车",
            "declared_at": _iso(exported - 5),
            "exported_at": _iso(exported),
            "status": "cleared",
            "port_code": "0201",
            "destination_country": "RUS",
            "fob_usd": 9800,
        }
    )
    refunds = pd.DataFrame(
        {
            "refund_no": pd.Series(n // 50).map("T{:08d}".format),
            "uscc": exporter,
            "enterprise_class": np.array(["1", "2", "3", "4"], object)[n % 4],
            "decl_ref": decl_no + "001",
            "amount_cny": 1200,
            "applied_at": _iso(exported + 7),
            "approved_at": _iso(exported + 8),
            "status": "approved",
        }
    )
    tradein = pd.DataFrame(
        {
            "claim_no": pd.Series(claim_n).map("C{:08d}".format),
            "claim_type": np.array(["scrap", "replace"], object)[claim_n % 2],
            "applicant_id": person[vehicles:],
            "old_vin": old,
            "new_vin": new,
            "amount_cny": 15000,
            "applied_at": _iso(claim_n % 300),
        }
    )
    filings = pd.DataFrame(
        {
            "uscc": exporters,
            "name": "出口企业",
            "filing_no": "F1",
            "region_code": "120000",
            "valid_from": "2025-01-01",
            "valid_to": "2025-12-31",
            "status": "active",
        }
    )
    tables = {
        ("commerce", "enterprises"): filings,
        ("commerce", "licences"): _vin_columns(licences, "vin"),
        ("commerce", "tradein_claims"): _vin_columns(_vin_columns(tradein, "old_vin"), "new_vin"),
        ("police", "events"): _vin_columns(events, "vin"),
        ("customs", "declarations"): _vin_columns(items, "vin"),
        ("tax", "refunds"): refunds,
    }
    with engine.begin() as conn:
        for (agency, feed), frame in tables.items():
            table = feed_table(agency, feed)
            conn.execute(delete(table))
            started = time.perf_counter()
            bulk_insert(conn, table, _bookkeeping(frame))
            print(f"{table.name}: {len(frame):,} rows in {time.perf_counter() - started:.1f}s")
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # committed: statistics are transactional
            conn.exec_driver_sql("ANALYZE")


def run(engine: Engine, only: list[str] | None) -> None:
    params = RuleParameters()
    total = cpu_total = 0.0
    with engine.connect() as conn:
        ctx = RuleContext(conn, DAY, params)
        for rule_id in only or sorted(RULES):
            started, cpu = time.perf_counter(), time.process_time()
            found = RULES[rule_id].find(ctx)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            total += took
            cpu_total += cpu
            print(
                f"{rule_id}: {took:7.2f}s ({cpu:6.2f}s CPU)  {len(found):>9,} rows  "
                f"peak RSS {peak_mb():,.0f} MB",
                flush=True,
            )
    print(f"total {total:.1f}s ({cpu_total:.1f}s CPU), peak RSS {peak_mb():,.0f} MB")


def reconcile_days(engine: Engine, runs: int) -> None:
    for run_index in range(runs):
        day = DAY + timedelta(days=run_index)
        started, cpu = time.perf_counter(), time.process_time()
        result = reconcile(engine, day, RuleParameters())
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        verdicts = {report: sum(counts.values()) for report, counts in result.verdicts.items()}
        print(
            f"reconcile {day}: {took:.1f}s ({cpu:.1f}s CPU), {result.findings:,} findings, "
            f"verdicts {verdicts}, peak RSS {peak_mb():,.0f} MB",
            flush=True,
        )


def pairs(engine: Engine) -> None:
    with engine.connect() as conn:
        vins = [
            pd.Series(conn.execute(select(table.c[source.column])).scalars().all(), dtype="str")
            for source in VIN_COLUMNS
            for table in [feed_table(source.agency, source.feed)]
        ]
    every = pd.concat(vins).drop_duplicates(ignore_index=True)
    print(f"{len(every):,} distinct VINs loaded, peak RSS {peak_mb():,.0f} MB")
    started = time.perf_counter()
    found = near_vin_pairs(every, every)
    took = time.perf_counter() - started
    print(
        f"near_vin_pairs, all against all: {took:.1f}s, {len(found):,} pairs, "
        f"peak RSS {peak_mb():,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "run", "reconcile", "pairs"])
    parser.add_argument("--database", default="sqlite:////tmp/vhub_scale.db")
    parser.add_argument("--vehicles", type=int, default=1_000_000)
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--typos", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=20251103)
    parser.add_argument("--only", nargs="*", help="rule ids (default: every rule)")
    parser.add_argument("--runs", type=int, default=1, help="reconcile: successive days")
    args = parser.parse_args()
    engine = connect(args.database)
    if args.action == "build":
        build(engine, args.vehicles, args.claims, args.typos, args.seed)
    elif args.action == "run":
        run(engine, args.only)
    elif args.action == "reconcile":
        reconcile_days(engine, args.runs)
    else:
        pairs(engine)


if __name__ == "__main__":
    main()
