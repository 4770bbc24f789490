"""The ground truth: the findings, candidates, verdicts and rejections the hub must
report on the world's last business date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vehiclehub.contract import feed
from vehiclehub.icd.codes import (
    POLICE_VERDICT_RULES,
    TAX_VERDICT_RULES,
    DeregReason,
    EventType,
    PoliceVerdict,
    RecordStatus,
    RefundStatus,
    TaxVerdict,
)
from vehiclehub_samples.columns import calendar_day
from vehiclehub_samples.plan import FilePlan, snapshot
from vehiclehub_samples.records import CHANGES, record_keys
from vehiclehub_samples.stories import KIND_FEEDS

POLICE_VERDICTS = {rule_id: verdict.value for rule_id, verdict in POLICE_VERDICT_RULES.items()}
TAX_VERDICTS = {rule_id: verdict.value for rule_id, verdict in TAX_VERDICT_RULES.items()}


@dataclass
class GroundTruth:
    """What the hub must conclude from the world, on its last business date.

    ``findings`` holds every finding RULES.md yields (``rule_id``, ``record_key``,
    ``vin``, ``agency`` the record is of): the planted ones; a rule without a planted
    case expects none. The verdicts follow from the findings (RULES.md). ``rejections``
    are (``agency``, ``file``, ``line``, ``column``, ``why``), ``line`` and ``column``
    empty for a file rejected whole.
    """

    findings: pd.DataFrame
    police_verdicts: pd.DataFrame  # event_id (empty when overdue), vin, verdict, decl_no
    tax_verdicts: pd.DataFrame  # refund_no, decl_ref, vin, verdict
    rejections: pd.DataFrame
    duplicates: pd.DataFrame  # agency, file, same_as: already loaded, not a rejection
    waiting: pd.DataFrame  # business_date, agency, file: waiting for a manifest that day
    gaps: pd.DataFrame  # agency, feed, business_date, seq: numbers never sent
    unfinished: list[str]  # ``.part`` files the hub must leave alone
    corrections: pd.DataFrame  # agency, feed, record_key, record_version, column, value
    planted: pd.DataFrame  # case, population, story, vin
    #: VIN-003's candidates: per finding (``agency``, ``record_key``, ``vin``) each record it
    #: must list in ``related`` (``agency:key``).
    candidates: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["agency", "record_key", "vin", "related"])
    )
    #: The VINs typed over (plants and noise): :data:`TYPO_COLUMNS`.
    typos: pd.DataFrame = field(default_factory=pd.DataFrame)

    def expected(self, rule_id: str) -> set[str]:
        """The record keys ``rule_id`` must fire on."""
        return set(self.findings.loc[self.findings["rule_id"] == rule_id, "record_key"])

    def expected_candidates(self) -> set[tuple[str, str]]:
        """(record_key, related record) pairs VIN-003 must propose."""
        return set(zip(self.candidates["record_key"], self.candidates["related"], strict=True))


def _keyed(records: dict[tuple[str, str], pd.DataFrame], kind: str) -> pd.DataFrame:
    """The ``kind`` records as ``_story``, ``record_key``, ``_vin``, ``_known``."""
    agency, feed_name = KIND_FEEDS[kind]
    frame = records[agency, feed_name]
    mine = frame.loc[
        frame["_kind"] == kind, ["_story", "_vin", "_known", *feed(agency, feed_name).key]
    ]
    spec = feed(agency, feed_name)
    # A key holding a VIN holds it normalised: the VIN the record is read as.
    keyed = mine.assign(vin=mine["_vin"]) if "vin" in spec.key else mine
    return mine.assign(record_key=record_keys(spec, keyed))[
        ["_story", "record_key", "_vin", "_known"]
    ]


def expected_findings(
    records: dict[tuple[str, str], pd.DataFrame], expected: pd.DataFrame, last: int
) -> pd.DataFrame:
    found = []
    for kind, group in expected.groupby("kind"):
        agency, _ = KIND_FEEDS[str(kind)]
        mine = _keyed(records, str(kind))
        hits = group.merge(mine, how="left", left_on="story", right_on="_story")
        if hits["record_key"].isna().any() or (hits["_known"] > last).any():
            raise ValueError(f"a planted finding on a {kind} record that is not on file")
        found.append(
            pd.DataFrame(
                {
                    "rule_id": hits["rule_id"],
                    "record_key": hits["record_key"],
                    "vin": hits["_vin"],
                    "agency": agency,
                }
            )
        )
    if not found:
        return pd.DataFrame(columns=["rule_id", "record_key", "vin", "agency"])
    return pd.concat(found, ignore_index=True).sort_values(
        ["rule_id", "record_key"], ignore_index=True
    )


def expected_candidates(
    records: dict[tuple[str, str], pd.DataFrame],
    candidates: list[tuple[np.ndarray, str, str, np.ndarray]],
) -> pd.DataFrame:
    """Per VIN-003 finding, each candidate record it must list (``agency:key``)."""
    keyed: dict[str, pd.DataFrame] = {}
    pairs = [pd.DataFrame(columns=["agency", "record_key", "vin", "related"])]
    for rows, kind, candidate, vins in candidates:
        for name in (kind, candidate):
            if name not in keyed:
                keyed[name] = _keyed(records, name).set_index("_story")
        mine, theirs = keyed[kind].reindex(rows), keyed[candidate].reindex(rows)
        pairs.append(
            pd.DataFrame(
                {
                    "agency": KIND_FEEDS[kind][0],
                    "record_key": mine["record_key"].to_numpy(),
                    "vin": vins,
                    "related": KIND_FEEDS[candidate][0] + ":" + theirs["record_key"].to_numpy(),
                }
            )
        )
    return pd.concat(pairs, ignore_index=True).sort_values(
        ["record_key", "related"], ignore_index=True
    )


def _first_rule(keys: pd.Series, findings: pd.DataFrame, verdicts: dict[str, str]) -> pd.Series:
    """Per record key, the verdict of the first of ``verdicts``' rules that fires on it."""
    verdict = pd.Series(None, index=keys.index, dtype="str")
    for rule_id, name in verdicts.items():
        fired = keys.isin(findings.loc[findings["rule_id"] == rule_id, "record_key"])
        verdict = verdict.where(verdict.notna() | ~fired, name)
    return verdict


