"""The manifest (ICD §1, §4, §6), one model for every file that crosses the exchange:
intake reads agencies' manifests into it, publish writes the hub's drops from it, and the
sample world writes its agencies' files with it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

#: The encodings a manifest may name (ICD §1) and the codec that reads each: a UTF-8 file
#: may begin with a BOM.
ENCODINGS = {"utf-8": "utf-8-sig", "gb18030": "gb18030"}
#: The only manifest version this hub reads and writes.
SCHEMA_VERSION = "1"


class Manifest(BaseModel):
    """A data file's manifest. An agency's carries the members up to ``generated_at``; a
    drop's also ``missing_evidence`` and ``log_head`` (ICD §4, §6). The signature is added
    over the dumped document (:func:`vehiclehub.signing.sign_manifest`)."""

    model_config = ConfigDict(frozen=True)

    file: str
    agency: str
    feed: str
    business_date: date
    seq: int
    rows: int
    sha256: str
    encoding: str
    schema_version: str = SCHEMA_VERSION
    generated_at: str | None = None
    missing_evidence: list[str] | None = None
    log_head: dict[str, Any] | None = None

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]

    def dump(self) -> dict[str, Any]:
        """The manifest as its JSON document, members in ICD order, absent ones left out."""
        return self.model_dump(mode="json", exclude_none=True)
