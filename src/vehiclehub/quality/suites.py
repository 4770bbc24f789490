"""The feeds' expectation suites, ``expectations/<agency>_<feed>.json``, read and checked.

A suite file is GX 1.x suite JSON (``name``, ``expectations`` of ``type``, ``kwargs``,
``meta``, ``notes``). Every expectation carries in its ``meta`` a ``name``, unique in
the suite (it is what rejections, the report and the workbook cite), and a
``severity``: ``critical`` rejects the file whole, ``warning`` loads it and reports.
GX's own ``severity`` field, when present, must agree.

Expectations may only look at the columns of the quality frame
(:func:`vehiclehub.quality.frame.available_columns`): contract columns that hold no
personal data, and the derived columns computed set-based for the gate. Values that
depend on the file are ``{"$PARAMETER": ...}`` of :data:`PARAMETERS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from vehiclehub.contract import contract_dir, feeds
from vehiclehub.errors import HubError
from vehiclehub.quality.frame import available_columns

SEVERITIES = ("critical", "warning")

#: Expectation parameters the gate supplies for each file.
PARAMETERS = {
    "business_date": "the manifest's business date",
    "volume_floor": "the fewest rows a first file may have: a share of the feed's median",
    "volume_ceiling": "the most rows a first file should have: a multiple of the feed's median",
}

_COLUMN_KWARGS = ("column", "column_A", "column_B")


class SuiteError(HubError, ValueError):
    """An expectation suite file that the gate cannot use; the message says what to fix."""


def _condition_columns(condition: Any) -> set[str]:
    """Columns a row condition (GX 1.x Condition JSON) refers to."""
    found: set[str] = set()
    if isinstance(condition, dict):
        column = condition.get("column")
        if isinstance(column, dict) and "name" in column:
            found.add(str(column["name"]))
        for value in condition.values():
            if isinstance(value, dict | list):
                found |= _condition_columns(value)
    elif isinstance(condition, list):
        for item in condition:
            found |= _condition_columns(item)
    return found


def _parameters(value: Any) -> set[str]:
    if isinstance(value, dict):
        if "$PARAMETER" in value:
            return {str(value["$PARAMETER"])}
        return set().union(*(_parameters(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_parameters(v) for v in value))
    return set()


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, as the gate and the report see it."""

    name: str
    type: str
    kwargs: dict[str, Any]
    severity: str
    notes: str
    meta: dict[str, Any]

    @property
    def columns(self) -> set[str]:
        """Every column the expectation reads, its row condition's included."""
        used = {str(self.kwargs[k]) for k in _COLUMN_KWARGS if k in self.kwargs}
        used |= {str(c) for c in self.kwargs.get("column_list", [])}
        return used | _condition_columns(self.kwargs.get("row_condition"))

    @property
    def shown_column(self) -> str | None:
        """The column(s) it is about, for reports: ``a``, ``a, b``, or None for the table."""
        if "column" in self.kwargs:
            return str(self.kwargs["column"])
        pair = [str(self.kwargs[k]) for k in ("column_A", "column_B") if k in self.kwargs]
        listed = [str(c) for c in self.kwargs.get("column_list", [])]
        return ", ".join(pair or listed) or None

    @property
    def parameters(self) -> set[str]:
        return _parameters(self.kwargs)


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    agency: str
    feed: str
    expectations: tuple[ExpectationSpec, ...]

    @property
    def columns(self) -> set[str]:
        return set().union(*(e.columns for e in self.expectations))

    def expectation(self, name: str) -> ExpectationSpec:
        return next(e for e in self.expectations if e.name == name)


def _notes(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value or "")


def parse_suite(document: dict[str, Any], source: str = "suite") -> SuiteSpec:
    """Check a suite document against the contract and the gate; SuiteError if unusable."""
    name = str(document.get("name", ""))
    spec = next((s for s in feeds().values() if s.table == name), None)
    if spec is None:
        raise SuiteError(f"{source}: name {name!r} is not <agency>_<feed> of a contract feed")
    allowed = available_columns(spec)
    expectations: list[ExpectationSpec] = []
    for position, item in enumerate(document.get("expectations", []), start=1):
        meta = dict(item.get("meta") or {})
        label = f"{source}: expectation {position} ({meta.get('name', item.get('type'))})"
        severity = meta.get("severity")
        if severity not in SEVERITIES:
            raise SuiteError(f"{label}: meta.severity must be one of {', '.join(SEVERITIES)}")
        if item.get("severity", severity) != severity:
            raise SuiteError(f"{label}: severity and meta.severity disagree")
        if not meta.get("name"):
            raise SuiteError(f"{label}: meta.name is missing")
        expectation = ExpectationSpec(
            name=str(meta["name"]),
            type=str(item["type"]),
            kwargs=dict(item.get("kwargs") or {}),
            severity=severity,
            notes=_notes(item.get("notes")),
            meta=meta,
        )
        unknown = expectation.columns - allowed
        if unknown:
            raise SuiteError(
                f"{label}: column(s) {', '.join(sorted(unknown))} are not in the quality "
                "frame (personal data never is)"
            )
        unknown = expectation.parameters - set(PARAMETERS)
        if unknown:
            raise SuiteError(f"{label}: unknown parameter(s) {', '.join(sorted(unknown))}")
        expectations.append(expectation)
    names = [e.name for e in expectations]
    if len(set(names)) != len(names):
        raise SuiteError(f"{source}: meta.name repeated")
    if not expectations:
        raise SuiteError(f"{source}: no expectations")
    return SuiteSpec(name, spec.agency, spec.feed, tuple(expectations))


@cache
def suites() -> dict[tuple[str, str], SuiteSpec]:
    """Every feed's suite, keyed by (agency, feed); SuiteError if one is missing or unusable."""
    found: dict[tuple[str, str], SuiteSpec] = {}
    directory = contract_dir("expectations")
    for key, spec in sorted(feeds().items()):
        path = directory / f"{spec.table}.json"
        if not path.is_file():
            raise SuiteError(f"no expectation suite for {spec.agency}/{spec.feed}: {path}")
        document = json.loads(path.read_text(encoding="utf-8"))
        found[key] = parse_suite(document, path.name)
    return found


def suite(agency: str, feed: str) -> SuiteSpec:
    return suites()[(agency, feed)]


def suite_document(agency: str, feed: str) -> dict[str, Any]:
    """The suite file as written (for GX and Data Docs)."""
    path = contract_dir("expectations") / f"{agency}_{feed}.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document
