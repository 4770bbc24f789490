"""A world too big to hold: made block by block of vehicles, each block's rows appended to
the files on disk as soon as it is made, so that memory follows the block, not the world.

:func:`write_world` stages every business date's files under a directory, manifests
included, and returns a :class:`WrittenWorld` that hands each date's files to the
agencies' outboxes. A world of at most one block is :func:`generate_world`'s, byte for
byte. A bigger one is made of blocks that are worlds of their own: the first with the
intake trouble of :data:`NOISE`, every block with its planted cases and VINs typed over,
its own exporters and claims; licences, declarations, filings, claims, police events and
refunds numbered on from the blocks before (:class:`Numbering`). It cannot be the same
bytes as one world of that size: drawing all vehicles at once orders the random draws
column by column over the whole world, and exporters, batches and numbers are shared by
all its vehicles.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from vehiclehub.config import RuleParameters
from vehiclehub_samples.columns import calendar_day, day_number
from vehiclehub_samples.files import write_manifest
from vehiclehub_samples.plan import PlannedFile
from vehiclehub_samples.records import Numbering
from vehiclehub_samples.truth import GroundTruth
from vehiclehub_samples.world import World, make_world, sha256_of, write_data, write_rows

#: Vehicles per block: a block of 100,000 takes about 1.5 GiB while it is made.
BLOCK_VEHICLES = 100_000


@dataclass
class _Staged:
    """A file written to the staging directory, and what its manifest will say."""

    planned: PlannedFile  # without its rows
    path: Path
    rows: int
    encoding: str
    ordinary: bool  # sound and whole: later blocks' rows may be appended to it


@dataclass
class WrittenWorld:
    """A world's files staged on disk per business date, and its ground truth (the
    findings and VIN-003 candidates of every block; rejections, duplicates, waiting files,
    gaps and corrections of the first, which alone carries intake trouble; no verdicts)."""

    dates: list[date]
    directory: Path
    truth: GroundTruth
    rows_written: dict[str, int] = field(default_factory=dict)  # per agency/feed
    rows_sent: dict[date, int] = field(default_factory=dict)  # per business date

    def rows_per_feed(self) -> dict[str, int]:
        """Data rows written per feed, over all dates (``.part`` files included)."""
        return dict(sorted(self.rows_written.items()))

    def write_day(self, day: date, exchange: Path) -> list[Path]:
        """Move ``day``'s files into ``exchange/<agency>/outbox`` the way agencies upload:
        the data files first, then the manifests. Returns the data files."""
        staged = self.directory / day.isoformat()
        written: list[Path] = []
        for agency_dir in sorted(staged.iterdir()) if staged.is_dir() else []:
            outbox = exchange / agency_dir.name / "outbox"
            outbox.mkdir(parents=True, exist_ok=True)
            (exchange / agency_dir.name / "inbox").mkdir(exist_ok=True)
            files = sorted((agency_dir / "outbox").iterdir())
            for path in sorted(files, key=lambda p: p.name.endswith(".manifest.json")):
                os.replace(path, outbox / path.name)
                if not path.name.endswith(".manifest.json"):
                    written.append(outbox / path.name)
        return written


def write_world(
    vehicles: int,
    dates: Sequence[date],
    directory: Path,
    *,
    seed: int = 1,
    block: int = BLOCK_VEHICLES,
    plant_fraction: float = 0.01,
    vin_typos: float = 0.02,
    params: RuleParameters | None = None,
) -> WrittenWorld:
    """Make a world of ``vehicles`` block by block of ``block`` vehicles and stage its
    files under ``directory/<business date>/<agency>/outbox``, manifests last."""
    if vehicles < 1 or not dates:
        raise ValueError("a world needs at least one vehicle and one business date")
    days = tuple(sorted({day_number(d) for d in dates}))
    shutil.rmtree(directory, ignore_errors=True)
    numbering = Numbering()
    staged: dict[tuple[str, str, int, int], _Staged] = {}
    truths: list[GroundTruth] = []
    rows_written: dict[str, int] = {}
    rows_sent: dict[date, int] = {}
    for number, start in enumerate(range(0, vehicles, block)):
        size = min(block, vehicles - start)
        world = make_world(
            np.random.default_rng(seed if number == 0 else [seed, number]),
            size,
            days,
            plant_fraction=plant_fraction,
            file_noise=number == 0,
            vin_typos=vin_typos,
            claims=max(40, size // 100),
            params=params or RuleParameters(),
            numbering=numbering,
        )
        for planned in world.files:
            rows = planned.rows()
            name = f"{planned.agency}/{planned.feed}"
            rows_written[name] = rows_written.get(name, 0) + len(rows)
            day = calendar_day(planned.day)
            rows_sent[day] = rows_sent.get(day, 0) + len(rows)
            _stage(planned, rows, staged, directory, number == 0)
        truths.append(_without_verdicts(world.truth))
        del world
    for each in staged.values():
        _stage_manifest(each, directory)
    return WrittenWorld(
        [calendar_day(d) for d in days], directory, _merged(truths), rows_written, rows_sent
    )


def _stage(
    planned: PlannedFile,
    rows: pd.DataFrame,
    staged: dict[tuple[str, str, int, int], _Staged],
    directory: Path,
    first: bool,
) -> None:
    """Write the ``first`` block's file as planned; append a later block's rows to the
    feed's ordinary file of that date, in that file's columns and encoding (or, where
    there is none, write them as a file numbered after the feed's others that date)."""
    same_day = [s for (a, f, d, _), s in staged.items() if (a, f, d) == planned_key(planned)]
    ordinary = next((s for s in same_day if s.ordinary), None)
    if first or ordinary is None:
        if not first:
            planned = replace(planned, seq=max((s.planned.seq for s in same_day), default=0) + 1)
        root = directory / calendar_day(planned.day).isoformat() / planned.agency
        sound = not (planned.part or planned.copy_of or planned.rejected_because)
        staged[(*planned_key(planned), planned.seq)] = _Staged(
            replace(planned, frame=planned.frame.iloc[:0], copy_of=None),
            write_data(planned, root),
            len(rows),
            planned.content().encoding,
            sound and (planned.seq == 1 or not first),
        )
        return
    columns = ordinary.planned.columns
    with ordinary.path.open("ab") as sink:
        write_rows(rows.reindex(columns=columns), ordinary.encoding, sink, header=False)
    ordinary.rows += len(rows)


def planned_key(planned: PlannedFile) -> tuple[str, str, int]:
    """The feed and business date of a planned file."""
    return (planned.agency, planned.feed, planned.day)


def _stage_manifest(each: _Staged, directory: Path) -> None:
    """Write a staged file's manifest into the staging directory of the day it arrives."""
    planned = each.planned
    if planned.part:
        return
    day = calendar_day(planned.manifest_on).isoformat()
    write_manifest(
        directory / day / planned.agency / "outbox",
        planned.name,
        planned.agency,
        planned.feed,
        calendar_day(planned.day),
        planned.seq,
        rows=each.rows,
        sha256=sha256_of(each.path),
        encoding=each.encoding,
        overrides=planned.manifest,
    )


def _without_verdicts(truth: GroundTruth) -> GroundTruth:
    """The truth without its verdicts (a row per deregistration and refund line: kept
    for every block, they would grow with the world)."""
    return replace(
        truth,
        police_verdicts=truth.police_verdicts.iloc[:0],
        tax_verdicts=truth.tax_verdicts.iloc[:0],
    )


def _merged(truths: list[GroundTruth]) -> GroundTruth:
    """One ground truth of the blocks: findings, candidates, typos and planted cases of
    all (a planted case's ``story`` numbers it within its block); the rest of the first
    block, whose intake trouble it is."""
    merged = {
        name: pd.concat([getattr(t, name) for t in truths], ignore_index=True)
        for name in ("findings", "candidates", "typos", "planted")
    }
    return replace(truths[0], **merged)


__all__ = ["BLOCK_VEHICLES", "World", "WrittenWorld", "write_world"]
