"""The sample world generator: valid identifiers, valid files, deterministic, planted cases."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.factories import read_whole

from vehiclehub.contract import feed, feeds
from vehiclehub.icd.manifest import ENCODINGS
from vehiclehub.identifiers import is_resident_id, is_uscc
from vehiclehub.intake.manifest import parse_manifest
from vehiclehub.intake.validate import check_header, validate_rows
from vehiclehub.rules import RULES
from vehiclehub.vin import check_digit, normalise_vins
from vehiclehub.workdays import is_working_day, working_days_after
from vehiclehub_samples import World, business_dates, generate_world
from vehiclehub_samples.columns import calendar_day, day_number
from vehiclehub_samples.identifiers import bulk_resident_ids, bulk_usccs, bulk_vins
from vehiclehub_samples.plants import NEAR_MISSES, ORDER, PLANTS, near_miss

DATES = business_dates(date(2025, 11, 3), 2)


@pytest.fixture(scope="module")
def clean_world() -> World:
    return generate_world(400, DATES, seed=3, plant_fraction=0, noise=False)


@pytest.fixture(scope="module")
def planted_world() -> World:
    return generate_world(400, DATES, seed=3, plant_fraction=0.01)


@pytest.fixture(scope="module")
def noisy_world() -> World:
    """Enough vehicles for every kind of typo (about 2% of 3,000) and claims for each."""
    return generate_world(3000, DATES, seed=4, claims=400)


def _files(world: World, root: Path) -> dict[str, bytes]:
    for day in world.dates:
        world.write_day(day, root)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _read(root: Path, agency: str, name: str) -> tuple[pd.DataFrame, str]:
    outbox = root / agency / "outbox"
    manifest = parse_manifest((outbox / name.replace(".csv", ".manifest.json")).read_bytes(), name)
    frame, malformed = read_whole((outbox / name).read_bytes(), manifest.codec)
    assert malformed.empty
    return frame, manifest.feed


def test_bulk_vins_are_distinct_with_the_right_check_digit() -> None:
    rng = np.random.default_rng(0)
    vins = bulk_vins(rng, np.array(["LSV", "LGX", "1HG"] * 2000), np.full(6000, 2021))
    normalised = normalise_vins(pd.Series(vins))
    assert normalised["legal"].all() and normalised["check_ok"].all()
    assert not normalised["substituted"].any()
    assert len(set(vins)) == len(vins)
    assert all(v[8] == check_digit(v) for v in vins[:50])
    assert {v[9] for v in vins} == {"M"}  # model year 2021


def test_bulk_usccs_and_resident_ids_are_valid_and_distinct() -> None:
    rng = np.random.default_rng(0)
    usccs = bulk_usccs(rng, np.array(["120116", "310115"] * 500))
    assert is_uscc(pd.Series(usccs)).all() and len(set(usccs)) == len(usccs)
    born = np.full(900, day_number(date(1980, 2, 29)))
    ids = bulk_resident_ids(rng, np.array(["440304"] * 900), born)
    assert is_resident_id(pd.Series(ids)).all() and len(set(ids)) == len(ids)
    assert {i[:14] for i in ids} == {"44030419800229"}


def test_too_few_possible_identifiers_is_an_error() -> None:
    born = np.full(1001, day_number(date(1980, 2, 29)))  # only 1000 sequence numbers
    with pytest.raises(ValueError, match="distinct"):
        bulk_resident_ids(np.random.default_rng(0), np.array(["440304"] * 1001), born)


def test_business_dates_skip_weekends_and_holidays() -> None:
    assert business_dates(date(2025, 9, 30), 2) == [date(2025, 9, 30), date(2025, 10, 9)]
    assert business_dates(date(2025, 11, 7), 2) == [date(2025, 11, 7), date(2025, 11, 10)]


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    first = _files(generate_world(120, DATES, seed=5), tmp_path / "a")
    again = _files(generate_world(120, DATES, seed=5), tmp_path / "b")
    other = _files(generate_world(120, DATES, seed=6), tmp_path / "c")
    assert first == again
    assert first != other


def test_every_row_of_a_clean_world_is_valid(clean_world: World, tmp_path: Path) -> None:
    for day in clean_world.dates:
        clean_world.write_day(day, tmp_path)
    names = sorted(tmp_path.glob("*/outbox/*.csv"))
    assert {p.name.split("_2025")[0] for p in names} == {f"{a}_{f}" for a, f in feeds()}
    for path in names:
        frame, feed_name = _read(tmp_path, path.parent.parent.name, path.name)
        spec = feed(path.parent.parent.name, feed_name)
        assert list(frame.columns) == [c.name for c in spec.columns]
        check_header(spec, list(frame.columns))
        assert validate_rows(spec, frame).empty, path.name
        keys = frame[list(spec.key)]
        assert not keys.duplicated().any(), path.name


def test_a_clean_world_expects_nothing(clean_world: World) -> None:
    truth = clean_world.truth
    assert truth.findings.empty and truth.rejections.empty and truth.planted.empty
    assert set(truth.police_verdicts["verdict"]) == {"verified"}
    assert set(truth.tax_verdicts["verdict"]) == {"verified"}


def test_the_files_carry_about_six_rows_per_vehicle(clean_world: World) -> None:
    rows = sum(clean_world.rows_per_feed().values())
    assert 5 * 400 < rows < 7 * 400


def test_ground_truth_has_each_planted_rule_and_near_miss(planted_world: World) -> None:
    truth = planted_world.truth
    for rule_id in PLANTS:
        assert truth.expected(rule_id), rule_id
    cases = set(truth.planted["case"])
    assert {f"near {rule_id}" for rule_id in NEAR_MISSES} <= cases
    planted_vins = truth.planted.loc[truth.planted["population"] == "vehicle", "vin"]
    assert not planted_vins.duplicated().any()  # one case per vehicle


def test_duplicates_are_planted_on_each_record_involved(planted_world: World) -> None:
    findings = planted_world.truth.findings
    for rule_id in ("LIC-005", "TAX-003"):
        per_vin = findings[findings["rule_id"] == rule_id].groupby("vin").size()
        assert (per_vin == 2).all(), rule_id


def test_verdicts_follow_the_planted_findings(planted_world: World) -> None:
    truth = planted_world.truth
    police = truth.police_verdicts.set_index("event_id")["verdict"]
    for rule_id, verdict in (("EXP-001", "no_export"), ("EXP-002", "before_export")):
        assert set(police[list(truth.expected(rule_id))]) == {verdict}
    overdue = truth.police_verdicts[truth.police_verdicts["verdict"] == "overdue"]
    assert len(overdue) == len(truth.expected("EXP-003"))
    tax = truth.tax_verdicts.assign(key=lambda t: t["refund_no"] + "/" + t["decl_ref"])
    assert set(tax.loc[tax["key"].isin(truth.expected("TAX-003")), "verdict"]) == {"duplicate"}


def test_bad_rows_fail_on_their_column_only(planted_world: World, tmp_path: Path) -> None:
    """Each planted bad value fails validation exactly where the truth says; duplicate keys
    and version conflicts are the store's to find, not validation's."""
    for day in planted_world.dates:
        planted_world.write_day(day, tmp_path)
    truth = planted_world.truth.rejections
    row_level = truth[truth["line"].notna()]
    for (agency, name), expected in row_level.groupby(["agency", "file"]):
        frame, feed_name = _read(tmp_path, str(agency), str(name))
        failures = validate_rows(feed(str(agency), feed_name), frame)
        got = set(zip(failures["line"].astype(int), failures["column"], strict=True))
        by_validation = expected[
            ~expected["column"].isin(["record_version"]) & ~expected["column"].str.contains("/")
        ]
        assert got == set(
            zip(by_validation["line"].astype(int), by_validation["column"], strict=True)
        )


def test_broken_files_are_broken_as_planted(planted_world: World, tmp_path: Path) -> None:
    for day in planted_world.dates:
        planted_world.write_day(day, tmp_path)
    whole = planted_world.truth.rejections
    whole = whole[whole["line"].isna()]
    assert len(whole) == 4
    for row in whole.itertuples():
        outbox = tmp_path / row.agency / "outbox"
        data = (outbox / row.file).read_bytes()
        manifest = parse_manifest(
            (outbox / row.file.replace(".csv", ".manifest.json")).read_bytes(), row.file
        )
        if row.why == "checksum mismatch":
            assert hashlib.sha256(data).hexdigest() != manifest.sha256
        elif row.why == "row count mismatch":
            assert data.count(b"\n") - 1 != manifest.rows
        elif row.why.startswith("bytes do not decode"):
            with pytest.raises(UnicodeDecodeError):
                data.decode(ENCODINGS[manifest.encoding])
        else:
            assert b"hs_code" not in data.splitlines()[0]


def test_files_waiting_unfinished_and_resent_are_planted(
    planted_world: World, tmp_path: Path
) -> None:
    truth = planted_world.truth
    first, second = planted_world.dates
    planted_world.write_day(first, tmp_path)
    waiting = truth.waiting.loc[truth.waiting["business_date"] == first, "file"]
    assert len(waiting) == 1
    police = tmp_path / "police" / "outbox"
    assert (police / waiting.iloc[0]).exists()
    assert not (police / waiting.iloc[0].replace(".csv", ".manifest.json")).exists()
    planted_world.write_day(second, tmp_path)
    assert (police / waiting.iloc[0].replace(".csv", ".manifest.json")).exists()
    assert [p.name for p in tmp_path.rglob("*.part")] == truth.unfinished
    (resent,) = truth.duplicates.itertuples()
    commerce = tmp_path / "commerce" / "outbox"
    assert (commerce / resent.file).read_bytes() == (commerce / resent.same_as).read_bytes()
    assert len(truth.gaps) == 1 and len(truth.corrections) == 1


def test_every_rule_of_the_rulebook_has_plants(planted_world: World) -> None:
    assert set(PLANTS) == set(RULES)
    assert set(planted_world.truth.findings["rule_id"]) == set(RULES)


def test_cases_are_planted_in_the_order_given_and_no_case_goes_unplanted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert sorted(ORDER) == sorted(RULES) and len(set(ORDER)) == len(ORDER)
    monkeypatch.setattr("vehiclehub_samples.plants.registry.NEAR_MISSES", dict(NEAR_MISSES))

    @near_miss("ABC-001")  # a rule the order does not know
    def _unordered(s: object, count: int) -> None: ...

    with pytest.raises(ValueError, match="ABC-001"):
        generate_world(50, DATES[:1], seed=1)
    monkeypatch.undo()
    assert "ABC-001" not in NEAR_MISSES


def test_typed_over_vins_are_single_typos_the_hub_reads_as_planned(noisy_world: World) -> None:
    typos = noisy_world.truth.typos
    assert set(typos["case"]) == {"mistyped VINs", "VIN-003"}
    noise = typos[typos["case"] == "mistyped VINs"]
    assert set(noise["how"]) == {"substitution", "transposition", "misread"}
    assert set(noise["kind"]) == {
        "licence",
        "item1",
        "pending",
        "dereg",
        "register",
        "claim old_vin",
        "claim new_vin",
    }
    read = normalise_vins(typos["sent"])
    assert (read["vin"].to_numpy() == typos["read"].to_numpy()).all()
    assert (read["substituted"].to_numpy() == (typos["how"] == "misread").to_numpy()).all()
    for row in typos.itertuples():
        differs = [i for i in range(17) if row.vin[i] != row.read[i]]
        if row.how == "misread":
            assert differs == [] and row.sent != row.vin
        elif row.how == "substitution":
            assert len(differs) == 1
        else:
            i, j = differs
            assert j == i + 1 and (row.read[i], row.read[j]) == (row.vin[j], row.vin[i])
    held = set(noisy_world.stories.vehicles["vin"]) | set(noisy_world.stories.claims["old_vin"])
    assert not held & set(typos.loc[typos["how"] != "misread", "read"])


def test_vin003_candidates_are_the_typed_records_counterparts(noisy_world: World) -> None:
    truth = noisy_world.truth
    proposed = set(truth.candidates["record_key"])
    assert proposed == truth.expected("VIN-003")
    # Each typed-over export record's candidates are on other feeds than its own.
    for row in truth.candidates.itertuples():
        assert not row.related.startswith(f"{row.agency}:")
    # Every typo but on a register event (its owner, a person, contradicts every
    # counterpart) is proposed, and so is the right VIN of a claim's car, then alone too.
    typed = truth.typos[truth.typos["how"] != "misread"]
    proposing = typed[typed["kind"] != "register"]
    assert set(proposing["read"]) <= set(truth.candidates["vin"])
    assert not set(typed.loc[typed["kind"] == "register", "read"]) & set(truth.candidates["vin"])
    claims = proposing[proposing["population"] == "claim"]
    assert len(claims) and set(claims["vin"]) <= set(truth.candidates["vin"])


def test_wrong_check_digits_are_mandatory_only_for_the_plant(planted_world: World) -> None:
    stories = planted_world.stories
    planted = planted_world.truth.planted
    for case, mandatory in (("VIN-002", True), ("near VIN-002", False)):
        rows = planted.loc[planted["case"] == case, "story"]
        vins = normalise_vins(stories.vehicles["vin"].iloc[rows])
        assert rows.size and not vins["check_ok"].any()
        assert (vins["check_mandatory"] == mandatory).all()


def test_working_days_agree_with_the_hubs_calendar(planted_world: World) -> None:
    stories = planted_world.stories
    days = np.arange(stories.last - 300, stories.last - 10, dtype=np.float64)
    for count in (1, 3, 6):
        after = stories.working_day_after(days, count)
        counted = working_days_after(
            pd.Series([calendar_day(d) for d in days]), pd.Series([calendar_day(d) for d in after])
        )
        assert (counted == count).all()
        before = stories.working_day_before_last(np.full(len(days), count))
        assert (before[:1] < stories.last).all()
        assert is_working_day(calendar_day(before[0]))
        one_less = working_days_after(
            pd.Series([calendar_day(before[0])]), pd.Series([calendar_day(stories.last)])
        )
        assert one_less.iloc[0] == count
