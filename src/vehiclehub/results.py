"""What each stage of the nightly cycle returns (:mod:`vehiclehub.pipeline`).

Frozen dataclasses the CLI, the demo and the DAG read by attribute; each has a
``to_dict()``, JSON-able, for XCom and JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from vehiclehub.exchange.base import MISCONFIGURED
from vehiclehub.intake.take import FileOutcome, FileStatus
from vehiclehub.quality.completeness import Completeness
from vehiclehub.retention import Pruned
from vehiclehub.rules.engine import ReconcileResult


class IntakeStatus(StrEnum):
    """What an agency's intake of a night came to (``agency_intakes.status``)."""

    RECEIVED = "received"
    #: Its exchange could not be reached: the next run picks its files up.
    NOT_RECEIVED = "not received"
    #: Its exchange answered without the configured root: no waiting mends it.
    MISCONFIGURED = MISCONFIGURED


class RunStatus(StrEnum):
    """A run's state in the ``runs`` table."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class IntakeResult:
    """One agency's intake: its status, the files taken and the data files waiting for
    their manifest; ``detail`` says why nothing was received."""

    agency: str
    status: IntakeStatus
    files: list[FileOutcome] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    detail: str | None = None

    @property
    def received(self) -> bool:
        return self.status == IntakeStatus.RECEIVED

    def files_with(self, status: FileStatus) -> list[FileOutcome]:
        return [f for f in self.files if f.status == status]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for the run summary and XCom: ``waiting`` when received, ``detail``
        when not."""
        shown: dict[str, Any] = {"agency": self.agency, "status": str(self.status)}
        if self.received:
            return shown | {"files": [f.to_dict() for f in self.files], "waiting": self.waiting}
        return shown | {"detail": self.detail, "files": [f.to_dict() for f in self.files]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntakeResult:
        """Back from :meth:`to_dict` (an XCom value; other members are ignored)."""
        return cls(
            agency=str(data["agency"]),
            status=IntakeStatus(data["status"]),
            files=[FileOutcome.from_dict(f) for f in data.get("files") or []],
            waiting=list(data.get("waiting") or []),
            detail=data.get("detail"),
        )


@dataclass(frozen=True)
class ReconcileStage:
    """The rules' results for the day, and the review decisions that lapsed."""

    rules: ReconcileResult
    decisions_lapsed: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.rules), "decisions_lapsed": self.decisions_lapsed}


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    origin: str


@dataclass(frozen=True)
class PublishResult:
    """The day's drops (rows per drop), their delivery per agency, where the drops and
    the report are, and what proves them."""

    drops: dict[str, int]
    delivered: dict[str, str]
    drops_dir: str
    report: str
    missing_evidence: list[str]
    signing_key: SigningKey
    log_head: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed and kept, and the lines that say so."""

    pruned: Pruned

    @property
    def summary(self) -> list[str]:
        return self.pruned.lines()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.pruned), "summary": self.summary}


@dataclass(frozen=True)
class RunResult:
    """One whole nightly cycle: each stage's result and its wall time in seconds."""

    day: date
    intake: list[IntakeResult]
    completeness: Completeness
    reconcile: ReconcileStage
    publish: PublishResult
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "intake": [i.to_dict() for i in self.intake],
            "completeness": self.completeness.summary(),
            "reconcile": self.reconcile.to_dict(),
            "publish": self.publish.to_dict(),
            "seconds": self.seconds,
        }
