"""The quality gate of a file: its feed's suite run by GX, judged by severity.

GX marks a validation failed when any expectation fails, warnings included; the gate
looks at each expectation's ``meta.severity`` instead. A failed ``critical``
expectation rejects the file whole (one rejection row naming the expectation, nothing
loaded); failed ``warning`` expectations are recorded and the file loads. An
expectation GX could not evaluate is recorded as ``error`` and gates nothing (a fault
of the suite must not stop the agencies' data); one whose parameters do not apply to
the file (no volume history yet) is ``skipped``.

GX returns counts and a few unexpected values per expectation (result format BASIC;
no index lists, no unexpected rows): samples come only from the quality frame, which
holds no personal data.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, insert

from vehiclehub.contract import FeedSpec
from vehiclehub.quality import runtime
from vehiclehub.quality.history import VolumeBaseline
from vehiclehub.quality.suites import ExpectationSpec, SuiteSpec, suite
from vehiclehub.store.schema import expectation_results, quality_validations

log = logging.getLogger(__name__)

RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 10,
    "include_unexpected_rows": False,
}
#: Derived columns whose values mean nothing to a reader (fingerprints): no samples.
_NO_SAMPLES = frozenset({"record_key"})


@dataclass(frozen=True)
class ExpectationOutcome:
    """What became of one expectation on one file."""

    expectation: str
    type: str
    column: str | None
    severity: str
    outcome: str  # passed | failed | skipped | error
    observed: str | None = None
    unexpected_count: int | None = None
    element_count: int | None = None
    description: str = ""

    def as_row(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "type": self.type,
            "column": self.column,
            "severity": self.severity,
            "outcome": self.outcome,
            "observed": self.observed,
            "unexpected_count": self.unexpected_count,
            "element_count": self.element_count,
            "description": self.description,
        }


@dataclass
class FileQuality:
    """A file's expectation outcomes and GX's validation result (JSON)."""

    suite: str
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    result_json: str = "{}"
    seconds: float = 0.0

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.outcome == "failed" and o.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.outcome == "failed" and o.severity == "warning"]

    @property
    def rejects(self) -> bool:
        return bool(self.critical_failures)

    def rejection(self) -> str:
        """The whole-file rejection's error: every failed critical expectation, named."""
        parts = [
            f'critical expectation "{o.expectation}" ({o.type}) failed: {o.observed}'
            for o in self.critical_failures
        ]
        return "data quality gate: " + "; ".join(parts)


#: The hub's own check beside each feed's suite, recorded among its expectations.
READS_AS_UTF8 = "declared_gb18030_reads_as_utf8"


def reads_as_utf8_warning() -> ExpectationOutcome:
    """A failed warning: a file declared GB18030 whose bytes are also valid UTF-8 with
    non-ASCII characters.

    The file was read as GB18030, as its manifest says (ICD §1: the manifest decides);
    written in UTF-8, its text is garbled (丰田 reads 涓扮敯), and the agency should send it
    again declared ``utf-8``.
    """
    return ExpectationOutcome(
        READS_AS_UTF8,
        "hub check of the declared encoding",
        None,
        "warning",
        "failed",
        observed="declared gb18030; its bytes are also valid UTF-8 with non-ASCII characters",
        description="Read as gb18030, as its manifest says. If the file was written in "
        "UTF-8 its text is garbled (丰田 reads 涓扮敯): ask the agency to send it again "
        "declared utf-8.",
    )


def _shown(value: Any) -> str:
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, str) and len(value) >= 19 and value[10:19] == "T00:00:00":
        return value[:10]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _observed(spec: ExpectationSpec, result: dict[str, Any], baseline: VolumeBaseline) -> str:
    if "observed_value" in result and "unexpected_count" not in result:
        text = _shown(result["observed_value"])
        if spec.type.startswith("expect_table_row_count"):
            text = f"{int(result['observed_value']):,} rows"
            if "volume_floor" in spec.parameters or "volume_ceiling" in spec.parameters:
                bound = baseline.floor if "volume_floor" in spec.parameters else baseline.ceiling
                text += f" (limit {bound:,}: {baseline.describe()})"
        return text
    unexpected = int(result.get("unexpected_count") or 0)
    # Column checks leave empty values out: count against the values there are.
    total = int(result.get("element_count") or 0) - int(result.get("missing_count") or 0)
    text = f"{unexpected:,} of {total:,} values unexpected"
    if total:
        text += f" ({100 * unexpected / total:.2f}%)"
    samples = [] if spec.columns & _NO_SAMPLES else result.get("partial_unexpected_list") or []
    distinct = list(dict.fromkeys(_shown(v) for v in samples))[:3]
    if distinct:
        text += "; e.g. " + ", ".join(distinct)
    return text


