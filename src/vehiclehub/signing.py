"""Signatures of the exchange (ICD §6): canonical JSON, the hub's Ed25519 key, and
signed manifests.

A public key is published as standard base64 of its 32 raw bytes; its ``key_id`` is
the first 16 hex digits of the sha256 of those bytes. A manifest's signature covers
the manifest without its ``signature`` member, serialised by RFC 8785 (JSON
Canonicalization Scheme).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from vehiclehub.config import ConfigError, Settings
from vehiclehub.crypto import derive_key
from vehiclehub.errors import HubError

ALGORITHM = "Ed25519"
#: HKDF purpose of the signing key derived from the pseudonym key (see crypto.derive_key).
DERIVED_PURPOSE = b"vehiclehub signing key (derived)"
#: DER prefix that wraps 32 raw Ed25519 public-key bytes as SubjectPublicKeyInfo.
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


# --- RFC 8785 --------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """``value`` serialised by RFC 8785 (JCS), as UTF-8.

    Members sorted by their UTF-16 code units, no white space, strings escaped as
    ECMAScript's JSON.stringify does, numbers as IEEE-754 doubles in ECMAScript's
    shortest form. Raises ValueError for what JCS cannot represent (NaN, infinities,
    lone surrogates) and TypeError for what is not JSON.
    """
    try:
        return _serialise(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"a string holds a lone surrogate: {exc}") from exc


def _serialise(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        # Python escapes exactly what JCS escapes once ensure_ascii is off: ", \ and
        # U+0000..U+001F, the latter as \b \t \n \f \r or \u00xx in lower-case hex.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value) if abs(value) <= 2**53 else _number(float(value))
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_serialise(item) for item in value) + "]"
    if isinstance(value, dict):
        for name in value:
            if not isinstance(name, str):
                raise TypeError(f"member name {name!r} is not a string")
        names = sorted(value, key=lambda name: name.encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(f"{_serialise(n)}:{_serialise(value[n])}" for n in names) + "}"
    raise TypeError(f"{type(value).__name__} is not JSON")


def _number(value: float) -> str:
    """A double as ECMAScript's Number.prototype.toString writes it (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(value):
        raise ValueError(f"{value} has no JSON form")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that read back as the same double, as ECMAScript does.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        shown = point - 1
        head = digits if count == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{head}e{'+' if shown >= 0 else '-'}{abs(shown)}"
    return sign + text


# --- keys ------------------------------------------------------------------------------


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of a private key's public half."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(raw: bytes) -> str:
    """A public key as ICD §6 publishes it: standard base64 of its 32 raw bytes."""
    return base64.b64encode(raw).decode("ascii")


def key_id_of(raw: bytes) -> str:
    """The ``key_id`` of a public key: the first 16 hex digits of sha256 of its raw bytes."""
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its published form (base64 of 32 raw bytes)."""
    raw = base64.b64decode(text, validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)


def keys_by_id(texts: list[str]) -> dict[str, Ed25519PublicKey]:
    """Published public keys, by their ``key_id``."""
    return {key_id_of(base64.b64decode(t, validate=True)): public_key_from_text(t) for t in texts}


def read_private_key(material: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM, or from its 32-byte seed in base64."""
    text = material.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(text, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"the PEM holds a {type(key).__name__}, not an Ed25519 key")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("neither PKCS#8 PEM nor a base64 seed") from exc
    if len(seed) != 32:
        raise ValueError(f"the base64 seed holds {len(seed)} bytes, not 32")
    return Ed25519PrivateKey.from_private_bytes(seed)


KeyOrigin = Literal["signing_key_file", "VHUB_SIGNING_KEY", "derived from the pseudonym key"]


@dataclass(frozen=True)
class HubKey:
    """The hub's signing key and where it came from (the private half is never shown)."""

    private: Ed25519PrivateKey = field(repr=False)
    origin: KeyOrigin

    @property
    def public_raw(self) -> bytes:
        return raw_public_key(self.private)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_raw)

    @property
    def public_text(self) -> str:
        return public_key_text(self.public_raw)

    @property
    def derived(self) -> bool:
        return self.origin == "derived from the pseudonym key"


