"""A generated world: its files, written the way agencies upload them, and its ground
truth. :func:`generate_world` is the one entry point.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from vehiclehub.config import RuleParameters
from vehiclehub_samples.columns import calendar_day, day_number
from vehiclehub_samples.files import write_manifest
from vehiclehub_samples.noise import NOISE, Noise
from vehiclehub_samples.plan import PlannedFile, plan_files
from vehiclehub_samples.plants import STORY_NOISE, expected_frame, plant_all
from vehiclehub_samples.plants.typos import TYPO_COLUMNS
from vehiclehub_samples.population import populate
from vehiclehub_samples.records import Numbering, build_records
from vehiclehub_samples.stories import Stories
from vehiclehub_samples.truth import (
    GroundTruth,
    expected_candidates,
    expected_findings,
    expected_gaps,
    expected_police_verdicts,
    expected_rejections,
    expected_tax_verdicts,
    expected_waiting,
)


@dataclass
class World:
    """A generated world: its files per business date and what the hub must make of them."""

    dates: list[date]
    files: list[PlannedFile]
    truth: GroundTruth
    stories: Stories

    def files_of(self, day: date) -> list[PlannedFile]:
        """The files whose data is sent on ``day``."""
        return [f for f in self.files if f.day == day_number(day)]

    def rows_per_feed(self) -> dict[str, int]:
        """Data rows written per feed, over all dates (``.part`` files included)."""
        counts: dict[str, int] = {}
        for f in self.files:
            name = f"{f.agency}/{f.feed}"
            counts[name] = counts.get(name, 0) + len(f.rows())
        return dict(sorted(counts.items()))

    def write_day(self, day: date, exchange: Path) -> list[Path]:
        """Write ``day``'s files into ``exchange/<agency>/outbox`` the way agencies do:
        each data file as ``.part`` renamed when complete, then the manifests (including
        those of earlier files whose manifest arrives today). Returns the data files."""
        number = day_number(day)
        written = [write_data(f, exchange / f.agency) for f in self.files if f.day == number]
        for f in self.files:
            if not f.part and f.manifest_on == number:
                _write_manifest(f, exchange / f.agency)
        return written


def write_csv(rows: pd.DataFrame, sink: BinaryIO, *, header: bool = True) -> None:
    """RFC 4180 CSV of text columns: a plain header (unless ``header`` is false, for rows
    appended to a file), fields quoted only where they must be."""
    if header:
        sink.write((",".join(rows.columns) + "\n").encode())
    table = pa.Table.from_pandas(rows, preserve_index=False)
    try:
        body = io.BytesIO()
        pa_csv.write_csv(
            table, body, pa_csv.WriteOptions(include_header=False, quoting_style="none")
        )
    except pa.ArrowInvalid:  # a value holding a comma or a quote
        body = io.BytesIO()
        pa_csv.write_csv(table, body, pa_csv.WriteOptions(include_header=False))
    sink.write(body.getbuffer())


def write_data(planned: PlannedFile, root: Path) -> Path:
    """Write the data file as ``.part``, then rename it (unless the upload never ends)."""
    outbox = root / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (root / "inbox").mkdir(exist_ok=True)
    target = outbox / planned.name
    part = target.with_name(target.name + ".part")
    source = planned.content()
    with part.open("wb") as sink:
        sink.write(codecs.BOM_UTF8 if source.bom and source.encoding == "utf-8" else b"")
        write_rows(planned.rows(), source.encoding, sink)
    if planned.part:
        return part
    os.replace(part, target)
    return target


def write_rows(rows: pd.DataFrame, encoding: str, sink: BinaryIO, *, header: bool = True) -> None:
    """:func:`write_csv` in ``encoding``."""
    if encoding == "utf-8":
        write_csv(rows, sink, header=header)
    else:  # only small files are sent in other encodings
        buffer = io.BytesIO()
        write_csv(rows, buffer, header=header)
        sink.write(buffer.getvalue().decode("utf-8").encode(encoding))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(planned: PlannedFile, root: Path) -> Path:
    outbox = root / "outbox"
    return write_manifest(
        outbox,
        planned.name,
        planned.agency,
        planned.feed,
        calendar_day(planned.day),
        planned.seq,
        rows=len(planned.rows()),
        sha256=sha256_of(outbox / planned.name),
        encoding=planned.content().encoding,
        overrides=planned.manifest,
    )


def generate_world(
    vehicles: int,
    dates: Sequence[date],
    *,
    seed: int = 1,
    plant_fraction: float = 0.01,
    noise: bool = True,
    vin_typos: float = 0.02,
    claims: int | None = None,
    params: RuleParameters | None = None,
) -> World:
    """A world of ``vehicles`` export vehicles whose files arrive on the business ``dates``.

    ``plant_fraction`` of the vehicles (at least one per case, none when 0) carry each
    planted rule case and each near miss; ``noise`` plants the intake trouble of
    :data:`NOISE` and the noise of :data:`STORY_NOISE`, each in ``vin_typos`` of the
    vehicles and claims (a VIN typed over in one feed's copy). ``claims`` trade-in claims
    (default one per hundred vehicles, at least 40 so that every trade-in case has claims
    to bend).
    ``params`` are the rule parameters the plants aim at (RULES.md defaults).
    """
    if vehicles < 1 or not dates:
        raise ValueError("a world needs at least one vehicle and one business date")
    return make_world(
        np.random.default_rng(seed),
        vehicles,
        tuple(sorted({day_number(d) for d in dates})),
        plant_fraction=plant_fraction,
        file_noise=noise,
        vin_typos=vin_typos if noise else 0.0,
        claims=max(40, vehicles // 100) if claims is None else claims,
        params=params or RuleParameters(),
        numbering=Numbering(),
    )


def make_world(
    rng: np.random.Generator,
    vehicles: int,
    days: tuple[int, ...],
    *,
    plant_fraction: float,
    file_noise: bool,
    vin_typos: float,
    claims: int,
    params: RuleParameters,
    numbering: Numbering,
) -> World:
    """:func:`generate_world` with its random source and its numbering given: the intake
    trouble of :data:`NOISE` only where ``file_noise``, the VINs typed over of
    :data:`STORY_NOISE` where ``vin_typos`` is above 0 (so that a world made block by
    block has each kind of trouble once and typos in every block)."""
    stories = populate(rng, vehicles, claims, days, params)
    count = max(1, round(vehicles * plant_fraction)) if plant_fraction > 0 else 0
    expected, planted = plant_all(stories, count)
    if vin_typos > 0:
        for name, bend in STORY_NOISE.items():
            typos_before = len(stories.typos)
            expected = pd.concat(
                [expected, expected_frame("", bend(stories, vin_typos))], ignore_index=True
            )
            stories.label_typos(typos_before, name)
    records = build_records(stories, numbering)
    findings = expected_findings(records, expected, days[-1])
    candidates = expected_candidates(records, stories.candidates)
    police_verdicts = expected_police_verdicts(records, findings, days[-1])
    tax_verdicts = expected_tax_verdicts(records, findings, days[-1])
    plan = plan_files(records, days)
    trouble = Noise(rng, plan, days)
    if file_noise:
        for plant_noise in NOISE.values():
            plant_noise(trouble)
    planted = planted.assign(
        vin=np.where(
            planted["population"] == "vehicle",
            stories.vehicles["vin"].reindex(planted["story"]).to_numpy(),
            stories.claims["old_vin"].reindex(planted["story"]).to_numpy(),
        )
    )
    truth = GroundTruth(
        findings=findings,
        police_verdicts=police_verdicts,
        tax_verdicts=tax_verdicts,
        rejections=expected_rejections(plan),
        duplicates=pd.DataFrame(trouble.duplicates, columns=["agency", "file", "same_as"]),
        waiting=expected_waiting(plan, days),
        gaps=expected_gaps(plan, days[-1]),
        unfinished=[f.name + ".part" for f in plan.files if f.part],
        corrections=pd.DataFrame(
            trouble.corrections,
            columns=["agency", "feed", "record_key", "record_version", "column", "value"],
        ),
        planted=planted,
        candidates=candidates,
        typos=pd.concat(
            stories.typos or [pd.DataFrame(columns=TYPO_COLUMNS)],
            ignore_index=True,
        ),
    )
    return World([calendar_day(d) for d in days], plan.files, truth, stories)
