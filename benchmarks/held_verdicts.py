"""A report's verdicts stored again in full over a store that holds them, as a re-run of
a date (or ``vhub reconcile --full``) stores them.

    .venv/bin/python benchmarks/held_verdicts.py --records 10000000 \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_verdicts]

Writes N refund verification rows for one business date (ICD §4; record keys of 41
characters, as a refund line's), then stores the same date's rows again with one in 300
changed and one in 1,000 no longer given, the parts coming 200,000 rows at a time as the
reconcile reads them. Prints, for that second call, the wall time, the peak RSS
(sampled every 20 ms) less the RSS before, and the records changed. The store is a new
SQLite file unless a database URL is given: an empty database, left as the run leaves
it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from peak_rss import PeakRss

from vehiclehub.icd.drops import REFUND_VERIFICATION_COLUMNS
from vehiclehub.store import connect
from vehiclehub.store.verdicts import record_run, store_verdicts

DAY = date(2025, 11, 3)
REPORT = "refund_verification"
PART = 200_000


def parts(records: int, changed_every: int = 0, gone_every: int = 0) -> Iterator[pd.DataFrame]:
    """The report's rows, a part at a time; every ``changed_every``-th row another
    verdict, every ``gone_every``-th left out."""
    for start in range(0, records, PART):
        n = np.arange(start, min(start + PART, records))
        if gone_every:
            n = n[n % gone_every != 1]
        refund_no = np.char.add("RF", np.char.zfill(n.astype(str), 10))
        decl_ref = np.char.add("5304202500", np.char.zfill((n // 3).astype(str), 11))
        verdict = np.full(len(n), "verified", dtype=object)
        if changed_every:
            verdict[n % changed_every == 0] = "no_export"
        yield pd.DataFrame(
            {
                "record_key": np.char.add(np.char.add(refund_no, "/"), decl_ref).astype(object),
                "refund_no": refund_no.astype(object),
                "decl_ref": decl_ref.astype(object),
                "vin": "LSVAM4187C2184847",
                "verdict": verdict,
                "rule_ids": np.where(verdict == "verified", "", "TAX-001").astype(object),
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'hub.db'}"
        engine = connect(url)
        started = time.perf_counter()
        with engine.begin() as conn:
            store_verdicts(conn, DAY, REPORT, parts(args.records), REFUND_VERIFICATION_COLUMNS)
            record_run(conn, DAY)
        print(f"first run: {args.records:,} records in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        with PeakRss() as peak, engine.begin() as conn:
            again = parts(args.records, changed_every=300, gone_every=1000)
            changed = store_verdicts(conn, DAY, REPORT, again, REFUND_VERIFICATION_COLUMNS)
        wall = time.perf_counter() - started
        print(
            f"run again: {wall:.1f} s, peak RSS +{peak.growth_gib:.2f} GiB, "
            f"{changed:,} records changed"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
