"""VIN-001..003: misread VINs, failed check digits and likely typos, on every feed."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, Select
from tests.factories import Vehicle

from vehiclehub.config import RuleParameters, Settings
from vehiclehub.contract import feeds
from vehiclehub.rules import quality
from vehiclehub.rules.base import RuleContext
from vehiclehub.rules.history import finding_identity
from vehiclehub.rules.quality import (
    _HELD_VINS,
    HELD_BLOCK,
    HELD_CHUNK,
    VIN_COLUMNS,
    VIN_FEEDS,
    HeldVins,
    SpooledVins,
    VinCodes,
    VinColumn,
    _held_vin_blocks,
    _legal,
    ascending_vins,
    held_blocks,
    near_vin_pairs,
)
from vehiclehub.rules.runner import evaluate_rules
from vehiclehub.store import connect
from vehiclehub.store.load import bulk_insert
from vehiclehub.store.schema import held_vin_index_name, reconcile_scope
from vehiclehub.vin import VIN_PATTERN, check_digit
from vehiclehub_samples.identifiers import make_vin

from .test_reach import _event, _licence, _load
from .world import D, World, evaluation, findings

CHECKED = ["vin", "agency", "record_key", "related", "severity"]


def valid(draft: str) -> str:
    """``draft`` with its check digit (position 9) put right."""
    return draft[:8] + check_digit(draft) + draft[9:]


def swapped(vin: str, i: int) -> str:
    """``vin`` with two adjacent different characters swapped: those at (0-based) ``i``
    and ``i + 1``, or where they are equal the next such pair (from the start past the
    end): the random VINs of the factories may repeat a character."""
    for j in [*range(i, 16), *range(i)]:
        if vin[j] != vin[j + 1]:
            return vin[:j] + vin[j + 1] + vin[j] + vin[j + 2 :]
    raise AssertionError(f"{vin} has no two adjacent different characters")


def substituted(vin: str, i: int, char: str) -> str:
    assert vin[i] != char
    return vin[:i] + char + vin[i + 1 :]


def test_vin001_o_for_0_matches_after_normalisation(settings: Settings) -> None:
    world = World()
    v = Vehicle(vin=valid("LSVAB2100R3100527"))
    misread = v.vin.replace("0", "O")
    chain = world.vehicle(v, dereg={"vin": misread})
    world.load(settings)

    found = evaluation(settings, only=["VIN-001", "EXP-001", "EXP-002"]).findings
    assert found[["rule_id", *CHECKED]].to_dict("records") == [
        {
            "rule_id": "VIN-001",
            "vin": v.vin,
            "agency": "police",
            "record_key": chain["dereg"]["event_id"],
            "related": "",
            "severity": "info",
        }
    ]
    assert found.at[0, "detail"] == (
        f"VIN sent as '{misread}' was read as {v.vin} (I, O, Q read as 1, 0, 0, or a "
        "barcode's leading I dropped)"
    )


def test_vin001_barcode_i_on_a_licence_but_cleaning_is_no_substitution(
    settings: Settings,
) -> None:
    world = World()
    scanned, typed = Vehicle(), Vehicle()
    world.add("licence", scanned.licence(vin="I" + scanned.vin))
    messy = f" {typed.vin[:4].lower()}-{typed.vin[4:10]} *{typed.vin[10:]}"
    world.add("licence", typed.licence(vin=messy))
    world.load(settings)

    found = findings(settings, "VIN-001")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": scanned.vin,
            "agency": "commerce",
            "record_key": f"{scanned.licence_no}/{scanned.vin}",
            "related": "",
            "severity": "info",
        }
    ]


def test_vin001_both_vins_of_a_claim_are_two_findings(settings: Settings) -> None:
    world = World()
    old, new = valid("LSVAB2100R3100527"), valid("LFV1A21K1N3123411")
    claim = world.claim(old.replace("0", "O"), new.replace("1", "I"))
    world.load(settings)

    found = findings(settings, "VIN-001")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": vin,
            "agency": "commerce",
            "record_key": claim["claim_no"],
            "related": "",
            "severity": "info",
        }
        for vin in sorted((new, old))
    ]
    assert sorted(found["detail"].str.split(" ").str[0]) == ["new_vin", "old_vin"]
    assert finding_identity(found).nunique() == 2


def test_vin002_mandatory_check_digit(settings: Settings) -> None:
    world = World()
    chinese = valid("LSVAB2100R3100527")
    wrong = substituted(chinese, 8, "X" if chinese[8] != "X" else "1")
    japanese = valid("JTDBR32E200012345")  # check digit advisory outside L and 1-5
    advisory = substituted(japanese, 8, "X" if japanese[8] != "X" else "1")
    v = Vehicle(vin=wrong)
    world.add("licence", v.licence(), Vehicle(vin=advisory).licence())
    claim = world.claim(chinese, wrong)
    world.load(settings)

    found = findings(settings, "VIN-002")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": wrong,
            "agency": "commerce",
            "record_key": key,
            "related": "",
            "severity": "warning",
        }
        for key in sorted((claim["claim_no"], f"{v.licence_no}/{wrong}"))
    ]
    assert found["detail"].str.startswith(("new_vin " + wrong, "VIN " + wrong)).all()
    assert f"position 9 is {wrong[8]}" in found.at[0, "detail"]


def test_vin003_transposition_is_proposed_not_linked(settings: Settings) -> None:
    world = World()
    v = Vehicle()
    typo = swapped(v.vin, 11 if v.vin[11] != v.vin[12] else 12)
    chain = world.vehicle(v, item={"vin": typo})
    world.load(settings)

    found = evaluation(settings).findings
    vin003 = found[found["rule_id"] == "VIN-003"].reset_index(drop=True)
    candidates = sorted(
        [
            f"commerce:{v.licence_no}/{v.vin}",
            f"police:{chain['pending']['event_id']}",  # owner: the exporter
            f"police:{chain['dereg']['event_id']}",
        ]
    )  # not the register event: its owner, a private person, is not the item's exporter
    assert vin003[CHECKED].to_dict("records") == [
        {
            "vin": typo,
            "agency": "customs",
            "record_key": v.item_key,
            "related": ";".join(candidates),
            "severity": "warning",
        }
    ]
    detail = vin003.at[0, "detail"]
    assert detail.startswith(
        f"VIN {typo} is on no record of another feed; likely counterpart {v.vin} (positions "
    )
    assert f"swapped) on commerce:{v.licence_no}/{v.vin} (same exporter {v.uscc})," in detail
    assert f"police:{chain['dereg']['event_id']} (same exporter {v.uscc})" in detail
    assert "same brand" not in detail  # customs items carry no brand
    # Never a silent link: the typo's own consequences still fire.
    fired = set(zip(found["rule_id"], found["record_key"], strict=True))
    assert ("EXP-001", chain["dereg"]["event_id"]) in fired
    assert ("LIC-001", v.item_key) in fired


def test_vin003_licence_typo_agrees_on_exporter_and_brand(settings: Settings) -> None:
    world = World()
    v = Vehicle()
    typo = substituted(v.vin, 16, "A" if v.vin[16] != "A" else "B")
    world.add("licence", v.licence(vin=typo))
    world.event(v, "register", "2023-03-01")  # owner: a person, not the exporter
    pending = world.event(v, "transfer_pending_export", "2025-09-26")
    world.load(settings)

    # Each VIN is on one feed only, so each side proposes the other.
    found = findings(settings, "VIN-003")
    assert found[CHECKED].to_dict("records") == [
        {
            "vin": v.vin,
            "agency": "police",
            "record_key": pending["event_id"],
            "related": f"commerce:{v.licence_no}/{typo}",
            "severity": "warning",
        },
        {
            "vin": typo,
            "agency": "commerce",
            "record_key": f"{v.licence_no}/{typo}",
            "related": f"police:{pending['event_id']}",
            "severity": "warning",
        },
    ]
    assert (
        f"likely counterpart {v.vin} (position 17 differs) on police:{pending['event_id']} "
        f"(same exporter {v.uscc}, same brand {v.brand})"
    ) in found.at[1, "detail"]


def test_vin003_contradicting_or_distant_records_are_no_candidates(settings: Settings) -> None:
    world = World()
    other_exporter, other_brand, distant = Vehicle(), Vehicle(), Vehicle()
    # A customs item one swap away, declared by another exporter than every counterpart.
    world.vehicle(
        other_exporter,
        item={"vin": swapped(other_exporter.vin, 3), "uscc": Vehicle().uscc},
    )
    # A licence one substitution away whose brand is not the police registration's.
    near = substituted(other_brand.vin, 14, "7" if other_brand.vin[14] != "7" else "8")
    world.add("licence", other_brand.licence(vin=near, brand="本田"))
    world.event(other_brand, "transfer_pending_export", "2025-09-26")
    # Two edits away.
    far = substituted(substituted(distant.vin, 14, "Z"), 15, "Z")
    world.add("licence", distant.licence(vin=far))
    world.event(distant, "transfer_pending_export", "2025-09-26")
    world.load(settings)

    assert findings(settings, "VIN-003").empty


def test_vin003_claim_substitution_both_ways(settings: Settings) -> None:
    """A claim carries no exporter or brand, so nothing contradicts; each lone side fires."""
    world = World()
    v = Vehicle()
    register = world.event(v, "register", "2021-04-01")
    typo = substituted(v.vin, 5, "B" if v.vin[5] != "B" else "C")
    claim = world.claim(typo, Vehicle().vin)
    world.load(settings)

    found = findings(settings, "VIN-003")
    assert found[CHECKED].to_dict("records") == sorted(
        [
            {
                "vin": typo,
                "agency": "commerce",
                "record_key": claim["claim_no"],
                "related": f"police:{register['event_id']}",
                "severity": "warning",
            },
            {
                "vin": v.vin,
                "agency": "police",
                "record_key": register["event_id"],
                "related": f"commerce:{claim['claim_no']}",
                "severity": "warning",
            },
        ],
        key=lambda f: f["record_key"],
    )
    assert (
        f"(position 6 differs) on police:{register['event_id']} (no exporter or brand on both "
        "sides to compare)"
    ) in found.set_index("vin").at[typo, "detail"]


@pytest.mark.parametrize("at_a_time", [1, 2])
def test_vin003_lone_vins_a_block_at_a_time_find_what_all_at_once_finds(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, at_a_time: int
) -> None:
    world = World()
    for i in range(4):
        v = Vehicle()
        world.vehicle(v, item={"vin": swapped(v.vin, 3 + i)})
    # A lone VIN one edit from two others: both candidates in its one finding, whatever
    # the blocks.
    v = Vehicle()
    typo = substituted(v.vin, 16, "A" if v.vin[16] != "A" else "B")
    world.vehicle(v, item={"vin": typo})
    other = Vehicle(vin=substituted(typo, 15, "C" if typo[15] != "C" else "D"))
    world.add("licence", other.licence(uscc=v.uscc))
    world.load(settings)

    at_once = findings(settings, "VIN-003")
    monkeypatch.setattr(quality, "LONE_VINS_AT_A_TIME", at_a_time)
    in_blocks = findings(settings, "VIN-003")
    pd.testing.assert_frame_equal(in_blocks, at_once)
    assert len(in_blocks) == 6  # the other licence's VIN is alone too, near the typo
    both = in_blocks.set_index("vin").at[typo, "related"].split(";")
    assert len(both) == 4  # v's licence and two police events, the other's licence
    assert f"commerce:{other.licence_no}/{other.vin}" in both


@pytest.mark.parametrize("spooled", [False, True])
def test_vin003_in_scope_searches_the_vins_held_block_by_block(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, spooled: bool
) -> None:
    """A scoped run looks up its lone VINs and searches every VIN held a block at a time:
    what it finds for the VINs in scope is what a run over everything finds for them,
    whichever blocks the candidates fall in. Searched again from the blocks the
    neighbouring-VIN reach spooled, the store's VINs are not read a second time."""
    world = World()
    typos = []
    for i in range(6):
        v = Vehicle()
        typos.append(swapped(v.vin, 2 + i))
        world.vehicle(v, item={"vin": typos[-1]})
    world.load(settings)
    everything = findings(settings, "VIN-003")
    assert set(everything["vin"]) == set(typos)
    scope = [*typos[::2], Vehicle().vin]  # and a VIN held by none
    monkeypatch.setattr(quality, "HELD_CHUNK", 1)
    monkeypatch.setattr(quality, "HELD_BLOCK", 2)
    engine = connect(settings.database_url)
    try:
        with engine.begin() as conn:
            bulk_insert(conn, reconcile_scope, pd.DataFrame({"kind": "vin", "value": scope}))
        with engine.connect() as conn:
            assert len(list(held_blocks(RuleContext(conn, D, RuleParameters())))) > 3
            ctx = RuleContext(conn, D, RuleParameters(), scoped=True)
            if spooled:
                spool = SpooledVins()
                assert len(list(spool.kept(_held_vin_blocks(ctx)))) > 3
                ctx.carried[_HELD_VINS] = spool
                monkeypatch.setattr(quality, "_held_vin_blocks", None)  # not called again
            scoped = evaluate_rules(ctx, ["VIN-003"], workers=1).findings
            assert not ctx.carried
    finally:
        engine.dispose()
    expected = everything[everything["vin"].isin(scope)]
    pd.testing.assert_frame_equal(
        scoped.sort_values(["record_key", "vin"], ignore_index=True),
        expected.reset_index(drop=True),
    )


