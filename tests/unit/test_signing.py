"""ICD §6 signatures, checked against independent implementations: PyNaCl (libsodium) for
Ed25519 and the ``rfc8785`` package for the canonical form."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vehiclehub.cli import main
from vehiclehub.config import ConfigError, Settings, load_settings
from vehiclehub.crypto import archive_key
from vehiclehub.signing import (
    SPKI_PREFIX,
    SignatureRejected,
    canonical_json,
    hub_signing_key,
    hub_verification_keys,
    key_id_of,
    raw_public_key,
    read_private_key,
    sign_manifest,
    verify_manifest,
)

MANIFEST: dict[str, Any] = {
    "file": "hub_police_findings_20251103_001.csv",
    "agency": "police",
    "feed": "findings",
    "business_date": "2025-11-03",
    "seq": 1,
    "rows": 3,
    "sha256": "ab" * 32,
    "encoding": "utf-8",
    "schema_version": "1",
    "generated_at": "2025-11-04T02:30:00+08:00",
    "missing_evidence": ["customs"],
    "log_head": {"seq": 7, "hash": "cd" * 32},
    "note": '晋A12345 "quoted" \\ \n\t\u0001\u007f\u2028',
}


@pytest.mark.parametrize(
    "value",
    [
        MANIFEST,
        {"b": [1, None, True, False, ""], "a": {"é": 1, "z": -0, "\U0001f600": 2, "\ue000": 3}},
        [0.1, 1e21, 1e-7, 123456789012345680000.0, 5e-324, -1.5, 1.0, 100.0, 0.000001],
        [4.35, 1e20, 2**53 - 1, 33333333.333333333, -1e-6, 1.7976931348623157e308],
    ],
)
def test_canonical_json_is_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_integers_beyond_2_53_are_read_as_the_doubles_jcs_works_on() -> None:
    assert canonical_json(2**60 + 1) == rfc8785.dumps(float(2**60 + 1))


def test_for_manifests_the_canonical_form_is_sorted_compact_json() -> None:
    """ICD §6: for manifests RFC 8785 is exactly Python's sorted, compact, unescaped json."""
    expected = json.dumps(MANIFEST, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(MANIFEST) == expected.encode("utf-8")


def test_canonical_json_refuses_what_jcs_cannot_represent() -> None:
    for bad in (float("nan"), float("inf"), "\ud800"):
        with pytest.raises(ValueError):
            canonical_json({"x": bad})
    with pytest.raises(TypeError):
        canonical_json({1: "not a string name"})


def _raw_key(key: Ed25519PrivateKey) -> bytes:
    return raw_public_key(key)


def test_a_signed_manifest_verifies_with_pynacl_over_independent_canonical_json() -> None:
    key = Ed25519PrivateKey.generate()
    signed = sign_manifest(MANIFEST, key)
    signature = signed["signature"]
    assert signature["alg"] == "Ed25519"
    assert signature["key_id"] == hashlib.sha256(_raw_key(key)).hexdigest()[:16]
    body = rfc8785.dumps({k: v for k, v in signed.items() if k != "signature"})
    verifier = nacl.signing.VerifyKey(_raw_key(key))
    verifier.verify(body, base64.b64decode(signature["value"]))
    changed = body.replace(b'"rows":3', b'"rows":4')
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verifier.verify(changed, base64.b64decode(signature["value"]))


def test_the_published_key_wrapped_as_spki_is_the_same_key() -> None:
    """What a Java or OpenSSL verifier loads: the DER prefix then the 32 raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate()
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert der == SPKI_PREFIX + _raw_key(key)


def _agency_signed(document: dict[str, Any], seed: bytes) -> dict[str, Any]:
    """A manifest signed the way an agency's own tooling would: libsodium over rfc8785."""
    signer = nacl.signing.SigningKey(seed)
    value = signer.sign(rfc8785.dumps(document)).signature
    raw = bytes(signer.verify_key)
    return document | {
        "signature": {
            "alg": "Ed25519",
            "key_id": hashlib.sha256(raw).hexdigest()[:16],
            "value": base64.b64encode(value).decode(),
        }
    }


def test_verifying_an_agency_manifest_names_each_of_the_three_faults() -> None:
    seed = os.urandom(32)
    raw = bytes(nacl.signing.SigningKey(seed).verify_key)
    keys = {key_id_of(raw): Ed25519PrivateKey.from_private_bytes(seed).public_key()}
    document = {k: v for k, v in MANIFEST.items() if k not in ("log_head", "missing_evidence")}
    good = _agency_signed(document, seed)
    assert verify_manifest(good, keys, "customs") == key_id_of(raw)
    foreign = _agency_signed(document, os.urandom(32))
    tampered = good | {"rows": 4}
    cases = {"missing": document, "unknown key": foreign, "invalid": tampered}
    for fault, manifest in cases.items():
        with pytest.raises(SignatureRejected) as caught:
            verify_manifest(manifest, keys, "customs")
        assert caught.value.fault == fault
    garbled = good | {"signature": good["signature"] | {"value": "not base64!"}}
    with pytest.raises(SignatureRejected, match="invalid signature"):
        verify_manifest(garbled, keys, "customs")


def test_the_signing_key_comes_from_env_then_file_then_is_derived(
    settings: Settings, tmp_path: Path
) -> None:
    derived = hub_signing_key(settings)
    assert derived.derived and derived.origin == "derived from the pseudonym key"
    assert derived.public_raw != _raw_key(
        Ed25519PrivateKey.from_private_bytes(archive_key(settings))
    )  # its own purpose: not the archive key's bytes
    assert hub_signing_key(settings).key_id == derived.key_id  # stable across runs

    seed = os.urandom(32)
    seed_file = tmp_path / "seed.b64"
    seed_file.write_text(base64.b64encode(seed).decode() + "\n")
    from_file = hub_signing_key(settings.model_copy(update={"signing_key_file": seed_file}))
    assert from_file.origin == "signing_key_file"
    assert from_file.public_raw == _raw_key(Ed25519PrivateKey.from_private_bytes(seed))

    other = base64.b64encode(os.urandom(32)).decode()
    both = settings.model_copy(update={"signing_key_file": seed_file, "signing_key": other})
    assert hub_signing_key(both).origin == "VHUB_SIGNING_KEY"

    seed_file.write_text("too short")
    with pytest.raises(ConfigError, match=r"signing_key_file .* is unusable") as caught:
        hub_signing_key(settings.model_copy(update={"signing_key_file": seed_file}))
    assert "too short" not in str(caught.value)  # key material is never shown


def test_vhub_keys_generate_and_public(
    tmp_path: Path, hub_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hub.pem"
    assert main(["keys", "generate", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = read_private_key(out.read_bytes())
    generated = capsys.readouterr().out.splitlines()
    assert generated[-1] == base64.b64encode(_raw_key(key)).decode()
    assert main(["keys", "generate", "--out", str(out)]) == 1  # never overwritten

    hub_config.write_text(
        hub_config.read_text().replace(
            "[agencies.commerce]", f'signing_key_file = "{out}"\n[agencies.commerce]'
        )
    )
    assert main(["keys", "public", "--config", str(hub_config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == generated[-1]
    assert lines[0].startswith(f"key_id {key_id_of(_raw_key(key))}")


def test_rotation_keeps_the_previous_key_for_verification(settings: Settings) -> None:
    old = hub_signing_key(settings)
    signed_before = sign_manifest(MANIFEST, old.private)
    rotated = settings.model_copy(
        update={
            "signing_key": base64.b64encode(os.urandom(32)).decode(),
            "previous_signing_keys": [old.public_text],
        }
    )
    keys = hub_verification_keys(rotated)
    assert hub_signing_key(rotated).key_id in keys
    assert verify_manifest(signed_before, keys, "the hub") == old.key_id
    forgotten = rotated.model_copy(update={"previous_signing_keys": []})
    with pytest.raises(SignatureRejected, match="unknown signing key"):
        verify_manifest(signed_before, hub_verification_keys(forgotten), "the hub")


def test_published_keys_in_the_configuration_must_be_32_bytes_of_base64(hub_config: Path) -> None:
    text = hub_config.read_text()
    for bad, said in (("AAAA", "holds 3 bytes"), ("not base64!", "not standard base64")):
        hub_config.write_text(
            text.replace("[agencies.tax]\n", f'[agencies.tax]\npublic_keys = ["{bad}"]\n')
        )
        with pytest.raises(ConfigError, match=f"agencies.tax.public_keys.*{said}"):
            load_settings(hub_config)
    good = base64.b64encode(bytes(32)).decode()
    hub_config.write_text(f'previous_signing_keys = ["{good}"]\n' + text)
    assert load_settings(hub_config).previous_signing_keys == [good]