def expected_police_verdicts(
    records: dict[tuple[str, str], pd.DataFrame], findings: pd.DataFrame, last: int
) -> pd.DataFrame:
    events = snapshot(records["police", "events"], (), last)
    dereg = events[
        (events["event_type"] == EventType.DEREGISTER)
        & (events["dereg_reason"] == DeregReason.EXPORT)
        & (events["record_status"] == RecordStatus.ACTIVE)
    ]
    verdict = _first_rule(dereg["event_id"], findings, POLICE_VERDICTS).fillna(
        PoliceVerdict.VERIFIED.value
    )
    deregs = pd.DataFrame(
        {
            "event_id": dereg["event_id"],
            "vin": dereg["_vin"],
            "verdict": verdict,
            "decl_no": dereg["decl_no"].where(verdict != PoliceVerdict.NO_EXPORT),
        }
    )
    overdue = findings[findings["rule_id"] == "EXP-003"]
    late = pd.DataFrame(
        {
            "event_id": None,
            "vin": overdue["vin"],
            "verdict": PoliceVerdict.OVERDUE.value,
            "decl_no": overdue["record_key"].str.split("/").str[0],
        }
    )
    return pd.concat([deregs, late], ignore_index=True)


def expected_tax_verdicts(
    records: dict[tuple[str, str], pd.DataFrame], findings: pd.DataFrame, last: int
) -> pd.DataFrame:
    lines = snapshot(records["tax", "refunds"], CHANGES["tax", "refunds"], last)
    lines = lines[lines["status"] != RefundStatus.REJECTED]
    keys = record_keys(feed("tax", "refunds"), lines)
    return pd.DataFrame(
        {
            "refund_no": lines["refund_no"],
            "decl_ref": lines["decl_ref"],
            "vin": lines["_vin"],
            "verdict": _first_rule(keys, findings, TAX_VERDICTS).fillna(TaxVerdict.VERIFIED.value),
        }
    ).reset_index(drop=True)


def expected_rejections(plan: FilePlan) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for planned in plan.files:
        if planned.part or planned.copy_of is not None:
            continue
        if planned.rejected_because:
            rows.append(
                {
                    "agency": planned.agency,
                    "file": planned.name,
                    "line": None,
                    "column": None,
                    "why": planned.rejected_because,
                }
            )
            continue
        bad = planned.frame["_reject"].notna().to_numpy()
        for position in np.flatnonzero(bad):
            column = planned.frame["_reject"].iloc[position]
            rows.append(
                {
                    "agency": planned.agency,
                    "file": planned.name,
                    "line": int(position) + 2,
                    "column": column,
                    "why": f"bad {column}",
                }
            )
    frame = pd.DataFrame(rows, columns=["agency", "file", "line", "column", "why"])
    frame["line"] = frame["line"].astype("Int64")
    return frame


def expected_waiting(plan: FilePlan, dates: Sequence[int]) -> pd.DataFrame:
    rows = [
        {"business_date": calendar_day(day), "agency": f.agency, "file": f.name}
        for f in plan.files
        for day in dates
        if not f.part and f.day <= day < f.manifest_on
    ]
    return pd.DataFrame(rows, columns=["business_date", "agency", "file"])


def expected_gaps(plan: FilePlan, last: int) -> pd.DataFrame:
    """Sequence numbers missing below the highest one that arrives complete."""
    sent: dict[tuple[str, str, int], set[int]] = {}
    for f in plan.files:
        if not f.part and f.manifest_on <= last:
            sent.setdefault((f.agency, f.feed, f.day), set()).add(f.seq)
    rows = [
        {"agency": a, "feed": fd, "business_date": calendar_day(d), "seq": seq}
        for (a, fd, d), seqs in sorted(sent.items())
        for seq in range(1, max(seqs))
        if seq not in seqs
    ]
    return pd.DataFrame(rows, columns=["agency", "feed", "business_date", "seq"])