@pytest.mark.parametrize("scoped", [False, True])
def test_vin_rules_on_an_empty_store(settings: Settings, scoped: bool) -> None:
    """Nothing found, whether over everything or by a scope (a VIN no feed holds)."""
    World().load(settings)
    engine = connect(settings.database_url)
    try:
        with engine.begin() as conn:
            vin = pd.DataFrame({"kind": ["vin"], "value": [Vehicle().vin]})
            bulk_insert(conn, reconcile_scope, vin)
        with engine.connect() as conn:
            ctx = RuleContext(conn, D, RuleParameters(), scoped=scoped)
            found = evaluate_rules(ctx, ["VIN-001", "VIN-002", "VIN-003"], workers=1).findings
    finally:
        engine.dispose()
    assert found.empty
    assert isinstance(found, pd.DataFrame)


def _near_pairs_by_comparing_every_pair(left: list[str], right: list[str]) -> set[tuple]:
    """The definition, pair by pair (only for a handful of VINs)."""
    pairs = set()
    for vin in set(left):
        for candidate in set(right):
            differs = [i for i in range(17) if vin[i] != candidate[i]]
            if len(differs) == 1:
                pairs.add((vin, candidate, "substitution"))
            elif (
                len(differs) == 2
                and differs[1] == differs[0] + 1
                and vin[differs[0]] == candidate[differs[1]]
                and vin[differs[1]] == candidate[differs[0]]
            ):
                pairs.add((vin, candidate, "transposition"))
    return pairs


