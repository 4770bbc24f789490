"""Data quality of the VIN on every record: misreads, check digits and likely typos (RULES.md).

These rules are on records of all four feeds that carry VINs (licences, trade-in claims,
police events, customs items), so their frames carry an ``agency`` column. A trade-in
claim carries two VINs; each is checked on its own, and the finding's VIN says which.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Column,
    ColumnElement,
    MetaData,
    Select,
    String,
    Subquery,
    Table,
    func,
    literal,
    select,
    union_all,
)

from vehiclehub.contract import feeds
from vehiclehub.identifiers import char_matrix
from vehiclehub.rules.base import Night, Reach, RuleContext, joined, rule
from vehiclehub.rules.reach import BY_VIN
from vehiclehub.store.batches import fetch_batches
from vehiclehub.store.load import bulk_insert
from vehiclehub.vin import VIN_PATTERN

#: What a feed's records say that can contradict a near-VIN candidate (VIN-003): the
#: exporter (licence or customs ``uscc``, the police owner) and the brand.
EXPORTER_COLUMN = {
    ("commerce", "licences"): "uscc",
    ("police", "events"): "owner_id",
    ("customs", "declarations"): "uscc",
}
BRAND_COLUMN = {("commerce", "licences"): "brand", ("police", "events"): "brand"}
#: Per VIN position, an odd 64-bit multiplier: a VIN's key is the wrapping sum of its
#: characters times these, so that masking or swapping characters updates it in O(1).
_KEY_WEIGHTS = np.random.default_rng(3779).integers(1, 2**63, 17, dtype=np.uint64) | np.uint64(1)
#: The check digit is mandatory for WMIs starting so (China, North America), advisory
#: otherwise (ICD §2): foreign VINs failing it are no VIN-002.
MANDATORY_CHECK_WMI = ("L", "1", "2", "3", "4", "5")


@dataclass(frozen=True)
class VinColumn:
    """One VIN column of a feed (a trade-in claim has two)."""

    agency: str
    feed: str
    column: str

    @property
    def source(self) -> str:
        """The feed as VIN-003 counts feeds: ``commerce/licences``, ``police/events``, ..."""
        return f"{self.agency}/{self.feed}"

    def evidence(self, ctx: RuleContext) -> Subquery:
        return ctx.evidence(self.agency, self.feed)

    def records(self, table: Subquery) -> Select[Any]:
        """The feed's records as ``vin``, ``agency``, ``record_key`` (ICD §4), ``feed``,
        ``vin_column``, ``exporter`` and ``brand`` (null where the feed carries none)."""
        key = joined(*(table.c[k] for k in feeds()[self.agency, self.feed].key))
        exporter = EXPORTER_COLUMN.get((self.agency, self.feed))
        brand = BRAND_COLUMN.get((self.agency, self.feed))
        return select(
            table.c[self.column].label("vin"),
            literal(self.agency).label("agency"),
            key.label("record_key"),
            literal(self.source).label("feed"),
            literal(self.column).label("vin_column"),
            (table.c[exporter] if exporter else literal(None, String)).label("exporter"),
            (table.c[brand] if brand else literal(None, String)).label("brand"),
        )


VIN_COLUMNS = tuple(
    VinColumn(spec.agency, spec.feed, column)
    for spec in feeds().values()
    for column in spec.vin_columns
)


def _flagged(ctx: RuleContext, flag: str, value: bool, mandatory: bool = False) -> pd.DataFrame:
    """Records of every feed whose ``<VIN column>_<flag>`` is ``value``, with the raw VIN;
    ``mandatory``: only VINs whose check digit is mandatory (ICD §2)."""
    parts = []
    for source in VIN_COLUMNS:
        table = source.evidence(ctx)
        vin = table.c[source.column]
        query = (
            source.records(table)
            .add_columns(
                table.c[f"{source.column}_raw"].label("raw"),
                literal(None, String).label("related"),
            )
            .where(ctx.reached(vin), table.c[f"{source.column}_{flag}"] == value)
        )
        if mandatory:
            query = query.where(func.substr(vin, 1, 1).in_(MANDATORY_CHECK_WMI))
        parts.append(query)
    return ctx.frame(union_all(*parts))


def _named(found: pd.DataFrame) -> pd.Series:
    """How a detail names the VIN checked: ``VIN``, or a claim's ``old_vin`` / ``new_vin``."""
    return found["vin_column"].where(found["vin_column"] != "vin", "VIN")


