"""Typed-over VINs: a clerk's typo in one feed's copy of a VIN. The VIN-003 plants and the
noise of mistyped VINs share it; each typo also causes the findings of the record that
no longer meets its counterparts (EXP-001, LIC-001, ...), which are expected too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vehiclehub_samples.columns import shares
from vehiclehub_samples.identifiers import (
    DRAWS,
    VIN_ALPHABET,
    VIN_CODES,
    VIN_INDEX,
    ascii_codes,
    codes_text,
    vin_check_codes,
)
from vehiclehub_samples.plants.registry import Planted, story_noise
from vehiclehub_samples.stories import Stories, by_story

#: How a VIN is typed over: one character substituted, two adjacent ones swapped, or a
#: letter typed for a digit that the hub reads back (I for 1, O or Q for 0: VIN-001 only).
TYPOS = ("substitution", "transposition", "misread")
TYPO_SHARES = (40, 40, 20)


#: The records of an export vehicle whose VIN the noise types over, and the records of
#: the same vehicle on other feeds that agree with each (VIN-003's candidates): the
#: register and resale events name a person as owner, which contradicts an exporter, so
#: a typo on the register event has no candidate to propose.
VEHICLE_TYPO_CANDIDATES: dict[str, tuple[str, ...]] = {
    "licence": ("pending", "dereg", "item1"),
    "item1": ("licence", "pending", "dereg"),
    "pending": ("licence", "item1"),
    "dereg": ("licence", "item1"),
    "register": (),
}
_MANDATORY_CHECK = np.frombuffer(b"L12345", np.uint8)


#: What the ground truth says of each VIN typed over: the story (vehicle or claim row) and
#: the kind of its record typed over (``claim old_vin`` / ``claim new_vin`` for a claim's
#: VINs), the right VIN, what was sent and how the hub reads it, how it was typed, and the
#: case (plant or noise) that typed it.
TYPO_COLUMNS = ["population", "story", "kind", "vin", "sent", "read", "how", "case"]


def _type_over_codes(rng: np.random.Generator, codes: np.ndarray, how: np.ndarray) -> np.ndarray:
    """A copy of the VIN code matrix with each row typed over as ``how`` says (a ``misread``
    row must hold a 0 or a 1)."""
    typed = codes.copy()
    rows = np.arange(len(codes))
    size = len(VIN_ALPHABET)
    place = rng.integers(0, 17, len(codes))
    other = VIN_CODES[(VIN_INDEX[codes[rows, place]] + rng.integers(1, size, len(codes))) % size]
    sub = how == "substitution"
    typed[rows[sub], place[sub]] = other[sub]
    differs = codes[:, :-1] != codes[:, 1:]
    first = np.argmax(np.where(differs, rng.random(differs.shape), -1.0), axis=1)
    swap, at = rows[how == "transposition"], first[how == "transposition"]
    typed[swap, at], typed[swap, at + 1] = codes[swap, at + 1], codes[swap, at]
    digit = (codes == ord("0")) | (codes == ord("1"))
    which = np.argmax(np.where(digit, rng.random(digit.shape), -1.0), axis=1)
    misread, at = rows[how == "misread"], which[how == "misread"]
    o_or_q = np.where(rng.random(len(misread)) < 0.5, ord("O"), ord("Q"))
    typed[misread, at] = np.where(codes[misread, at] == ord("0"), o_or_q, ord("I"))
    return typed


def _typed_over(
    s: Stories, vins: pd.Series, how: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each VIN typed over: (what is sent, what the hub reads it as, how it was typed; a
    misread of a VIN without 0 or 1 becomes a substitution). A typo never reads as a VIN
    the world already holds."""
    codes = ascii_codes(vins.to_numpy(str), 17)
    has_digit = ((codes == ord("0")) | (codes == ord("1"))).any(axis=1)
    how = np.where((how == "misread") & ~has_digit, "substitution", how)
    typed = _type_over_codes(s.rng, codes, how)
    for _ in range(DRAWS):
        read = np.where((how == "misread")[:, None], codes, typed)
        text = codes_text(read)
        clash = (how != "misread") & (s.holds(text) | pd.Series(text).duplicated().to_numpy())
        if not clash.any():
            return codes_text(typed), text, how
        typed[clash] = _type_over_codes(s.rng, codes[clash], how[clash])
    raise ValueError("cannot type VINs over without landing on VINs the world holds")


def _fails_check(vins: np.ndarray) -> np.ndarray:
    """VINs whose mandatory check digit (ICD §2) does not fit."""
    codes = ascii_codes(vins, 17)
    mandatory = np.isin(codes[:, 0], _MANDATORY_CHECK)
    wrong: np.ndarray = mandatory & (vin_check_codes(codes) != codes[:, 8])
    return wrong