def test_near_vin_pairs_finds_every_single_edit_and_nothing_else() -> None:
    rng = random.Random(3779)
    base = [make_vin(rng) for _ in range(60)]
    left, right = list(base[:30]), list(base)
    for vin in base[:30]:
        i = rng.randrange(17)
        right.append(substituted(vin, i, "Z" if vin[i] != "Z" else "Y"))
        j = next(k for k in range(rng.randrange(16), 32) if vin[k % 16] != vin[k % 16 + 1])
        right.append(swapped(vin, j % 16))
        right.append(substituted(substituted(vin, 2, "0"), 12, "A"))  # two edits: never
    # Runs of equal characters: only the last two differ, and only they swap.
    left.append("LSVAA0000A0000001")
    right += ["LSVAA0000A0000010", "LSVAA0000A0000002", "LSVAA0000A0000001", "LSVAA000"]
    got = near_vin_pairs(pd.Series(left), pd.Series(right))
    assert list(got.columns) == ["vin", "candidate", "kind"]
    assert got.equals(got.sort_values(["vin", "candidate", "kind"], ignore_index=True))
    expected = _near_pairs_by_comparing_every_pair(left, [v for v in right if len(v) == 17])
    assert set(got.itertuples(index=False, name=None)) == expected
    assert len(got) == len(expected) >= 60
    assert {p for p in expected if p[0] == "LSVAA0000A0000001"} == {
        ("LSVAA0000A0000001", "LSVAA0000A0000002", "substitution"),
        ("LSVAA0000A0000001", "LSVAA0000A0000010", "transposition"),
    }


