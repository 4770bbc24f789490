"""The registries of planted cases and near misses, and the order they are planted in."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from vehiclehub_samples.stories import Stories

#: What a plant returns: the records its findings are on, as (story rows, record kind),
#: or (story rows, record kind, rule id) for a finding of another rule the case causes.
Planted = list[tuple[np.ndarray, str] | tuple[np.ndarray, str, str]]


#: The order the rules' cases are planted in, every plant first, then every near miss
#: (a rule's variants in the order they are registered). Each case takes stories that the
#: cases before it left, so another order makes another world of the same seed.
ORDER = (
    *("EXP-001", "EXP-002", "EXP-003"),
    *("LIC-001", "LIC-002", "LIC-003", "LIC-004", "LIC-005"),
    *("TAX-001", "TAX-002", "TAX-003", "TAX-004"),
    *("LIC-006", "LIC-007"),
    *("POL-001", "POL-002", "POL-003"),
    *("TRD-001", "TRD-002", "TRD-003", "TRD-004", "TRD-005"),
    *("SLA-001", "SLA-002"),
    *("VIN-001", "VIN-002", "VIN-003"),
)
#: Rule id -> the variants that make it fire; each takes ``(stories, count)``.
PLANTS: dict[str, list[Callable[[Stories, int], Planted]]] = {}
#: Rule id -> stories that come close to it and must not fire it.
NEAR_MISSES: dict[str, list[Callable[[Stories, int], None]]] = {}


#: Name -> noise in the stories (see :func:`story_noise`); the trouble at intake is
#: :data:`NOISE`.
STORY_NOISE: dict[str, Callable[[Stories, float], Planted]] = {}


def plant(
    rule_id: str,
) -> Callable[[Callable[[Stories, int], Planted]], Callable[[Stories, int], Planted]]:
    """Register a variant that bends up to ``count`` stories so that ``rule_id`` fires.

    The function returns the records the findings are on, as (rows, kind) pairs: vehicle
    rows for vehicle kinds, claim rows for ``claim`` and the ``old_``/``new_`` events.
    The rule's count is shared among its variants, each getting at least one.
    """

    def register(function: Callable[[Stories, int], Planted]) -> Callable[[Stories, int], Planted]:
        PLANTS.setdefault(rule_id, []).append(function)
        return function

    return register


def story_noise(
    name: str,
) -> Callable[[Callable[[Stories, float], Planted]], Callable[[Stories, float], Planted]]:
    """Register noise planted in the stories before their records are built: trouble whose
    consequences are findings, not rejections, so that the ground truth expects them (a
    VIN typed over in one feed's copy makes EXP-001, LIC-001, ... fire). The function takes
    ``(stories, fraction)`` and returns every finding it causes, each with its rule id."""

    def register(
        function: Callable[[Stories, float], Planted],
    ) -> Callable[[Stories, float], Planted]:
        STORY_NOISE[name] = function
        return function

    return register


def near_miss(
    rule_id: str,
) -> Callable[[Callable[[Stories, int], None]], Callable[[Stories, int], None]]:
    """Register a story that comes close to ``rule_id`` without firing it (nor any rule)."""

    def register(function: Callable[[Stories, int], None]) -> Callable[[Stories, int], None]:
        NEAR_MISSES.setdefault(rule_id, []).append(function)
        return function

    return register


def expected_frame(rule_id: str, found: Planted) -> pd.DataFrame:
    """The findings a case causes, by story: ``rule_id``'s unless an entry names another."""
    parts = [pd.DataFrame({"rule_id": [], "story": np.array([], np.int64), "kind": []})]
    for entry in found:
        rows, kind = entry[0], entry[1]
        rule = entry[2] if len(entry) == 3 else rule_id
        parts.append(pd.DataFrame({"rule_id": rule, "story": rows, "kind": kind}))
    return pd.concat(parts, ignore_index=True)


def plant_all(s: Stories, count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every plant and near miss, each on ``count`` stories (none when 0); return the
    expected findings by story and the planted stories."""
    expected = [pd.DataFrame({"rule_id": [], "story": np.array([], np.int64), "kind": []})]
    planted = [pd.DataFrame({"case": [], "population": [], "story": np.array([], np.int64)})]
    if count == 0:
        return expected[0], planted[0]
    unordered = (set(PLANTS) | set(NEAR_MISSES)) - set(ORDER)
    if unordered:
        raise ValueError(f"cases of rules {sorted(unordered)} are not in ORDER")
    cases: list[tuple[str, str, Callable[[Stories, int], Planted | None], int]] = [
        (rule_id, rule_id, variant, len(PLANTS[rule_id]))
        for rule_id in ORDER
        for variant in PLANTS.get(rule_id, [])
    ] + [
        (rule_id, f"near {rule_id}", variant, len(NEAR_MISSES[rule_id]))
        for rule_id in ORDER
        for variant in NEAR_MISSES.get(rule_id, [])
    ]
    for rule_id, case, variant, variants in cases:
        vehicles_before, claims_before = s.used.copy(), s.used_claims.copy()
        typos_before = len(s.typos)
        found = variant(s, max(1, -(-count // variants))) or []
        expected.append(expected_frame(rule_id, found))
        s.label_typos(typos_before, case)
        for population, now, before in (
            ("vehicle", s.used, vehicles_before),
            ("claim", s.used_claims, claims_before),
        ):
            rows = np.flatnonzero(now & ~before)
            planted.append(pd.DataFrame({"case": case, "population": population, "story": rows}))
    return pd.concat(expected, ignore_index=True), pd.concat(planted, ignore_index=True)