@rule("VIN-001", "info", on="commerce", reach=(BY_VIN,))
def find_vins_read_with_substitutions(ctx: RuleContext) -> pd.DataFrame:
    """A VIN that only matches after I/O/Q were read as 1/0/0 or a barcode's leading I dropped."""
    found = _flagged(ctx, "substituted", True)
    found["detail"] = (
        _named(found)
        + " sent as '"
        + found["raw"]
        + "' was read as "
        + found["vin"]
        + " (I, O, Q read as 1, 0, 0, or a barcode's leading I dropped)"
    )
    return found


@rule("VIN-002", "warning", on="commerce", reach=(BY_VIN,))
def find_vins_failing_check_digit(ctx: RuleContext) -> pd.DataFrame:
    """A VIN whose mandatory check digit (position 9) does not fit: likely mistyped."""
    found = _flagged(ctx, "check_ok", False, mandatory=True)
    found["detail"] = (
        _named(found)
        + " "
        + found["vin"]
        + " fails its mandatory check digit: position 9 is "
        + found["vin"].str.slice(8, 9)
        + ", not the digit its other characters give"
    )
    return found


def _neighbouring_vins(night: Night) -> pd.Series:
    """The VINs held one typo away from a VIN the night changed: whether theirs is alone on
    its feed, or which candidates agree with it, may have changed. The VINs held are
    searched a block at a time (:func:`held_blocks`), and spooled for VIN-003 to search
    again (:class:`SpooledVins`): the store is read once a night."""
    changed = pd.Series(night.ctx.conn.execute(night.changed("vin")).scalars().all(), dtype="str")
    codes = VinCodes.of(changed)
    if len(codes) == 0:
        return pd.Series([], dtype="str")
    spool = SpooledVins()
    blocks = _prepared(spool.kept(_held_vin_blocks(night.ctx)))
    found = [block.codes.vins(near_vin_rows(codes, block.codes)[1]) for block in blocks]
    night.ctx.carried[_HELD_VINS] = spool  # VIN-003 reads them next
    return pd.concat([pd.Series([], dtype="str"), *found], ignore_index=True)


#: A changed record reaches the records of the VINs one typo away from its VINs (VIN-003).
BY_NEIGHBOUR = Reach("by neighbouring VIN", "vin", _neighbouring_vins)


@rule("VIN-003", "warning", on="commerce", reach=(BY_VIN, BY_NEIGHBOUR))
def find_vins_with_likely_counterpart(ctx: RuleContext) -> pd.DataFrame:
    """A VIN found on one feed only, one typo away from a VIN on another feed's agreeing record.

    The candidates are shown for an operator to decide; nothing is linked, so the findings
    the typo causes elsewhere (EXP-001, LIC-001, ...) still fire.
    """
    spool: SpooledVins | None = ctx.carried.pop(_HELD_VINS, None)
    if ctx.scoped:
        # The lone VINs in scope, searched for against the VINs held a block at a time:
        # as the neighbouring-VIN reach spooled them, or from the store.
        lone = HeldVins.in_scope(ctx).lone()
        blocks: Iterable[HeldVins] = (
            held_blocks(ctx) if spool is None else _prepared(spool.blocks())
        )
        pairs = _near_pairs_across_feeds(lone, blocks)
        del lone, blocks
    else:
        # Every VIN may be a lone one: searched among the VINs it shares a span with.
        pairs = _near_pairs_of_all(_held_vin_blocks(ctx))
    return pd.concat(
        [_agreeing(ctx, block) for block in _by_lone_vins(pairs, LONE_VINS_AT_A_TIME)],
        ignore_index=True,
    )


def _near_pairs_across_feeds(lone: HeldVins, blocks: Iterable[HeldVins]) -> pd.DataFrame:
    """The near pairs of the ``lone`` VINs and the VINs of ``blocks`` (each VIN of the
    store in one block) on another feed (:meth:`HeldVins.across_feeds`), sorted by VIN,
    candidate and kind, then in the order of :data:`VIN_FEEDS`; none for no blocks (a
    store without VINs)."""
    return _in_pair_order(
        [lone.across_feeds(block, *near_vin_rows(lone.codes, block.codes)) for block in blocks]
    )