def test_near_vin_pairs_from_a_prepared_side_are_the_same() -> None:
    """A side searched twice (the VINs held, by the reach and by VIN-003) is prepared once;
    VINs alike but for one place meet the same candidate through one masked key."""
    rng = random.Random(17)
    held = [make_vin(rng) for _ in range(40)]
    alike = [substituted(held[0], 16, c) for c in "ABC" if held[0][16] != c]
    left = pd.Series([*held[:10], *alike])
    right = pd.Series([*held, *(substituted(v, 3, "Z" if v[3] != "Z" else "Y") for v in held)])
    got = near_vin_pairs(left, VinCodes.of(right))
    assert got.equals(near_vin_pairs(left, right))
    assert set(got.itertuples(index=False, name=None)) == _near_pairs_by_comparing_every_pair(
        list(left), list(right)
    )
    assert set(got.loc[got["vin"].isin(alike), "candidate"]) >= {held[0]}


def test_near_vin_pairs_of_nothing() -> None:
    assert near_vin_pairs(pd.Series([], dtype="str"), pd.Series(["LSVAA0000A0000000"])).empty
    assert near_vin_pairs(pd.Series(["NOT A VIN"]), pd.Series(["LSVAA0000A0000000"])).empty


def test_legal_vins_of_a_batch_are_kept_in_order_as_bytes() -> None:
    """17 characters of the VIN alphabet, nothing before or after: a near miss of each kind
    (lower case, I, a character short or over, a line end, a full-width or accented letter,
    null) is left out."""
    first, second = "LSVAA2180E2100001", "1HGCM82633A004352"
    batch = [
        first,
        None,
        first.lower(),
        "LSVAI2180E2100001",
        first[:-1],
        first + "1",
        first + "\n",
        "Ä" + first[1:],
        "Ｌ" + first[1:],
        second,
    ]
    assert list(_legal(batch)) == [first.encode(), second.encode()]
    assert _legal([]).dtype == np.dtype("S17") and len(_legal([None, "X"])) == 0


