"""The feed contract (ICD §3), declared once in ``schemas/`` and read from there.

Each ``schemas/<agency>_<feed>.py`` declares one pandera ``DataFrameSchema`` built with
:func:`feed_schema` from :func:`column` specs. Validation, the store's tables, the
sample generator and the documentation all derive from these declarations.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandera.pandas as pa

from vehiclehub import checks
from vehiclehub.icd.codes import RecordStatus
from vehiclehub.icd.codes import values as code_values

#: The longest free text and raw VIN (ICD §1, what a field may hold).
TEXT_MAX_CHARS = 200
RAW_VIN_MAX_CHARS = 64
#: The longest record key or reference (ICD §1).
REFERENCE_MAX_CHARS = 64

#: Logical column types of the ICD and the check that each one carries. Every column
#: also refuses control characters first (:func:`column`).
TYPES: dict[str, Any] = {
    "text": lambda **_: [checks.max_chars(TEXT_MAX_CHARS)],
    "id": lambda **_: [checks.reference(), checks.not_scientific()],
    "vin": lambda **_: [checks.max_chars(RAW_VIN_MAX_CHARS), checks.vin()],
    "uscc": lambda **_: [checks.not_scientific(), checks.uscc()],
    "resident_id": lambda **_: [checks.not_scientific(), checks.resident_id()],
    "owner_id": lambda **_: [checks.not_scientific(), checks.owner_id()],
    "decl_no": lambda **_: [checks.not_scientific(), checks.decl_no()],
    "decl_ref": lambda **_: [checks.not_scientific(), checks.decl_ref()],
    "hs_code": lambda **_: [checks.not_scientific(), checks.hs_code()],
    "country": lambda **_: [checks.country()],
    "digits": lambda n, **_: [checks.not_scientific(), checks.digits(n)],
    "date": lambda **_: [checks.iso_date()],
    "integer": lambda low=None, high=None, **_: [checks.integer(low, high)],
    "decimal": lambda **_: [checks.decimal()],
    "enum": lambda values, **_: [checks.one_of(values)],
}

#: Types whose values identify a person (ICD §5): pseudonymised at intake, masked in errors.
PERSONAL_TYPES = frozenset({"resident_id"})

#: The longest value a column of each text type holds in the store, once prepared: a
#: resident ID is stored as its pseudonym (64 hex digits), a VIN normalised (its raw
#: value beside it, :data:`RAW_VIN_MAX_CHARS`).
STORED_CHARS: dict[str, Any] = {
    "text": lambda **_: TEXT_MAX_CHARS,
    "id": lambda **_: REFERENCE_MAX_CHARS,
    "vin": lambda **_: 17,
    "uscc": lambda **_: 18,
    "resident_id": lambda **_: 64,
    "owner_id": lambda **_: 64,
    "decl_no": lambda **_: 18,
    "decl_ref": lambda **_: 21,
    "hs_code": lambda **_: 10,
    "country": lambda **_: 3,
    "digits": lambda n, **_: n,
    "enum": lambda values, **_: max(len(v) for v in values),
}


def column(
    type_: str,
    *,
    nullable: bool = False,
    default: str | None = None,
    optional: bool = False,
    **options: Any,
) -> pa.Column:
    """A feed column of a logical ICD type.

    ``optional`` columns may be absent from the file (``default`` then fills them);
    every other column is required in the header, even when its values may be empty.
    """
    if type_ not in TYPES:
        raise ValueError(f"unknown column type {type_!r}")
    return pa.Column(
        dtype=None,
        nullable=nullable or default is not None,
        required=not optional,
        checks=[checks.no_control_chars(), *TYPES[type_](**options)],
        metadata={"type": type_, "default": default, **options},
    )


def feed_schema(
    *,
    agency: str,
    feed: str,
    key: list[str],
    columns: dict[str, pa.Column],
    record_status: bool = False,
    row_checks: list[pa.Check] | None = None,
    description: str = "",
) -> pa.DataFrameSchema:
    """One feed's schema: its columns plus ``record_version`` (and ``record_status``)."""
    all_columns = dict(columns)
    all_columns["record_version"] = column("integer", low=1, optional=True, default="1")
    if record_status:
        all_columns["record_status"] = column(
            "enum",
            values=code_values(RecordStatus),
            optional=True,
            default=RecordStatus.ACTIVE.value,
        )
    return pa.DataFrameSchema(
        all_columns,
        checks=row_checks or [],
        name=f"{agency}_{feed}",
        description=description,
        strict=False,
        metadata={"agency": agency, "feed": feed, "key": key, "record_status": record_status},
    )


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool
    required: bool
    default: str | None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def personal(self) -> bool:
        return self.type in PERSONAL_TYPES

    @property
    def values(self) -> list[str]:
        return list(self.options.get("values", []))

    @property
    def stored_chars(self) -> int | None:
        """The longest text the store holds for this column; None for dates and numbers."""
        size = STORED_CHARS.get(self.type)
        return None if size is None else int(size(**self.options))


@dataclass(frozen=True)
class FeedSpec:
    """What the rest of the hub needs to know of a feed, read off its schema."""

    agency: str
    feed: str
    key: tuple[str, ...]
    record_status: bool
    schema: pa.DataFrameSchema
    columns: tuple[ColumnSpec, ...]

    @property
    def table(self) -> str:
        return f"{self.agency}_{self.feed}"

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def vin_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.type == "vin"]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


def _spec_from_schema(schema: pa.DataFrameSchema) -> FeedSpec:
    meta = schema.metadata or {}
    cols = []
    for name, col in schema.columns.items():
        cmeta = dict(col.metadata or {})
        type_ = cmeta.pop("type")
        default = cmeta.pop("default", None)
        cols.append(ColumnSpec(name, type_, col.nullable, col.required, default, cmeta))
    return FeedSpec(
        agency=meta["agency"],
        feed=meta["feed"],
        key=tuple(meta["key"]),
        record_status=bool(meta.get("record_status")),
        schema=schema,
        columns=tuple(cols),
    )


def contract_dir(kind: str = "schemas") -> Path:
    """Where ``schemas/`` (or ``expectations/``) is: inside an installed wheel, or the checkout."""
    packaged = Path(__file__).resolve().parent / "_contract" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / kind


@cache
def feeds() -> dict[tuple[str, str], FeedSpec]:
    """Every feed of ICD §3, keyed by (agency, feed), loaded from ``schemas/``."""
    found: dict[tuple[str, str], FeedSpec] = {}
    for path in sorted(contract_dir("schemas").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_spec = importlib.util.spec_from_file_location(f"vehiclehub_schema_{path.stem}", path)
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        spec = _spec_from_schema(module.schema)
        found[(spec.agency, spec.feed)] = spec
    return found


def feed(agency: str, name: str) -> FeedSpec:
    return feeds()[(agency, name)]


def agency_feeds(agency: str) -> list[FeedSpec]:
    return [spec for (a, _), spec in sorted(feeds().items()) if a == agency]
