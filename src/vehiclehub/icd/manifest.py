"""The manifest (ICD §1, §4, §6), one model for every file that crosses the exchange:
intake reads agencies' manifests into it, publish writes the hub's drops from it, and the
sample world writes its agencies' files with it.

The model is the one declaration of what a valid manifest holds: each member's type and
limits, and in its description what a value must be, which is what a rejection says a
wrong value is not.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
)

#: The encodings a manifest may name (ICD §1) and the codec that reads each: a UTF-8 file
#: may begin with a BOM.
ENCODINGS = {"utf-8": "utf-8-sig", "gb18030": "gb18030"}
#: The only manifest version this hub reads and writes.
SCHEMA_VERSION: Final = "1"
#: The most ``rows`` the store can count (a 32-bit integer column).
ROWS_MAX = 2**31 - 1
#: The most ``seq`` a file name can carry (three digits, ICD §1).
SEQ_MAX = 999

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def _iso_date(value: object) -> object:
    """A ``business_date`` as written, ``YYYY-MM-DD``, read as its date; a date is kept.
    Anything else (a date-time, a number, another spelling) is no business date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        return date.fromisoformat(value)  # a ValueError for a day no calendar has
    raise ValueError("not a date YYYY-MM-DD")


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _named_encoding(value: str) -> str:
    if value not in ENCODINGS:
        raise ValueError(f"not one of {', '.join(ENCODINGS)}")
    return value


BusinessDate = Annotated[date, BeforeValidator(_iso_date)]
Sha256 = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9a-fA-F]{64}$", to_lower=True)]
Encoding = Annotated[StrictStr, BeforeValidator(_lower), AfterValidator(_named_encoding)]


class Manifest(BaseModel):
    """A data file's manifest. An agency's carries the members up to ``generated_at``; a
    drop's also ``missing_evidence`` and ``log_head`` (ICD §4, §6). The signature is added
    over the dumped document (:func:`vehiclehub.signing.sign_manifest`)."""

    model_config = ConfigDict(frozen=True)

    file: StrictStr = Field(description="text")
    agency: StrictStr = Field(description="text")
    feed: StrictStr = Field(description="text")
    business_date: BusinessDate = Field(description="a date YYYY-MM-DD")
    seq: StrictInt = Field(ge=0, le=SEQ_MAX, description=f"a whole number from 0 to {SEQ_MAX}")
    rows: StrictInt = Field(ge=0, le=ROWS_MAX, description=f"a whole number from 0 to {ROWS_MAX}")
    sha256: Sha256 = Field(description="a hex SHA-256 digest")
    encoding: Encoding = Field(description=" or ".join(ENCODINGS))
    schema_version: Literal["1"] = Field(
        description=f'"{SCHEMA_VERSION}", the only version this hub reads'
    )
    generated_at: str | None = None
    missing_evidence: list[str] | None = None
    log_head: dict[str, Any] | None = None

    @classmethod
    def parse(cls, document: dict[str, Any]) -> Manifest:
        """An agency's manifest from its JSON object: the members the hub reads, each
        checked; the others ignored (ICD §1). Raises pydantic's ValidationError."""
        read = {name for name, field in cls.model_fields.items() if field.is_required()}
        return cls.model_validate({k: v for k, v in document.items() if k in read})

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]

    def dump(self) -> dict[str, Any]:
        """The manifest as its JSON document, members in ICD order, absent ones left out."""
        return self.model_dump(mode="json", exclude_none=True)
