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

import numpy as np
import pandas as pd
from sqlalchemy import Connection, insert

from vehiclehub.contract import FeedSpec
from vehiclehub.quality import runtime
from vehiclehub.quality.frame import QualityFrame, key_fingerprint, whole_file_columns
from vehiclehub.quality.history import VolumeBaseline
from vehiclehub.quality.suites import ExpectationSpec, SuiteSpec, suite
from vehiclehub.store.schema import expectation_results, quality_validations

log = logging.getLogger(__name__)

#: Unexpected values GX lists per expectation.
PARTIAL_UNEXPECTED = 10
RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": PARTIAL_UNEXPECTED,
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
    if isinstance(value, tuple):  # a pair expectation's two values
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp | datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, str) and len(value) >= 19 and value[10:19] == "T00:00:00":
        return value[:10]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _missing(value: Any) -> bool:
    """An empty value (None, NaN, NaT): nothing to show as an example."""
    return not isinstance(value, tuple) and bool(pd.isna(value))


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
    # A value missing where one is expected is no example: the count says it.
    distinct = list(dict.fromkeys(_shown(v) for v in samples if not _missing(v)))[:3]
    if distinct:
        text += "; e.g. " + ", ".join(distinct)
    return text


def _parameters(business_date: date, baseline: VolumeBaseline) -> dict[str, Any]:
    values: dict[str, Any] = {"business_date": pd.Timestamp(business_date)}
    if baseline.applies:
        values |= {"volume_floor": baseline.floor, "volume_ceiling": baseline.ceiling}
    return values


#: Expectation types whose outcome for a row depends on that row alone: they are run a
#: slice of the file's rows at a time and their counts added up (:class:`SuiteRun`).
ROW_WISE_TYPES = frozenset(
    {
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_null",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
    }
)

#: Rows of a file's quality frame validated at a time by its row-wise expectations.
SLICE_ROWS = 250_000


def is_row_wise(spec: FeedSpec, expectation: ExpectationSpec) -> bool:
    """Whether each row's outcome of the expectation depends on that row alone: a row-wise
    type, reading no column counted over the whole file (quality.frame, WHOLE_FILE)."""
    whole = whole_file_columns(spec)
    return expectation.type in ROW_WISE_TYPES and not expectation.columns & whole


def is_key_uniqueness(expectation: ExpectationSpec) -> bool:
    """Whether the expectation is the record key's uniqueness in the file: answered from
    the keys the intake holds anyway to reject a repeated one (:class:`KeyRepeats`), not
    by GX over a column of the whole file."""
    return expectation.type == "expect_column_values_to_be_unique" and expectation.columns == {
        "record_key"
    }


class KeyRepeats:
    """The record key's uniqueness over a file, counted as GX counts
    ``expect_column_values_to_be_unique`` on ``record_key``, from each valid row's first
    line with its key (intake.seen_keys.SeenKeys, which compares the keys exactly).

    Unexpected are all the rows of a key on more than one row: each repeat, and the first
    row of each repeated key. GX's first unexpected values are the key fingerprints of the
    earliest of those rows; only they are kept, with the first lines of the repeats (none
    in a file without repeats).
    """

    def __init__(self, spec: FeedSpec) -> None:
        self.spec = spec
        self.valid = 0
        self.repeats = 0
        self._firsts: list[np.ndarray] = []
        self._earliest = pd.Series([], dtype="int64")  # fingerprints by line

    def add(self, records: pd.DataFrame, first_lines: np.ndarray) -> None:
        """A chunk's valid records, repeated keys included, with each one's first line
        with its key (its own line unless it repeats a key)."""
        self.valid += len(records)
        lines = records["line"].to_numpy()
        repeated = first_lines != lines
        if not repeated.any():
            return
        self.repeats += int(repeated.sum())
        self._firsts.append(first_lines[repeated])
        fingerprints = key_fingerprint(self.spec, records[repeated]).to_numpy(dtype=np.int64)
        candidates = pd.concat(
            [
                pd.Series(fingerprints, index=lines[repeated]),
                pd.Series(fingerprints, index=first_lines[repeated]),
                self._earliest,
            ]
        )
        candidates = candidates[~candidates.index.duplicated()].sort_index()
        self._earliest = candidates.iloc[:PARTIAL_UNEXPECTED]

    @property
    def unexpected(self) -> int:
        """The rows of a key on more than one row."""
        firsts = np.unique(np.concatenate(self._firsts)) if self._firsts else ()
        return self.repeats + len(firsts)

    def tally(self, rows: int, item: Any) -> _Tally:
        """GX's counts over a file of ``rows`` rows (the others rejected by the schema,
        whose key GX counts as missing), ``item`` the expectation's result to fill in."""
        return _Tally(
            element=rows,
            missing=rows - self.valid,
            unexpected=self.unexpected,
            samples=[int(v) for v in self._earliest],
            last=item,
        )


