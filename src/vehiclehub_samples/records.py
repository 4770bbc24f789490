"""Records: the stories as rows of the feeds, in the contract's columns, each with the day
it is first known and the days it changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vehiclehub.contract import FeedSpec, feeds
from vehiclehub_samples.columns import choose, compact, iso, money, padded
from vehiclehub_samples.reference import (
    CNY_PER_USD,
    DECLARATION_BATCH,
    LICENCE_BATCH,
    MODELS,
    REFUND_RATE,
)
from vehiclehub_samples.stories import KIND_FEEDS, Stories


@dataclass(frozen=True)
class Change:
    """A record's columns take the ``before`` values until the day in column ``on``."""

    on: str
    before: dict[str, str | None]


@dataclass
class Numbering:
    """The numbers earlier blocks of vehicles used, so that the next block's licences,
    declarations, filings, claims, police events and refunds number on from them (all
    zero for a world made in one piece); each block's records advance it."""

    licence_batches: int = 0
    declarations: int = 0
    filings: int = 0
    claims: int = 0
    events: dict[int, int] = field(default_factory=dict)  # per day, the highest event number
    refunds: dict[int, int] = field(default_factory=dict)  # per day, the highest refund number

    def batches(self, batch: np.ndarray, kind: str) -> np.ndarray:
        """Batch numbers after those earlier blocks used (``kind``: an attribute's name)."""
        used: int = getattr(self, kind)
        setattr(self, kind, used + int(batch.max(initial=-1)) + 1)
        shifted: np.ndarray = batch + used
        return shifted

    @staticmethod
    def per_day(used: dict[int, int], days: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Numbers counted within each day, after those earlier blocks used that day."""
        unique, inverse = np.unique(days, return_inverse=True)
        offset = np.array([used.get(int(d), 0) for d in unique], np.int64)
        shifted = np.asarray(numbers, np.int64) + offset[inverse]
        highest = offset.copy()
        np.maximum.at(highest, inverse, shifted)
        used.update(zip((int(d) for d in unique), (int(h) for h in highest), strict=True))
        return shifted


#: How records of a feed change after they are first sent.
CHANGES: dict[tuple[str, str], tuple[Change, ...]] = {
    ("commerce", "licences"): (Change("_issued_on", {"issued_at": None, "valid_to": None}),),
    ("customs", "declarations"): (
        Change("_cleared_on", {"status": "declared", "exported_at": None}),
        Change("_cancelled_on", {"record_status": "active"}),
    ),
    ("tax", "refunds"): (Change("_decided_on", {"status": "pending", "approved_at": None}),),
}


def _batches(keys: Sequence[Any], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Number the batches of rows sharing the same ``keys`` (numeric arrays, NaN a value of
    its own), at most ``size`` rows each, in key order; and each row's place in its batch."""
    columns = [np.nan_to_num(np.asarray(k, dtype=np.float64), nan=-1.0) for k in keys]
    order = np.lexsort(columns[::-1])
    ranked = [c[order] for c in columns]
    starts = np.ones(len(order), bool)
    if len(order) > 1:
        starts[1:] = np.any([c[1:] != c[:-1] for c in ranked], axis=0)
    group = np.cumsum(starts) - 1
    place = np.arange(len(order)) - np.flatnonzero(starts)[group]
    batch_of_ranked = np.cumsum(starts | (place % size == 0)) - 1
    batch, where = np.empty(len(order), np.int64), np.empty(len(order), np.int64)
    batch[order], where[order] = batch_of_ranked, place % size
    return batch, where


def _subset(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The given rows, with a fresh index (the frame itself when that is every row)."""
    if len(rows) == len(frame):
        return frame
    return frame.iloc[rows].reset_index(drop=True)


def _lookup(records: pd.DataFrame, kind: str, stories: Any, column: str) -> pd.Series:
    """``column`` of the ``kind`` record of each story (null where it has none)."""
    mine = records.loc[records["_kind"].to_numpy() == kind, ["_story", column]]
    at = pd.Index(mine["_story"].to_numpy()).get_indexer(np.asarray(stories))
    if len(mine) == 0:
        return pd.Series(None, index=range(len(at)), dtype="str")
    values = mine[column].reset_index(drop=True).take(np.maximum(at, 0)).reset_index(drop=True)
    kept: pd.Series = values.where(at >= 0)
    return kept


def _model_columns(models: Any, *names: str) -> dict[str, pd.Series]:
    """Per row, the named fields (brand, model, hs_code, goods) of its :data:`MODELS` entry."""
    return {name: choose([getattr(m, name) for m in MODELS], models) for name in names}


def _licence_records(s: Stories, numbering: Numbering) -> pd.DataFrame:
    """One licence row per vehicle; a licence covers up to 20 vehicles of one exporter,
    applied for and issued together, per model (so per HS code)."""
    v = s.vehicles
    records = pd.DataFrame(
        {
            "uscc": choose(s.exporters["uscc"], v["exporter"]),
            "vin": v["vin"],
            **_model_columns(v["model"], "brand", "model", "hs_code"),
            "destination_country": v["country"],
            "port_code": v["port"],
            "registration_date": iso(v["registered"]),
            "pending_export_date": iso(v["pending"]),
            "applied_at": iso(v["applied"]),
            "issued_at": iso(v["issued"]),
            "valid_to": iso(v["valid_to"]),
            "record_status": "active",
            "_story": np.arange(len(v)),
            "_kind": "licence",
            "_vin": v["vin"],
            "_known": v["applied"].to_numpy(),
            "_issued_on": v["issued"].to_numpy(),
        }
    )
    batch, _ = _batches([v["applied"], v["exporter"], v["issued"], v["model"]], LICENCE_BATCH)
    batch = numbering.batches(batch, "licence_batches")
    records["licence_no"] = "L" + records["applied_at"].str.slice(0, 4) + padded(batch, 8)
    return records


def _item_records(s: Stories, licences: pd.DataFrame, numbering: Numbering) -> pd.DataFrame:
    """Customs items: item 1 of every declared vehicle, item 2 where there is a second;
    a declaration groups up to 20 items of one exporter, day and port."""
    v = s.vehicles
    parts = []
    for kind, declared, exported, withdrawn in (
        ("item1", "declared", "exported", "withdrawn"),
        ("item2", "declared2", "exported2", None),
    ):
        rows = np.flatnonzero(~np.isnan(v[declared].to_numpy()))
        cars = _subset(v, rows)
        cited = licences["licence_no"].take(rows).reset_index(drop=True)
        cancelled_on = cars[withdrawn].to_numpy() if withdrawn else np.full(len(rows), np.nan)
        models = _model_columns(cars["model"], "brand", "hs_code", "goods")
        parts.append(
            pd.DataFrame(
                {
                    "vin": cars["vin_customs"],
                    "uscc": choose(s.exporters["uscc"], cars["item_exporter"]),
                    "licence_no": cited,
                    "hs_code": models["hs_code"],
                    "goods_name": "旧" + models["brand"] + models["goods"],
                    "declared_at": iso(cars[declared]),
                    "exported_at": iso(cars[exported]),
                    "status": choose(["declared", "cleared"], cars[exported].notna()),
                    "port_code": cars["port"],
                    "destination_country": cars["country"],
                    "fob_usd": money(cars["fob_cents"]),
                    "record_status": choose(["active", "cancelled"], ~np.isnan(cancelled_on)),
                    "_story": rows,
                    "_kind": kind,
                    "_vin": cars["vin"],
                    "_known": cars[declared].to_numpy(),
                    "_cleared_on": cars[exported].to_numpy(),
                    "_cancelled_on": cancelled_on,
                    "_exporter": cars["item_exporter"].to_numpy(),
                    "_region": cars["region"].to_numpy(),
                }
            )
        )
    items = pd.concat(parts, ignore_index=True)
    batch, place = _batches(
        [items["_known"], items["_exporter"], items["_region"]], DECLARATION_BATCH
    )
    batch = numbering.batches(batch, "declarations")
    year = items["declared_at"].str.slice(0, 4)
    items["decl_no"] = items["port_code"] + year + "0" + padded(batch, 9)
    items["item_no"] = padded(place + 1, 1)
    return items


def _events(
    kind: str,
    stories: np.ndarray,
    cars: pd.DataFrame,
    event_type: str,
    day: Any,
    owner: Any,
    **extra: Any,
) -> pd.DataFrame:
    """Police events of one kind; ``cars`` holds the vehicles' ``vin``, ``raw_vin``,
    ``plate``, ``registered`` and ``model``, one row per event."""
    return pd.DataFrame(
        {
            "vin": cars["raw_vin"],
            "plate_no": cars["plate"],
            "event_type": event_type,
            "event_date": iso(day),
            "owner_id": owner,
            "dereg_reason": extra.get("reason"),
            "decl_no": extra.get("decl_no"),
            "registration_date": iso(cars["registered"]),
            **_model_columns(cars["model"], "brand", "model"),
            "record_status": "active",
            "_story": stories,
            "_kind": kind,
            "_vin": cars["vin"],
            "_known": np.asarray(day, dtype=np.float64),
        }
    )


def _vehicle_events(s: Stories, items: pd.DataFrame) -> list[pd.DataFrame]:
    """Each export vehicle's register, resale, pending-export and deregistration events."""
    v = s.vehicles.assign(raw_vin=s.vehicles["vin_police"])
    exporter = choose(s.exporters["uscc"], v["exporter"])
    resold = np.flatnonzero(v["transferred"].notna().to_numpy())
    gone = np.flatnonzero(v["deregistered"].notna().to_numpy())
    leaving = _subset(v, gone)
    cites = leaving["dereg_cites"].to_numpy()
    cited = _lookup(items, "item1", gone, "decl_no").where(
        cites == 1, _lookup(items, "item2", gone, "decl_no")
    )
    everyone = np.arange(len(v))
    return [
        _events("register", everyone, v, "register", v["registered"], v["owner"]),
        _events(
            "transfer",
            resold,
            _subset(v, resold),
            "transfer",
            v["transferred"].to_numpy()[resold],
            v["buyer"].take(resold).reset_index(drop=True),
        ),
        _events("pending", everyone, v, "transfer_pending_export", v["pending"], exporter),
        _events(
            "dereg",
            gone,
            leaving,
            "deregister",
            leaving["deregistered"],
            exporter.take(gone).reset_index(drop=True),
            reason="export",
            decl_no=cited,
        ),
    ]


def _claim_car(claims: pd.DataFrame, car: str) -> pd.DataFrame:
    """Each claim's ``car`` (old or new) as a vehicle the police register."""
    return pd.DataFrame(
        {
            "vin": claims[f"{car}_vin"],
            "raw_vin": claims[f"{car}_vin"],
            "plate": claims[f"{car}_plate"],
            "registered": claims[f"{car}_registered"],
            "model": claims[f"{car}_model"],
        }
    )


def _claim_events(s: Stories) -> list[pd.DataFrame]:
    """Each trade-in claim's old vehicle registered, then scrapped or sold; and its new one."""
    c = s.claims
    old, new = _claim_car(c, "old"), _claim_car(c, "new")
    ended = c["old_ended"].notna().to_numpy()
    scrap = np.flatnonzero((c["claim_type"] == "scrap").to_numpy() & ended)
    sold = np.flatnonzero((c["claim_type"] != "scrap").to_numpy() & ended)
    claims = np.arange(len(c))
    return [
        _events("old_register", claims, old, "register", c["old_registered"], c["applicant"]),
        _events(
            "old_scrap",
            scrap,
            _subset(old, scrap),
            "deregister",
            c["old_ended"].to_numpy()[scrap],
            c["applicant"].take(scrap).reset_index(drop=True),
            reason=c["old_reason"].take(scrap).reset_index(drop=True),
        ),
        _events(
            "old_transfer",
            sold,
            _subset(old, sold),
            "transfer",
            c["old_ended"].to_numpy()[sold],
            c["buyer"].take(sold).reset_index(drop=True),
        ),
        _events("new_register", claims, new, "register", c["new_registered"], c["applicant"]),
    ]


def _event_records(s: Stories, items: pd.DataFrame, numbering: Numbering) -> pd.DataFrame:
    """Police events, numbered per day in the order they happened."""
    events = pd.concat([*_vehicle_events(s, items), *_claim_events(s)], ignore_index=True)
    day = events["_known"].to_numpy()
    order = np.lexsort((events["_story"].to_numpy(), day))
    starts = np.r_[True, day[order][1:] != day[order][:-1]]
    number = np.empty(len(order), np.int64)
    number[order] = np.arange(len(order)) - np.flatnonzero(starts)[np.cumsum(starts) - 1] + 1
    number = numbering.per_day(numbering.events, day, number)
    events["event_id"] = "JG" + compact(day) + padded(number, 6)
    return events


def _refund_records(s: Stories, items: pd.DataFrame, numbering: Numbering) -> pd.DataFrame:
    """Refund lines: line 1 on the item the story names, line 2 (if any) on the same item."""
    v = s.vehicles
    amount = (v["fob_cents"].to_numpy() * CNY_PER_USD * REFUND_RATE).astype(np.int64)
    parts = []
    for kind, applied, decided, status in (
        ("refund1", "refund_applied", "refund_decided", "refund_status"),
        ("refund2", "refund2_applied", "refund2_decided", "refund2_status"),
    ):
        rows = np.flatnonzero(v[applied].notna().to_numpy())
        cars = _subset(v, rows)
        cites = cars["refund_cites"].to_numpy()
        decl_no, item_no = (
            _lookup(items, "item1", rows, column).where(
                cites != 2, _lookup(items, "item2", rows, column)
            )
            for column in ("decl_no", "item_no")
        )
        # refund_cites 0: an item number the declaration does not have (at most 20 items).
        cited_item = item_no.astype(np.int64).to_numpy() + np.where(cites == 0, 500, 0)
        approved = (cars[status] == "approved").to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "uscc": choose(s.exporters["uscc"], cars["refund_exporter"]),
                    "enterprise_class": cars["refund_class"],
                    "decl_ref": decl_no + padded(cited_item, 3),
                    "amount_cny": money(amount[rows]),
                    "applied_at": iso(cars[applied]),
                    "approved_at": iso(np.where(approved, cars[decided], np.nan)),
                    "status": cars[status],
                    "_story": rows,
                    "_kind": kind,
                    "_vin": cars["vin"].where(cites != 0),
                    "_known": cars[applied].to_numpy(),
                    "_decided_on": cars[decided].to_numpy(),
                    "_exporter": cars["refund_exporter"].to_numpy(),
                }
            )
        )
    refunds = pd.concat(parts, ignore_index=True)
    batch, _ = _batches([refunds["_known"], refunds["_exporter"]], len(refunds) + 1)
    first_of_day = pd.Series(batch).groupby(refunds["_known"].to_numpy()).transform("min")
    number = batch - first_of_day.to_numpy() + 1
    number = numbering.per_day(numbering.refunds, refunds["_known"].to_numpy(), number)
    refunds["refund_no"] = "R" + compact(refunds["_known"]) + padded(number, 5)
    return refunds