def _feeds_of(held: HeldVins) -> dict[str, frozenset[str]]:
    """Each VIN held with the names of the feeds it is on."""
    return {
        vin: frozenset(f for k, f in enumerate(VIN_FEEDS) if mask >> k & 1)
        for vin, mask in zip(held.codes.vins(np.arange(len(held.codes))), held.feeds, strict=True)
    }


@pytest.mark.parametrize(("chunk", "block"), [(3, 2), (HELD_CHUNK, HELD_BLOCK)])
def test_held_vins_are_the_legal_ones_with_the_feeds_the_store_has_them_on(
    engine: Engine, chunk: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store counts each VIN's feeds: a claim's two VIN columns are one feed, a
    cancelled record is on none. A legal VIN alone on its feed is held, an illegal one not.
    Read a few VINs at a time, a block of a few per column at a time, none is lost or
    split between two chunks or two blocks; and the VINs of a scope are looked up alone."""
    monkeypatch.setattr("vehiclehub.rules.quality.HELD_CHUNK", chunk)
    monkeypatch.setattr("vehiclehub.rules.quality.HELD_BLOCK", block)
    rng = random.Random(11)
    pool = [make_vin(rng) for _ in range(8)]
    lone_legal, lone_illegal = make_vin(rng), "LSVAU2180N200000I"  # I: no VIN character
    both_columns, cancelled_only = make_vin(rng), make_vin(rng)
    licences = [_licence(f"L{n}", rng.choice(pool), "X" * 18) for n in range(6)]
    licences.append(_licence("L9", cancelled_only, "X" * 18, record_status="cancelled"))
    claims = [
        {"claim_no": f"C{n}", "old_vin": rng.choice(pool), "new_vin": rng.choice(pool)}
        for n in range(6)
    ]
    claims.append({"claim_no": "C9", "old_vin": both_columns, "new_vin": both_columns})
    events = [_event(f"E{n}", rng.choice(pool)) for n in range(6)]
    events += [_event("E8", lone_legal), _event("E9", lone_illegal), _event("E10", "LSVAU21")]
    items = [{"decl_no": "0" * 18, "item_no": n, "vin": rng.choice(pool)} for n in range(1, 6)]
    _load(engine, "commerce", "licences", *licences)
    _load(engine, "commerce", "tradein_claims", *claims)
    _load(engine, "police", "events", *events)
    _load(engine, "customs", "declarations", *items)
    scope = [pool[0], pool[5], lone_legal, lone_illegal, make_vin(rng)]  # the last held by none
    with engine.begin() as conn:
        bulk_insert(conn, reconcile_scope, pd.DataFrame({"kind": "vin", "value": scope}))
    with engine.connect() as conn:
        ctx = RuleContext(conn, D, RuleParameters(), scoped=True)
        blocks = list(held_blocks(ctx))
        held = HeldVins(
            VinCodes.of_legal(np.concatenate([b.codes.labels.astype("S17") for b in blocks])),
            np.concatenate([b.feeds for b in blocks]),
        )
        in_scope = HeldVins.in_scope(ctx)

    # The same, straightforwardly: every active record's VINs, each with its feed.
    on = pd.DataFrame(
        [(r["vin"], "commerce/licences") for r in licences if "record_status" not in r]
        + [(r[c], "commerce/tradein_claims") for r in claims for c in ("old_vin", "new_vin")]
        + [(r["vin"], "police/events") for r in events]
        + [(r["vin"], "customs/declarations") for r in items],
        columns=["vin", "feed"],
    )
    on = on[on["vin"].str.fullmatch(VIN_PATTERN)]
    expected = on.groupby("vin")["feed"].agg(frozenset).to_dict()
    got = _feeds_of(held)
    assert got == expected
    lone = held.lone()
    alone = set(lone.codes.vins(np.arange(len(lone.codes))))
    assert alone == {vin for vin, feeds in expected.items() if len(feeds) == 1}
    assert {lone_legal, both_columns} <= alone
    assert lone_illegal not in got and cancelled_only not in got
    # Block by block: ascending, each VIN in one block with all its feeds.
    assert len(blocks) > (1 if block == 2 else 0)
    each = [vin for b in blocks for vin in b.codes.vins(np.arange(len(b.codes)))]
    assert each == sorted(expected)
    assert {vin: f for b in blocks for vin, f in _feeds_of(b).items()} == expected
    assert _feeds_of(in_scope) == {vin: expected[vin] for vin in scope if vin in expected}


def plan_of(conn: Connection, query: Select[Any], options: str = "") -> str:
    """PostgreSQL's plan of a query, sent as the hub's batched reads send it; ``options``
    as EXPLAIN takes them (``(ANALYZE)``: run, with what it did)."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(f"EXPLAIN {options} {compiled}", compiled.params)
        return "\n".join(line for (line,) in cursor.fetchall())


@pytest.mark.postgres
def test_the_vins_held_are_read_on_postgresql_from_each_columns_own_index(pg_url: str) -> None:
    """Each VIN column's distinct VINs are read ascending by bytes from the column's index
    of the VINs held: that index alone, already in order, no sort. The planner is told to
    keep off the tables, as a large store's are (a few rows are cheaper to scan). Near miss:
    without the index, the same read sorts."""
    engine = connect(pg_url)
    rng = random.Random(5)
    _load(engine, "commerce", "licences", _licence("L1", make_vin(rng), "X" * 18))
    _load(engine, "commerce", "tradein_claims", {"claim_no": "C1", "old_vin": make_vin(rng)})
    _load(engine, "police", "events", _event("E1", make_vin(rng)))
    _load(engine, "customs", "declarations", {"decl_no": "0" * 18, "item_no": 1})
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        ctx = RuleContext(conn, D, RuleParameters())
        for source in VIN_COLUMNS:
            table = feeds()[source.agency, source.feed].table
            plan = plan_of(conn, ascending_vins(ctx, source))
            assert f"Index Only Scan using {held_vin_index_name(table, source.column)}" in plan
            assert "Sort" not in plan
        conn.exec_driver_sql("DROP INDEX ix_police_events_vin_held")
        plan = plan_of(conn, ascending_vins(ctx, VinColumn("police", "events", "vin")))
        assert "_held" not in plan and "Sort" in plan
        conn.rollback()
    engine.dispose()


def _block(vins: list[str], feeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([v.encode() for v in vins], "S17"), np.array(feeds, np.uint8)


def _vins_of(held: HeldVins) -> list[str]:
    return list(held.codes.vins(np.arange(len(held.codes))))


def test_head_groups_never_split_vins_sharing_positions_1_to_8() -> None:
    """A group of VINs alike in positions 1-8 that spans three blocks comes out whole, in
    one block; every VIN comes out once, in order, with its feeds."""
    group = [f"LSVAM418{n}C2184847" for n in range(5)]
    vins = ["LSVAA0000A0000001", *group, "LSVZZ0000A0000001"]
    blocks = [_block(vins[:2], [1, 2]), _block(vins[2:4], [3, 4]), _block(vins[4:], [5, 6, 7])]
    got = list(quality._head_groups(blocks))
    assert [_vins_of(g) for g in got] == [["LSVAA0000A0000001"], group, ["LSVZZ0000A0000001"]]
    assert [g.feeds.tolist() for g in got] == [[1], [2, 3, 4, 5, 6], [7]]
    # Near miss: a block ending where a group ends is not carried on.
    assert [_vins_of(g) for g in quality._head_groups(blocks[:1])] == [
        ["LSVAA0000A0000001"], ["LSVAM4180C2184847"]
    ]  # fmt: skip


@pytest.mark.parametrize(("block", "bucket"), [(2, 1), (3, 4), (1000, 1_000_000)])
def test_vin003_over_everything_by_groups_finds_what_one_search_finds(
    block: int, bucket: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every edit at every position (substitutions, and swaps of every adjacent pair, those
    across positions 8-11 included) is found once, as one search of the lone VINs against
    all the VINs held finds it; whether the VINs come a few at a time in buckets of a few,
    or all at once."""
    monkeypatch.setattr(quality, "TAIL_BUCKET_VINS", bucket)
    rng = random.Random(8)
    base = [make_vin(rng) for _ in range(12)]
    on: dict[str, int] = {}
    for n, vin in enumerate(base):
        on[vin] = 0b0110  # on two feeds: never lone, a candidate
        for i in range(17):
            lone = 1 << (n + i) % 4
            on.setdefault(substituted(vin, i, "Z" if vin[i] != "Z" else "Y"), lone)
            if i < 16 and vin[i] != vin[i + 1]:
                on.setdefault(vin[:i] + vin[i + 1] + vin[i] + vin[i + 2 :], lone)
    held_vins = sorted(on)
    blocks = [
        _block(held_vins[i : i + block], [on[v] for v in held_vins[i : i + block]])
        for i in range(0, len(held_vins), block)
    ]
    codes = VinCodes.of_legal(np.array([v.encode() for v in held_vins], "S17"))
    everything = HeldVins(codes, np.array([on[v] for v in held_vins], np.uint8))
    expected = quality._near_pairs_across_feeds(everything.lone(), [everything])
    got = quality._near_pairs_of_all(blocks)
    assert got.equals(expected)
    kinds = expected.drop_duplicates(["vin", "candidate"])["kind"].value_counts()
    assert kinds["substitution"] >= 12 * 17 and kinds["transposition"] >= 12 * 10


def test_vin003_over_everything_of_no_vins_finds_nothing() -> None:
    got = quality._near_pairs_of_all([])
    assert got.empty and list(got.columns) == ["vin", "candidate", "kind", "feed", "candidate_feed"]