def type_over_vehicles(s: Stories, rows: np.ndarray, kind: str, how: np.ndarray) -> Planted:
    """Type over the VIN on the ``kind`` record of complete export stories no plant bent;
    return every finding that causes."""
    sent, read, how = _typed_over(s, s.vehicles["vin"].take(rows), how)
    s.override(kind, rows, vin=by_story(rows, sent), _vin=by_story(rows, read))
    if kind == "item1":  # a refund line's VIN is its item's
        s.override("refund1", rows, _vin=by_story(rows, read))
    s.typos.append(
        pd.DataFrame(
            {
                "population": "vehicle",
                "story": rows,
                "kind": kind,
                "vin": s.vehicles["vin"].iloc[rows].to_numpy(str),
                "sent": sent,
                "read": read,
                "how": how,
            }
        )
    )
    misread = how == "misread"
    typo = rows[~misread]
    found: Planted = [(rows[misread], kind, "VIN-001"), (rows[_fails_check(read)], kind, "VIN-002")]
    if VEHICLE_TYPO_CANDIDATES[kind]:
        found.append((typo, kind, "VIN-003"))
        s.candidates += [
            (typo, kind, candidate, read[~misread]) for candidate in VEHICLE_TYPO_CANDIDATES[kind]
        ]
    overdue = typo[s.step("exported")[typo] + s.params.dereg_window_days < s.last]
    stale = typo[s.step("pending")[typo] + s.params.pending_export_days < s.last]
    if kind in ("licence", "item1"):  # the item's licence row names another VIN
        found.append((typo, "item1", "LIC-001"))
    if kind in ("dereg", "item1"):  # the deregistration's VIN has no cleared item
        found += [(typo, "dereg", "EXP-001"), (overdue, "item1", "EXP-003")]
    if kind in ("pending", "item1"):  # the pending export's VIN is on no item
        found.append((stale, "pending", "POL-001"))
    return found


def _type_over_claims(s: Stories, rows: np.ndarray, column: str, how: np.ndarray) -> Planted:
    """Type over the old or new VIN (``column``) of trade-in claims no plant bent; return
    every finding that causes. The car's own VIN is then on police records only, so its
    records get VIN-003 findings too, with the claim as candidate."""
    sent, read, how = _typed_over(s, s.claims[column].take(rows), how)
    s.override("claim", rows, **{column: by_story(rows, sent)})
    if column == "old_vin":
        s.override("claim", rows, _vin=by_story(rows, read))
    s.typos.append(
        pd.DataFrame(
            {
                "population": "claim",
                "story": rows,
                "kind": f"claim {column}",
                "vin": s.claims[column].iloc[rows].to_numpy(str),
                "sent": sent,
                "read": read,
                "how": how,
            }
        )
    )
    misread = how == "misread"
    typo = rows[~misread]
    found: Planted = [
        (rows[misread], "claim", "VIN-001"),
        (rows[_fails_check(read)], "claim", "VIN-002"),
        (typo, "claim", "VIN-003"),
    ]
    right, typed = s.claims[column], pd.Series(read, index=rows)
    if column == "new_vin":
        events = [(typo, "new_register")]
    else:
        scrap = s.claim_is("scrap")[typo]
        events = [
            (typo, "old_register"),
            (typo[scrap], "old_scrap"),
            (typo[~scrap], "old_transfer"),
        ]
        found += [(typo[scrap], "claim", "TRD-001"), (typo[~scrap], "claim", "TRD-003")]
    for event_rows, event in events:
        found.append((event_rows, event, "VIN-003"))
        s.candidates += [
            (event_rows, "claim", event, typed.loc[event_rows].to_numpy()),
            (event_rows, event, "claim", right.iloc[event_rows].to_numpy()),
        ]
    return found


@story_noise("mistyped VINs")
def _mistyped_vins(s: Stories, fraction: float) -> Planted:
    """About ``fraction`` of the export vehicles (complete stories no plant bent) and of the
    trade-in claims have their VIN typed over in one feed's copy: a character substituted,
    two adjacent ones swapped, or I/O/Q typed for 1/0."""
    rows = s.take(round(len(s.vehicles) * fraction), s.complete())
    kinds = list(VEHICLE_TYPO_CANDIDATES)
    kind = s.rng.integers(0, len(kinds), len(rows))
    how = s.rng.choice(TYPOS, len(rows), p=shares(TYPO_SHARES))
    found = [
        type_over_vehicles(s, rows[kind == i], name, how[kind == i]) for i, name in enumerate(kinds)
    ]
    claims = s.take_claims(round(len(s.claims) * fraction), np.ones(len(s.claims), bool))
    new = s.rng.random(len(claims)) < 0.5
    how = s.rng.choice(TYPOS, len(claims), p=shares(TYPO_SHARES))
    found += [
        _type_over_claims(s, claims[~new], "old_vin", how[~new]),
        _type_over_claims(s, claims[new], "new_vin", how[new]),
    ]
    return [entry for planted in found for entry in planted]