@dataclass
class _Tally:
    """A row-wise expectation's counts over the slices validated so far, as GX counts them
    on one slice: rows, rows left out (empty, or outside its row condition: not counted
    by the null checks), unexpected rows and their first values."""

    element: int = 0
    missing: int = 0
    unexpected: int = 0
    samples: list[Any] = field(default_factory=list)
    #: Whether GX counts the rows left out (all but the null checks do).
    counts_missing: bool = True
    #: The latest slice's result, or the first that raised (kept as it is).
    last: Any = None

    @property
    def raised(self) -> bool:
        return self.last is not None and _raised(self.last) is not None

    def add(self, item: Any) -> None:
        if self.raised:
            return
        self.last = item
        body = item.result or {}
        self.counts_missing = "missing_count" in body
        self.element += int(body.get("element_count") or 0)
        self.missing += int(body.get("missing_count") or 0)
        self.unexpected += int(body.get("unexpected_count") or 0)
        room = PARTIAL_UNEXPECTED - len(self.samples)
        self.samples += list(body.get("partial_unexpected_list") or [])[: max(room, 0)]

    def result(self, expectation: ExpectationSpec) -> Any:
        """The expectation's result over every slice, as GX gives it for one validation
        of all the rows (its own formatting and ``mostly`` rule)."""
        from great_expectations.expectations.expectation import (
            _format_map_output,
            _mostly_success,
        )
        from great_expectations.expectations.expectation_configuration import (
            parse_result_format,
        )

        item = self.last
        if self.raised:
            return item
        considered = self.element - self.missing
        mostly = float(expectation.kwargs.get("mostly", 1.0))
        item.success = (
            True
            if self.element == 0 or considered == 0
            else _mostly_success(considered, self.unexpected, mostly)
        )
        item.result = _format_map_output(
            result_format=parse_result_format(RESULT_FORMAT),
            success=item.success,
            element_count=self.element,
            nonnull_count=considered if self.counts_missing else None,
            unexpected_count=self.unexpected,
            unexpected_list=self.samples,
        )["result"]
        return item


def _raised(item: Any) -> str | None:
    """The message of the exception GX caught evaluating an expectation, None if none:
    GX notes it on the result itself, or per metric the expectation needed."""
    info = item.exception_info or {}
    noted = [info, *(v for v in info.values() if isinstance(v, dict))]
    raised = next((n for n in noted if n.get("raised_exception")), None)
    return None if raised is None else str(raised.get("exception_message") or "")