def _parameters(business_date: date, baseline: VolumeBaseline) -> dict[str, Any]:
    values: dict[str, Any] = {"business_date": pd.Timestamp(business_date)}
    if baseline.applies:
        values |= {"volume_floor": baseline.floor, "volume_ceiling": baseline.ceiling}
    return values


def run_suite(
    spec: FeedSpec,
    suite_spec: SuiteSpec,
    frame: pd.DataFrame,
    parameters: dict[str, Any],
    baseline: VolumeBaseline,
) -> FileQuality:
    """Validate a quality frame; expectations lacking a parameter are skipped."""
    quality = FileQuality(suite_spec.name)
    runnable = [e for e in suite_spec.expectations if e.parameters <= set(parameters)]
    for skipped in suite_spec.expectations:
        if skipped not in runnable:
            quality.outcomes.append(
                ExpectationOutcome(
                    skipped.name,
                    skipped.type,
                    skipped.shown_column,
                    skipped.severity,
                    "skipped",
                    observed=baseline.describe(),
                    description=skipped.notes,
                )
            )
    started = time.perf_counter()
    batch = runtime.batch_definition(suite_spec.name).get_batch(
        batch_parameters={"dataframe": frame}
    )
    result = batch.validate(
        runtime.suite(suite_spec.name, runnable),
        result_format=RESULT_FORMAT,
        expectation_parameters=parameters,
    )
    quality.seconds = time.perf_counter() - started
    for item in result.results:
        config = item.expectation_config
        expectation = suite_spec.expectation(config.meta["name"])
        info = item.exception_info or {}
        raised = bool(info.get("raised_exception"))
        if raised:
            log.error(
                "%s: expectation %s could not be evaluated: %s",
                suite_spec.name,
                expectation.name,
                info.get("exception_message"),
            )
        body = item.result or {}
        quality.outcomes.append(
            ExpectationOutcome(
                expectation.name,
                expectation.type,
                expectation.shown_column,
                expectation.severity,
                "error" if raised else ("passed" if item.success else "failed"),
                observed=(
                    str(info.get("exception_message") or "")[:500]
                    if raised
                    else _observed(expectation, body, baseline)
                ),
                unexpected_count=body.get("unexpected_count"),
                element_count=body.get("element_count"),
                description=expectation.notes,
            )
        )
    order = {e.name: i for i, e in enumerate(suite_spec.expectations)}
    quality.outcomes.sort(key=lambda o: order[o.expectation])
    quality.result_json = json.dumps(result.to_json_dict(), ensure_ascii=False, default=str)
    return quality


def judge_file(
    spec: FeedSpec, business_date: date, frame: pd.DataFrame, baseline: VolumeBaseline
) -> FileQuality:
    """Run the feed's suite on the quality frame of a file of ``business_date`` that passed
    the schema check (:class:`vehiclehub.quality.frame.QualityFrame`), against ``baseline``.
    """
    suite_spec = suite(spec.agency, spec.feed)
    return run_suite(spec, suite_spec, frame, _parameters(business_date, baseline), baseline)


def log_quality(file: str, quality: FileQuality) -> None:
    log.info(
        "%s: %d expectations in %.2fs, %d critical and %d warnings failed",
        file,
        len(quality.outcomes),
        quality.seconds,
        len(quality.critical_failures),
        len(quality.warnings),
    )


def record_quality(conn: Connection, file_id: int, quality: FileQuality) -> None:
    """Store a file's outcomes and validation result, in the caller's transaction."""
    conn.execute(
        insert(quality_validations).values(
            file_id=file_id,
            suite=quality.suite,
            critical_failed=len(quality.critical_failures),
            warnings_failed=len(quality.warnings),
            seconds=round(quality.seconds, 3),
            result_json=quality.result_json,
        )
    )
    if quality.outcomes:
        conn.execute(
            insert(expectation_results),
            [{"file_id": file_id, **o.as_row()} for o in quality.outcomes],
        )
