"""Agency signatures on manifests (ICD §6): checked for agencies with configured keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from vehiclehub.config import AgencyEndpoint
from vehiclehub.intake.manifest import FileRejected
from vehiclehub.signing import SignatureRejected, keys_by_id, verify_manifest


@dataclass(frozen=True)
class FileSignature:
    """How a file came signed: verified under ``key_id``, unsigned (its agency has no
    configured key, so nothing is checked), or rejected for its signature."""

    state: Literal["verified", "unsigned", "rejected"]
    key_id: str | None = None


class BadSignature(FileRejected):
    """The file's agency signs its files, and this manifest is not signed by one of its
    keys: the file is rejected whole, the message saying which of ICD §6's three cases."""

    signature = FileSignature("rejected")


def file_signature(agency: str, endpoint: AgencyEndpoint, manifest_raw: bytes) -> FileSignature:
    """Check a parsed manifest's signature against the agency's configured keys.

    Raises BadSignature when the agency has keys and the manifest is unsigned, signed
    under a ``key_id`` not among them, or its signature does not verify.
    """
    if not endpoint.public_keys:
        return FileSignature("unsigned")
    document = json.loads(manifest_raw.decode("utf-8-sig"))  # parsed once already
    try:
        key_id = verify_manifest(document, keys_by_id(list(endpoint.public_keys)), agency)
    except SignatureRejected as exc:
        raise BadSignature(str(exc)) from exc
    return FileSignature("verified", key_id)