class SuiteRun:
    """A feed's suite run by GX over a file's quality frame, a slice of rows at a time.

    The row-wise expectations (:func:`is_row_wise`) are validated on each slice given to
    :meth:`slice`, in file order, and their counts added up; the key's uniqueness is
    counted from the keys the intake holds (:class:`KeyRepeats`); the others (the row
    count, a column counted over the whole file) are validated once, by :meth:`finish`,
    on the frame of the few columns they read for the whole file. The outcomes and the
    validation result are those of one validation of the whole frame, which is never
    built.

    Expectations lacking a parameter are skipped.
    """

    def __init__(
        self,
        spec: FeedSpec,
        suite_spec: SuiteSpec,
        parameters: dict[str, Any],
        baseline: VolumeBaseline,
    ) -> None:
        self.suite_spec = suite_spec
        self.parameters = parameters
        self.baseline = baseline
        self.quality = FileQuality(suite_spec.name)
        runnable = [e for e in suite_spec.expectations if e.parameters <= set(parameters)]
        for skipped in suite_spec.expectations:
            if skipped not in runnable:
                self.quality.outcomes.append(
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
        self.row_wise = [e for e in runnable if is_row_wise(spec, e)]
        self.keys = [e for e in runnable if is_key_uniqueness(e)]
        self.whole_file = [e for e in runnable if e not in self.row_wise and e not in self.keys]
        self._tallies = {e.name: _Tally() for e in self.row_wise}
        self._row_wise_suite = runtime.suite(suite_spec.name, self.row_wise)

    @property
    def slice_columns(self) -> set[str]:
        """The columns the row-wise expectations read (those of each slice)."""
        return set().union(*(e.columns for e in self.row_wise))

    @property
    def whole_columns(self) -> set[str]:
        """The columns the other expectations read (those kept for the whole file)."""
        return set().union(*(e.columns for e in self.whole_file))

    def _validate(self, frame: pd.DataFrame, expectations: Any) -> Any:
        started = time.perf_counter()
        batch = runtime.batch_definition(self.suite_spec.name).get_batch(
            batch_parameters={"dataframe": frame}
        )
        result = batch.validate(
            expectations, result_format=RESULT_FORMAT, expectation_parameters=self.parameters
        )
        self.quality.seconds += time.perf_counter() - started
        return result

    def slice(self, frame: pd.DataFrame) -> None:
        """Validate the row-wise expectations on the file's next rows."""
        if not self.row_wise:
            return
        for item in self._validate(frame, self._row_wise_suite).results:
            self._tallies[item.expectation_config.meta["name"]].add(item)

    def finish(self, whole: pd.DataFrame, keys: KeyRepeats) -> FileQuality:
        """Validate the other expectations on ``whole`` (a row per row of the file, the
        columns :attr:`whole_columns`), once every slice is validated, and count the key's
        uniqueness from ``keys``: the file's outcomes and its validation result."""
        from great_expectations.validator.validation_statistics import (
            calc_validation_statistics,
        )

        result = self._validate(whole, runtime.suite(self.suite_spec.name, self.whole_file))
        items = list(result.results)
        items += [self._tallies[e.name].result(e) for e in self.row_wise]
        if self.keys:
            # GX's own result of each (on no rows), its counts then those of the file.
            empty = pd.DataFrame({"record_key": pd.Series([], dtype="Int64")})
            blanks = self._validate(empty, runtime.suite(self.suite_spec.name, self.keys))
            items += [
                keys.tally(len(whole), item).result(e)
                for e, item in zip(self.keys, blanks.results, strict=True)
            ]
        order = {e.name: i for i, e in enumerate(self.suite_spec.expectations)}
        items.sort(key=lambda item: order[item.expectation_config.meta["name"]])
        statistics = calc_validation_statistics(items)
        result.results = items
        result.success = statistics.success
        result.statistics = {
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        }
        quality = self.quality
        quality.outcomes += [self._outcome(item) for item in items]
        quality.outcomes.sort(key=lambda o: order[o.expectation])
        quality.result_json = json.dumps(result.to_json_dict(), ensure_ascii=False, default=str)
        return quality

    def _outcome(self, item: Any) -> ExpectationOutcome:
        expectation = self.suite_spec.expectation(item.expectation_config.meta["name"])
        message = _raised(item)
        raised = message is not None
        if raised:
            log.error(
                "%s: expectation %s could not be evaluated: %s",
                self.suite_spec.name,
                expectation.name,
                message,
            )
        body = item.result or {}
        return ExpectationOutcome(
            expectation.name,
            expectation.type,
            expectation.shown_column,
            expectation.severity,
            "error" if raised else ("passed" if item.success else "failed"),
            observed=(
                str(message)[:500] if raised else _observed(expectation, body, self.baseline)
            ),
            unexpected_count=body.get("unexpected_count"),
            element_count=body.get("element_count"),
            description=expectation.notes,
        )


class FileGate:
    """A file's quality gate, worked out as its chunks are read (:meth:`add`): each
    chunk's valid records are reduced to the quality frame's columns, the row-wise
    expectations validated every :data:`SLICE_ROWS` rows and that slice let go; the key's
    repeats are counted (:class:`KeyRepeats`); what the others read is kept for the whole
    file, a few bytes a row, till :meth:`finish`."""

    def __init__(
        self,
        spec: FeedSpec,
        business_date: date,
        baseline: VolumeBaseline,
        slice_rows: int | None = None,
    ) -> None:
        self.run = SuiteRun(
            spec, suite(spec.agency, spec.feed), _parameters(business_date, baseline), baseline
        )
        self.slice_rows = slice_rows or SLICE_ROWS
        self._slice = QualityFrame(spec, self.run.slice_columns)
        self._whole = QualityFrame(spec, self.run.whole_columns)
        self._keys = KeyRepeats(spec)
        self._start = 0

    def add(self, records: pd.DataFrame, end: int, first_lines: np.ndarray) -> None:
        """The valid records of the file's rows before ``end``, after those of the rows
        before them: the rows that passed the schema, prepared for the store, indexed by
        row position, repeated keys included; with each one's first line with its key
        (intake.seen_keys.SeenKeys)."""
        self._slice.add(records)
        self._whole.add(records)
        self._keys.add(records, first_lines)
        if end - self._start >= self.slice_rows:
            self._validate_slice(end)

    def _validate_slice(self, end: int) -> None:
        self.run.slice(self._slice.build(end, start=self._start))
        self._start = end

    def finish(self, rows: int) -> FileQuality:
        """The gate of the file of ``rows`` data rows, every chunk given."""
        # An empty file is validated once too, as GX validates an empty frame.
        if rows > self._start or not rows:
            self._validate_slice(rows)
        return self.run.finish(self._whole.build(rows), self._keys)


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