def _in_pair_order(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Near pairs found in parts, each pair in one part, as one search over everything
    orders them: by VIN, candidate and kind, then in the order of :data:`VIN_FEEDS`."""
    if len(parts) <= 1:
        nothing = np.zeros(0, np.intp)
        none = HeldVins(VinCodes.of_legal(_NO_VINS[0]), _NO_VINS[1])
        return parts[0] if parts else none.across_feeds(none, nothing, nothing, nothing)
    pairs = pd.concat(parts, ignore_index=True)
    return pairs.sort_values(["vin", "candidate", "kind"], kind="stable", ignore_index=True)


#: The spans of a VIN that VIN-003 over everything groups by: positions 1-8 (``[:HEAD]``)
#: and 11-17 (``[TAIL:]``). An edit (one position, or two adjacent ones) leaves one of
#: them whole, since two positions (9 and 10) lie between them.
HEAD, TAIL = 8, 10
#: VINs per bucket of the VINs that share their positions 11-17 (VIN-003 over everything).
TAIL_BUCKET_VINS = 500_000


def _near_pairs_of_all(blocks: Iterable[VinBlock]) -> pd.DataFrame:
    """The near pairs of every lone VIN held and a VIN held on another feed (VIN-003 over
    everything), as :func:`_near_pairs_across_feeds` gives them; memory follows the
    largest group of VINs sharing a span, not the store.

    The two VINs of a near pair agree on positions 1-8 or on 11-17 (:data:`HEAD`,
    :data:`TAIL`). The pairs agreeing on 1-8 are searched within the ascending blocks
    of the store, each carried on to the end of its last group sharing 1-8
    (:func:`_head_groups`). Meanwhile the blocks are spooled to disk; the pairs whose
    positions 1-8 differ, which agree on 11-17, are searched within buckets of the VINs
    spooled again by a hash of their 11-17 (:func:`_tail_buckets`). Each pair is found
    in one pass only.
    """
    spool = SpooledVins()
    parts = [_pairs_within(group, same_head=True) for group in _head_groups(spool.kept(blocks))]
    parts += [_pairs_within(bucket, same_head=False) for bucket in _tail_buckets(spool)]
    return _in_pair_order([part for part in parts if not part.empty])


def _pairs_within(held: HeldVins, same_head: bool) -> pd.DataFrame:
    """The near pairs across feeds of the lone VINs of ``held`` and ``held``, of those
    whose positions 1-8 are the same (``same_head``) or differ."""
    lone = held.lone()
    mine, candidate, kind = near_vin_rows(lone.codes, held.codes)
    heads = lone.codes.chars[mine, :HEAD] == held.codes.chars[candidate, :HEAD]
    keep = heads.all(axis=1) == same_head
    return lone.across_feeds(held, mine[keep], candidate[keep], kind[keep])


def _head_groups(blocks: Iterable[VinBlock]) -> Iterator[HeldVins]:
    """The ascending blocks of the VINs held, each ending with a whole group of the VINs
    that share positions 1-8: what a block ends with is carried into the next."""
    carried = _NO_VINS
    for block in blocks:
        vins, on = _joined([carried, block])
        if not len(vins):
            continue
        heads = vins.astype(f"S{HEAD}")
        last = int(np.searchsorted(heads, heads[-1], "left"))
        carried = (vins[last:], on[last:])
        if last:
            yield HeldVins(VinCodes.of_legal(vins[:last]), on[:last])
    if len(carried[0]):
        yield HeldVins(VinCodes.of_legal(carried[0]), carried[1])


def _tail_buckets(spool: SpooledVins) -> Iterator[HeldVins]:
    """The VINs spooled, in buckets of about :data:`TAIL_BUCKET_VINS` by a hash of their
    positions 11-17, each bucket written to a spool of its own, then read whole."""
    count = max(1, -(-spool.vins // TAIL_BUCKET_VINS))
    buckets = [SpooledVins() for _ in range(count)]
    for vins, on in spool.blocks():
        tails = np.zeros((len(vins), 8), np.uint8)
        tails[:, : 17 - TAIL] = vins.view(np.uint8).reshape(-1, 17)[:, TAIL:]
        mixed = tails.view(np.uint64)[:, 0] * np.uint64(0x9E3779B97F4A7C15)
        bucket = (mixed >> np.uint64(32)) % np.uint64(count)
        # Each bucket's VINs of the block, in their order: one sort, not a pass a bucket.
        order = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(count + 1, dtype=np.uint64))
        for spooled, start, end in zip(buckets, bounds[:-1], bounds[1:], strict=True):
            if end > start:
                spooled.keep(vins[order[start:end]], on[order[start:end]])
    for spooled in buckets:
        vins, on = _joined(spooled.blocks())
        yield HeldVins(VinCodes.of_legal(vins), on)


#: VIN-003 reads the records of this many lone VINs' near pairs at a time, with their
#: candidates': a lone VIN's pairs are never split.
LONE_VINS_AT_A_TIME = 20_000


def _by_lone_vins(pairs: pd.DataFrame, lone_vins: int) -> Iterator[pd.DataFrame]:
    """The near pairs (sorted by lone VIN), ``lone_vins`` lone VINs' at a time; no pairs
    are one empty block."""
    if pairs.empty:
        yield pairs
        return
    codes, _ = pd.factorize(pairs["vin"])
    bounds = np.searchsorted(codes, np.arange(0, codes.max() + 1, lone_vins))
    for start, end in pairwise([*bounds, len(pairs)]):
        yield pairs.iloc[start:end]


def _agreeing(ctx: RuleContext, pairs: pd.DataFrame) -> pd.DataFrame:
    """VIN-003's findings from near pairs (every pair of their lone VINs): each lone VIN's
    records on its feed, with each candidate's records on theirs that agree with it."""
    records = _records_of(ctx, pd.concat([pairs["vin"], pairs["candidate"]]).unique())
    theirs = records.rename(columns=lambda c: f"candidate_{c}" if c != "vin" else "candidate")
    found = pairs.merge(records, on=["vin", "feed"]).merge(
        theirs, on=["candidate", "candidate_feed"]
    )
    found = found[
        _agree(found["exporter"], found["candidate_exporter"])
        & _agree(found["brand"], found["candidate_brand"])
    ].reset_index(drop=True)
    found["related"] = found["candidate_agency"] + ":" + found["candidate_record_key"]
    found["detail"] = _candidates_detail(found)
    return found


def _legal_unique(vins: pd.Series) -> np.ndarray:
    """The distinct legal VINs (17 characters of the VIN alphabet) of a Series, as bytes."""
    return _legal(vins.dropna().unique())


def _legal(vins: Iterable[str | None]) -> np.ndarray:
    """The legal VINs among ``vins``, in their order, as 17 bytes each.

    Matched by Arrow over the whole batch, and the matches' characters taken as they lie
    end to end in the Arrow buffer: no Python object per VIN but the one given."""
    text = pa.array(vins if isinstance(vins, list | np.ndarray) else list(vins), pa.string())
    legal = pc.fill_null(pc.match_substring_regex(text, f"^{VIN_PATTERN}$"), False)
    kept = pc.filter(text, legal)
    if len(kept) == 0:
        return np.zeros(0, "S17")
    _, offsets, chars = kept.buffers()
    start = int(np.frombuffer(offsets, np.int32)[kept.offset])
    data = np.frombuffer(chars, np.uint8)[start : start + 17 * len(kept)]
    return data.view("S17").copy()


def _keys(codes: np.ndarray) -> np.ndarray:
    """Each code row's key: the wrapping sum of character x position weight (position by
    position: a temporary of 8 bytes a row, not 8 a character)."""
    keys = np.zeros(len(codes), np.uint64)
    for i, weight in enumerate(_KEY_WEIGHTS):
        keys += codes[:, i] * weight
    return keys


def _equal_keys(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with ``left[i] == right[j]``: the smaller side's distinct keys in a
    hash table, each key of the other side looked up in it once."""
    if len(right) > len(left):
        j, i = _equal_keys(right, left)
        return i, j
    distinct, which = np.unique(right, return_inverse=True)
    at = pd.Index(distinct).get_indexer(left)  # -1: no key of ``right``
    i = np.flatnonzero(at >= 0)
    at = at[i]
    # The positions in ``right`` of key k: order[first[k] : first[k] + count[k]].
    order = np.argsort(which, kind="stable")
    count = np.bincount(which, minlength=len(distinct))
    first = np.cumsum(count) - count
    # Each looked-up key's positions, laid end to end.
    n = count[at]
    starts = np.repeat(first[at] - np.cumsum(n) + n, n)
    return np.repeat(i, n), order[starts + np.arange(len(starts))]


@dataclass(frozen=True)
class VinCodes:
    """Distinct legal VINs as the near-match search reads them: each VIN's character codes
    zero-padded to 24 bytes (so that a row also reads as three 64-bit words, and as the VIN
    itself), and its key. 32 bytes a VIN, and no Python string."""

    chars: np.ndarray
    keys: np.ndarray

    @classmethod
    def of(cls, vins: pd.Series) -> VinCodes:
        """The distinct legal VINs of a Series; any other value is left out."""
        return cls.of_legal(_legal_unique(vins))

    @classmethod
    def of_legal(cls, vins: np.ndarray) -> VinCodes:
        """Legal VINs given as 17 bytes each (``S17``)."""
        chars = np.zeros((len(vins), 24), np.uint8)
        chars[:, :17] = vins.view(np.uint8).reshape(-1, 17)
        return cls(chars, _keys(chars))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def codes(self) -> np.ndarray:
        """The characters' codes, a row of 17 per VIN (a view)."""
        return self.chars[:, :17]

    @property
    def words(self) -> np.ndarray:
        """The characters as three 64-bit words a VIN (a view)."""
        return self.chars.view(np.uint64)

    @property
    def labels(self) -> np.ndarray:
        """The VINs as bytes, for look-ups and comparisons (a view)."""
        return self.chars.view("S24")[:, 0]

    def take(self, rows: np.ndarray) -> VinCodes:
        """The VINs of ``rows``, in that order."""
        return VinCodes(self.chars[rows], self.keys[rows])

    def vins(self, rows: np.ndarray) -> pd.Series:
        """The VINs of ``rows`` as text: only for the few a search found."""
        return pd.Series(self.labels[rows].astype("U17"), dtype="str")


def _words_mask(*places: int) -> np.ndarray:
    """Three 64-bit words that keep every character but those at ``places``."""
    mask = np.full(24, 0xFF, np.uint8)
    mask[list(places)] = 0
    return mask.view(np.uint64)


def _same_but(left: np.ndarray, right: np.ndarray, *places: int) -> np.ndarray:
    """Whether each pair of word rows agrees on every character but those at ``places``."""
    same: np.ndarray = (((left ^ right) & _words_mask(*places)) == 0).all(axis=1)
    return same


#: The kinds of edit :func:`near_vin_rows` finds, by their number in its ``kind``.
EDITS = ("substitution", "transposition")


def near_vin_rows(lhs: VinCodes, rhs: VinCodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of :func:`near_vin_pairs` as row numbers: of ``lhs``, of ``rhs``, and the
    edit's number in :data:`EDITS`; in no particular order."""
    if len(lhs) == 0 or len(rhs) == 0:
        nothing = np.zeros(0, np.intp)
        return nothing, nothing, np.zeros(0, np.uint8)
    lc, lk, lwords = lhs.codes, lhs.keys, lhs.words
    rc, rk, rwords = rhs.codes, rhs.keys, rhs.words
    found: list[tuple[np.ndarray, np.ndarray, int]] = []
    for i in range(17):
        weight = _KEY_WEIGHTS[i]
        li, ri = _equal_keys(lk - lc[:, i] * weight, rk - rc[:, i] * weight)
        # Two VINs one substitution apart never share their whole key (odd weights): equal
        # keys are a VIN met on both sides, dropped before the characters are compared.
        other = lk[li] != rk[ri]
        li, ri = li[other], ri[other]
        keep = _same_but(lwords[li], rwords[ri], i) & (lc[li, i] != rc[ri, i])
        found.append((li[keep], ri[keep], 0))
    for i in range(16):
        a, b = lc[:, i], lc[:, i + 1]
        swappable = np.flatnonzero(a != b)
        a64, b64 = a[swappable].astype(np.uint64), b[swappable].astype(np.uint64)
        # The key with the two characters swapped: (b - a) x w_i + (a - b) x w_i+1 added.
        swapped = lk[swappable] + (b64 - a64) * _KEY_WEIGHTS[i] + (a64 - b64) * _KEY_WEIGHTS[i + 1]
        at, ri = _equal_keys(swapped, rk)
        li = swappable[at]
        keep = (
            _same_but(lwords[li], rwords[ri], i, i + 1)
            & (lc[li, i] == rc[ri, i + 1])
            & (lc[li, i + 1] == rc[ri, i])
        )
        found.append((li[keep], ri[keep], 1))
    return (
        np.concatenate([li for li, _, _ in found]).astype(np.intp),
        np.concatenate([ri for _, ri, _ in found]).astype(np.intp),
        np.concatenate([np.full(len(li), k, np.uint8) for li, _, k in found]),
    )


def near_vin_pairs(left: pd.Series | VinCodes, right: pd.Series | VinCodes) -> pd.DataFrame:
    """Pairs of a legal VIN of ``left`` and a distinct legal VIN of ``right`` one edit apart.

    An edit is one substituted character (``kind`` ``substitution``) or one swap of two
    adjacent different characters (``transposition``). Blocked, never all pairs: each VIN
    gets a 64-bit key (characters times position weights); a substitution at position i
    leaves the key minus that position's term unchanged, and a swap changes the key by a
    known amount, so the candidates are found by equal keys (looked up in a hash table)
    and then confirmed character by character (a key collision costs a comparison, never
    a wrong pair). Either side may come prepared (:class:`VinCodes`), for a side searched
    more than once. Returns columns ``vin``, ``candidate``, ``kind``, sorted.
    """
    lhs = left if isinstance(left, VinCodes) else VinCodes.of(left)
    rhs = right if isinstance(right, VinCodes) else VinCodes.of(right)
    li, ri, kind = near_vin_rows(lhs, rhs)
    pairs = pd.DataFrame(
        {
            "vin": lhs.vins(li),
            "candidate": rhs.vins(ri),
            "kind": pd.Series(np.array(EDITS)[kind], dtype="str"),
        }
    )
    return pairs.sort_values(["vin", "candidate", "kind"], ignore_index=True)


#: The VINs held, spooled by the neighbouring-VIN reach (:class:`SpooledVins`) and carried
#: to VIN-003.
_HELD_VINS = "held_vins"
#: The feeds as VIN-003 counts them (a trade-in claim's two VIN columns are one feed), in
#: order: bit k of a VIN's feed mask (:class:`HeldVins`) is the k-th.
VIN_FEEDS = tuple(dict.fromkeys(source.source for source in VIN_COLUMNS))
#: VINs read from the store at a time: a chunk's VINs are Python strings only until it
#: is reduced to bytes.
HELD_CHUNK = 100_000
#: VINs of each VIN column read ahead of a block of the VINs held (:func:`held_blocks`):
#: a block holds at most this many per column, and a chunk.
HELD_BLOCK = 200_000


@dataclass(frozen=True)
class HeldVins:
    """Legal VINs the store holds, each once, as the neighbouring-VIN reach and VIN-003
    read them: prepared for the near-match search, and with the feeds each is on.

    Only two legal VINs can be one edit apart, so no other VIN is held: an illegal VIN is
    never a candidate, and one alone on its feed never finds one.
    """

    codes: VinCodes
    #: Per VIN (row of ``codes``), the feeds it is on: bit k set for ``VIN_FEEDS[k]``.
    feeds: np.ndarray

    @classmethod
    def in_scope(cls, ctx: RuleContext) -> HeldVins:
        """The VINs held of a scoped run's scope, looked up by the feeds' VIN indexes."""

        def found(source: VinColumn) -> np.ndarray:
            column = source.evidence(ctx).c[source.column]
            query = select(column).where(column.in_(ctx.in_scope())).distinct()
            return np.unique(_legal(ctx.conn.execute(query).scalars().all()))

        vins, feeds = _on_feeds((found(source), _feed_bit(source)) for source in VIN_COLUMNS)
        return cls(VinCodes.of_legal(vins), feeds)

    def lone(self) -> HeldVins:
        """The VINs on one feed only."""
        one_bit = (self.feeds & (self.feeds - 1)) == 0
        rows = np.flatnonzero(one_bit & (self.feeds != 0))
        return HeldVins(self.codes.take(rows), self.feeds[rows])

    def across_feeds(
        self, theirs: HeldVins, mine: np.ndarray, candidate: np.ndarray, kind: np.ndarray
    ) -> pd.DataFrame:
        """Near pairs of a VIN of these (row ``mine``, on one feed) and a candidate (row
        ``candidate`` of ``theirs``), one row per feed of the candidate other than the
        VIN's, as ``vin``, ``candidate``, ``kind``, ``feed`` and ``candidate_feed``; sorted
        by VIN, candidate and kind, then in the order of :data:`VIN_FEEDS`."""
        bits = np.uint8(1) << np.arange(len(VIN_FEEDS), dtype=np.uint8)
        order = np.lexsort((kind, theirs.codes.labels[candidate], self.codes.labels[mine]))
        mine, candidate, kind = mine[order], candidate[order], kind[order]
        on, theirs_on = self.feeds[mine], theirs.feeds[candidate]
        # Per pair and feed: the candidate's there and the lone VIN is not.
        across = ((theirs_on[:, None] & bits) != 0) & (on[:, None] != bits)
        pair, feed = np.nonzero(across)
        names = np.array(VIN_FEEDS)
        return pd.DataFrame(
            {
                "vin": self.codes.vins(mine[pair]),
                "candidate": theirs.codes.vins(candidate[pair]),
                "kind": pd.Series(np.array(EDITS)[kind[pair]], dtype="str"),
                "feed": pd.Series(names[np.argmax(on[pair, None] == bits, axis=1)], dtype="str"),
                "candidate_feed": pd.Series(names[feed], dtype="str"),
            }
        )


def held_blocks(ctx: RuleContext) -> Iterator[HeldVins]:
    """Every VIN the store holds, a block at a time in ascending order, each VIN in one
    block with every feed it is on: memory follows a block, not the store."""
    return _prepared(_held_vin_blocks(ctx))


#: A block of the VINs held: their 17 bytes each, and their feed masks.
VinBlock = tuple[np.ndarray, np.ndarray]
#: A block of no VINs.
_NO_VINS: VinBlock = (np.zeros(0, "S17"), np.zeros(0, np.uint8))


def _prepared(blocks: Iterable[VinBlock]) -> Iterator[HeldVins]:
    """Blocks of VINs prepared for the near-match search."""
    for vins, on in blocks:
        yield HeldVins(VinCodes.of_legal(vins), on)


class SpooledVins:
    """The blocks of the VINs held, written to a temporary file as a night first reads
    them from the store (:meth:`kept`), for its second search over the same VINs
    (:meth:`blocks`): 18 bytes a VIN on disk, a block at a time in memory."""

    def __init__(self) -> None:
        # Outlives this call: closed once its blocks are read, or with the spool.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._count = 0
        #: The VINs kept, over all blocks.
        self.vins = 0

    def keep(self, vins: np.ndarray, on: np.ndarray) -> None:
        """Write one more block to the spool."""
        np.save(self._file, vins)
        np.save(self._file, on)
        self._count += 1
        self.vins += len(vins)

    def kept(self, blocks: Iterable[VinBlock]) -> Iterator[VinBlock]:
        """The ``blocks``, each written to the spool as it is read."""
        for vins, on in blocks:
            self.keep(vins, on)
            yield vins, on

    def blocks(self) -> Iterator[VinBlock]:
        """The blocks kept, in their order; the spool is let go after the last."""
        self._file.seek(0)
        for _ in range(self._count):
            yield np.load(self._file), np.load(self._file)
        self._file.close()


def _held_vin_blocks(ctx: RuleContext) -> Iterator[VinBlock]:
    """The VINs held as 17 bytes each with their feed masks, a block at a time.

    Every VIN column is read side by side in ascending order (:class:`_AscendingVins`),
    :data:`HELD_BLOCK` ahead; a block ends at the least VIN a column with more to read
    has reached, so every column has given all its VINs up to there."""
    columns = [_AscendingVins(ctx, source) for source in VIN_COLUMNS]
    while True:
        for column in columns:
            column.read_ahead(HELD_BLOCK)
        reading = [column.ahead[-1] for column in columns if not column.done]
        if not reading and not any(len(column.ahead) for column in columns):
            return
        through = min(reading) if reading else None
        yield _on_feeds((column.take_through(through), column.bit) for column in columns)


class _AscendingVins:
    """One VIN column's distinct legal VINs in ascending order of their bytes, read a chunk
    at a time (:func:`~vehiclehub.store.batches.fetch_batches`): only a chunk's VINs are ever
    Python strings. The store sorts them (PostgreSQL by the "C" collation: by bytes,
    whatever the database's own)."""

    def __init__(self, ctx: RuleContext, source: VinColumn) -> None:
        self._chunks = fetch_batches(ctx.conn, ascending_vins(ctx, source), HELD_CHUNK)
        self.bit = _feed_bit(source)
        #: Read and not yet taken.
        self.ahead = np.zeros(0, "S17")
        #: Whether every VIN of the column has been read.
        self.done = False

    def read_ahead(self, count: int) -> None:
        """Read on until ``count`` VINs are ahead or the column is done."""
        while len(self.ahead) < count and not self.done:
            rows = next(self._chunks, None)
            if rows is None:
                self.done = True
            else:
                self.ahead = np.concatenate([self.ahead, _legal([value for (value,) in rows])])

    def take_through(self, last: bytes | None) -> np.ndarray:
        """The VINs ahead up to ``last`` (all, for None), taken."""
        end = len(self.ahead) if last is None else int(np.searchsorted(self.ahead, last, "right"))
        taken, self.ahead = self.ahead[:end], self.ahead[end:]
        return taken


def ascending_vins(ctx: RuleContext, source: VinColumn) -> Select[Any]:
    """The distinct VINs of a VIN column's evidence, ascending by their bytes: on
    PostgreSQL by the "C" collation, read from the column's index of the VINs held
    (vehiclehub.store.schema), on SQLite from its VIN look-up index."""
    column: ColumnElement[Any] = source.evidence(ctx).c[source.column]
    if ctx.conn.dialect.name == "postgresql":
        column = column.collate("C")
    vin = column.label("vin")
    return select(vin).distinct().order_by(vin)


def _feed_bit(source: VinColumn) -> np.uint8:
    """The bit of a VIN column's feed in a feed mask (:data:`VIN_FEEDS`)."""
    return np.uint8(1 << VIN_FEEDS.index(source.source))


def _on_feeds(found: Iterable[tuple[np.ndarray, np.uint8]]) -> VinBlock:
    """Sorted distinct VINs with their feed masks, from each feed's sorted distinct VINs
    and the feed's bit."""
    vins, feeds = _NO_VINS
    for more, bit in found:
        vins, feeds = _merged(vins, feeds, more, bit)
    return vins, feeds


def _joined(blocks: Iterable[VinBlock]) -> VinBlock:
    """Blocks of VINs end to end, as one."""
    kept = [_NO_VINS, *blocks]
    return np.concatenate([vins for vins, _ in kept]), np.concatenate([on for _, on in kept])


def _merged(
    vins: np.ndarray, feeds: np.ndarray, more: np.ndarray, bit: np.uint8
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct VINs and their feed masks, with the sorted distinct VINs ``more`` of
    one more feed (``bit``) merged in: a VIN already there gains the bit, any other is
    inserted in its place with that bit alone."""
    at = np.searchsorted(vins, more)
    known = at < len(vins)
    known[known] = vins[at[known]] == more[known]
    feeds[at[known]] |= bit
    new = ~known
    return np.insert(vins, at[new], more[new]), np.insert(feeds, at[new], bit)


def _records_of(ctx: RuleContext, wanted: np.ndarray) -> pd.DataFrame:
    """The records, on every feed, that carry one of the ``wanted`` VINs."""
    staging = Table(
        f"stage_vins_{uuid.uuid4().hex[:8]}",
        MetaData(),
        Column("vin", String(32)),
        prefixes=["TEMPORARY"],
    )
    staging.create(ctx.conn)
    try:
        bulk_insert(ctx.conn, staging, pd.DataFrame({"vin": wanted}))
        parts = []
        for source in VIN_COLUMNS:
            table = source.evidence(ctx)
            parts.append(
                source.records(table).where(table.c[source.column].in_(select(staging.c.vin)))
            )
        records = ctx.frame(union_all(*parts))
    finally:
        staging.drop(ctx.conn)
    # A claim whose two VINs are both wanted is one record per VIN.
    return records.drop(columns="vin_column").drop_duplicates(ignore_index=True)


def _agree(mine: pd.Series, theirs: pd.Series) -> pd.Series:
    """Not contradicting: the same value, or not carried by one side."""
    return (mine.isna() | theirs.isna() | (mine == theirs)).astype(bool)


def _candidates_detail(found: pd.DataFrame) -> pd.Series:
    """The candidates of each finding, each with the evidence that made it one."""
    if found.empty:
        return pd.Series(index=found.index, dtype="str")
    differs = char_matrix(found["vin"], 17) != char_matrix(found["candidate"], 17)
    first = pd.Series(differs.argmax(axis=1) + 1, index=found.index)
    edit = ("position " + first.astype("str") + " differs").where(
        found["kind"] == "substitution",
        "positions " + first.astype("str") + "-" + (first + 1).astype("str") + " swapped",
    )
    exporter = found["exporter"].notna() & found["candidate_exporter"].notna()
    brand = found["brand"].notna() & found["candidate_brand"].notna()
    agreed = (
        ("same exporter " + found["exporter"]).where(exporter, "")
        + pd.Series(", ", index=found.index).where(exporter & brand, "")
        + ("same brand " + found["brand"]).where(brand, "")
    )
    agreed = agreed.where(agreed != "", "no exporter or brand on both sides to compare")
    finding = ["agency", "record_key", "vin"]
    # Per candidate VIN its records, each with what agreed; per finding every candidate VIN.
    per_candidate = (
        found.assign(each=found["related"] + " (" + agreed + ")", edit=edit)
        .sort_values([*finding, "candidate", "related"])
        .groupby([*finding, "candidate", "edit"], sort=False)["each"]
        .agg(", ".join)
        .reset_index()
    )
    per_candidate["each"] = (
        per_candidate["candidate"] + " (" + per_candidate["edit"] + ") on " + per_candidate["each"]
    )
    listed = per_candidate.groupby(finding, sort=False)["each"].agg("; ".join).rename("listed")
    return (
        "VIN "
        + found["vin"]
        + " is on no record of another feed; likely counterpart "
        + found.join(listed, on=finding)["listed"]
        + ". Not linked: an operator decides"
    )