def _filing_records(s: Stories, numbering: Numbering) -> pd.DataFrame:
    """Yearly filings from each exporter's first one; the lapsed exporter's ended years ago."""
    ex = s.exporters
    lapsed = (ex["standing"] == "lapsed").to_numpy()
    years = np.where(lapsed, 1, 6)
    owner = np.repeat(np.arange(len(ex)), years)
    year = np.arange(len(owner)) - np.repeat(np.cumsum(years) - years, years)
    start = np.where(lapsed, s.last - 9 * 365.0, ex["filed_from"].to_numpy())[owner]
    valid_from = start + 365 * year
    revoked = (ex["standing"] == "revoked").to_numpy()[owner]
    records = pd.DataFrame(
        {
            "uscc": ex["uscc"].take(owner).reset_index(drop=True),
            "name": ex["name"].take(owner).reset_index(drop=True),
            "region_code": ex["region_code"].take(owner).reset_index(drop=True),
            "valid_from": iso(valid_from),
            "valid_to": iso(valid_from + 364),
            "status": choose(["active", "revoked"], revoked),
            "_story": owner,
            "_kind": "filing",
            "_vin": None,
            "_known": valid_from - 10,
        }
    )
    year_from = records["valid_from"].str.slice(0, 4)
    number = np.arange(len(records)) + 1 + numbering.filings
    numbering.filings += len(records)
    records["filing_no"] = "BA" + year_from + padded(number, 6)
    return records