def hub_signing_key(settings: Settings) -> HubKey:
    """The hub's signing key: ``VHUB_SIGNING_KEY`` (or ``signing_key``), else
    ``signing_key_file``, else derived from the pseudonym key with its own HKDF purpose.

    Raises ConfigError naming the source (never its content) when it cannot be read.
    """
    if settings.signing_key:
        try:
            seed = settings.signing_key.encode("ascii")
            return HubKey(read_private_key(seed), "VHUB_SIGNING_KEY")
        except (ValueError, UnicodeEncodeError) as exc:
            raise ConfigError(
                f"signing key (VHUB_SIGNING_KEY or signing_key) is unusable: {exc}"
            ) from exc
    if settings.signing_key_file:
        path = settings.signing_key_file
        try:
            return HubKey(read_private_key(path.read_bytes()), "signing_key_file")
        except OSError as exc:
            raise ConfigError(f"signing_key_file {path} cannot be read: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"signing_key_file {path} is unusable: {exc}") from exc
    seed = derive_key(settings.pseudonym_key, DERIVED_PURPOSE)
    return HubKey(Ed25519PrivateKey.from_private_bytes(seed), "derived from the pseudonym key")


def hub_verification_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """The hub's current public key and its ``previous_signing_keys``, by ``key_id``."""
    current = hub_signing_key(settings)
    keys = keys_by_id(list(settings.previous_signing_keys))
    keys[current.key_id] = current.private.public_key()
    return keys


def new_private_key_pem() -> tuple[bytes, HubKey]:
    """A fresh Ed25519 key as unencrypted PKCS#8 PEM, and the key itself."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, HubKey(key, "signing_key_file")


# --- signed manifests ------------------------------------------------------------------


def signed_body(document: Mapping[str, Any]) -> bytes:
    """What a manifest's signature covers: the manifest without ``signature``, by RFC 8785."""
    return canonical_json({k: v for k, v in document.items() if k != "signature"})


def sign_manifest(document: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The completed manifest with its ``signature`` member (ICD §6)."""
    value = key.sign(signed_body(document))
    return {
        **{k: v for k, v in document.items() if k != "signature"},
        "signature": {
            "alg": ALGORITHM,
            "key_id": key_id_of(raw_public_key(key)),
            "value": base64.b64encode(value).decode("ascii"),
        },
    }


SignatureFault = Literal["missing", "unknown key", "invalid"]


class SignatureRejected(HubError):
    """A manifest that must be signed is not signed by one of its sender's keys.

    ``fault`` says which of ICD §6's three cases: no signature, a ``key_id`` not
    configured for the sender, or a signature that does not verify.
    """

    def __init__(self, fault: SignatureFault, message: str) -> None:
        super().__init__(message)
        self.fault = fault


def verify_manifest(
    document: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey], sender: str
) -> str:
    """Check a manifest's signature against ``sender``'s keys; return the ``key_id`` used.

    Raises SignatureRejected saying which of the three cases applies.
    """
    signature = document.get("signature")
    if signature is None:
        raise SignatureRejected(
            "missing", f"no signature: the manifest is unsigned, and {sender} signs its files"
        )
    if not isinstance(signature, dict):
        raise SignatureRejected(
            "invalid", "invalid signature: the manifest's signature is not an object"
        )
    key_id = signature.get("key_id")
    if not isinstance(key_id, str) or key_id not in keys:
        raise SignatureRejected(
            "unknown key",
            f"unknown signing key: key_id {key_id!r} is not one of {sender}'s configured keys",
        )
    if signature.get("alg") != ALGORITHM:
        raise SignatureRejected(
            "invalid", f"invalid signature: alg {signature.get('alg')!r} is not {ALGORITHM}"
        )
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        keys[key_id].verify(value, signed_body(document))
    except (binascii.Error, InvalidSignature, ValueError, TypeError) as exc:
        raise SignatureRejected(
            "invalid",
            f"invalid signature: the signature under key {key_id} does not verify over "
            "the manifest",
        ) from exc
    return key_id