def _claim_records(s: Stories, numbering: Numbering) -> pd.DataFrame:
    c = s.claims
    scrap = (c["claim_type"] == "scrap").to_numpy()
    number = c.index.to_numpy() + 1 + numbering.claims
    numbering.claims += len(c)
    return pd.DataFrame(
        {
            "claim_no": "YJHX" + iso(c["applied"]).str.slice(0, 4) + padded(number, 7),
            "claim_type": c["claim_type"],
            "applicant_id": c["applicant"],
            "old_vin": c["old_vin"],
            "new_vin": c["new_vin"],
            "amount_cny": choose(["15000.00", "20000.00"], scrap),
            "applied_at": iso(c["applied"]),
            "record_status": "active",
            "_story": c.index.to_numpy(),
            "_kind": "claim",
            "_vin": c["old_vin"],
            "_known": c["applied"].to_numpy(),
        }
    )


def build_records(
    s: Stories, numbering: Numbering | None = None
) -> dict[tuple[str, str], pd.DataFrame]:
    """Every feed's records, in the contract's columns plus ``_`` helpers, for all time;
    numbered on from ``numbering`` (which they advance) where earlier blocks came first."""
    numbering = numbering or Numbering()
    licences = _licence_records(s, numbering)
    items = _item_records(s, licences, numbering)
    records = {
        ("commerce", "enterprises"): _filing_records(s, numbering),
        ("commerce", "licences"): licences,
        ("commerce", "tradein_claims"): _claim_records(s, numbering),
        ("customs", "declarations"): items,
        ("police", "events"): _event_records(s, items, numbering),
        ("tax", "refunds"): _refund_records(s, items, numbering),
    }
    missing = set(feeds()) - set(records)
    if missing:
        raise ValueError(f"the generator has no records for feeds {sorted(missing)}")
    places: dict[str, np.ndarray] = {}
    for kind, rows, columns in s.overrides:
        frame = records[KIND_FEEDS[kind]]
        if kind not in places:  # per story, the position of its ``kind`` record (or -1)
            of_kind = np.flatnonzero((frame["_kind"] == kind).to_numpy())
            stories = frame["_story"].to_numpy()[of_kind].astype(np.int64)
            places[kind] = np.full(stories.max(initial=-1) + 1, -1, np.int64)
            places[kind][stories] = of_kind
        rows = np.asarray(rows, np.int64)
        place = np.full(len(rows), -1, np.int64)
        known = rows < len(places[kind])
        place[known] = places[kind][rows[known]]
        rows, place = rows[place >= 0], place[place >= 0]
        for column, value in columns.items():
            at = list(frame.columns).index(column)
            if isinstance(value, pd.Series):
                value = value.reindex(rows).to_numpy()
            elif callable(value):
                value = value(frame[column].iloc[place].reset_index(drop=True)).to_numpy()
            frame.iloc[place, at] = value
    return records


def contract_columns(spec: FeedSpec) -> list[str]:
    """The feed's columns, in contract order."""
    return [c.name for c in spec.columns]


def record_keys(spec: FeedSpec, frame: pd.DataFrame) -> pd.Series:
    """ICD §4 ``record_key``: the key columns joined by ``/`` (values are clean already)."""
    keys = frame[spec.key[0]].astype("str")
    for name in spec.key[1:]:
        keys = keys + "/" + frame[name].astype("str")
    return keys
