"""Signed agency files and signed drops through two nightly cycles (ICD §6).

Customs signs its files (with libsodium over the ``rfc8785`` package's canonical JSON, as
an agency's own tooling would) and the hub has its key; police has no key configured.
The hub's drops are checked the way an agency would: PyNaCl over ``rfc8785``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest
import rfc8785
from tests.conftest import write_config
from tests.factories import Vehicle, read_drop, send

from vehiclehub.cli import main
from vehiclehub.config import Settings, load_settings
from vehiclehub.pipeline import run_cycle
from vehiclehub.publish.drops import verify_drop
from vehiclehub.signing import hub_signing_key, hub_verification_keys

pytestmark = pytest.mark.slow
D1, D2 = date(2025, 11, 3), date(2025, 11, 4)
CUSTOMS_SEED = bytes(range(32))


def _sign_as_agency(manifest: Path, seed: bytes, tamper: bool = False) -> None:
    document = json.loads(manifest.read_bytes())
    signer = nacl.signing.SigningKey(seed)
    raw = bytes(signer.verify_key)
    document["signature"] = {
        "alg": "Ed25519",
        "key_id": hashlib.sha256(raw).hexdigest()[:16],
        "value": base64.b64encode(signer.sign(rfc8785.dumps(document)).signature).decode(),
    }
    if tamper:
        document["rows"] += 1
    manifest.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")


def _manifest_of(data: Path) -> Path:
    return data.with_name(data.name.removesuffix(".csv") + ".manifest.json")


@dataclass
class Nights:
    root: Path
    settings: Settings
    summaries: list[dict[str, Any]]


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    root = tmp_path_factory.mktemp("signed")
    customs_public = base64.b64encode(bytes(nacl.signing.SigningKey(CUSTOMS_SEED).verify_key))
    config = write_config(root, f"sqlite:///{root / 'hub.db'}")
    config.write_text(
        config.read_text().replace(
            "[agencies.customs]\n",
            f'[agencies.customs]\npublic_keys = ["{customs_public.decode()}"]\n',
        )
    )
    settings = load_settings(config)
    ok, other = Vehicle(), Vehicle()
    send(root, "police", "events", [ok.export_deregistration("E1")])  # unsigned, no key
    items = [ok.item(), other.item()]
    signed = send(root, "customs", "declarations", items[:1], seq=1)
    _sign_as_agency(_manifest_of(signed), CUSTOMS_SEED)
    send(root, "customs", "declarations", items[1:], seq=2)  # no signature
    foreign = send(root, "customs", "declarations", items[1:], seq=3)
    _sign_as_agency(_manifest_of(foreign), bytes(32))  # a key customs never published
    tampered = send(root, "customs", "declarations", items[1:], seq=4)
    _sign_as_agency(_manifest_of(tampered), CUSTOMS_SEED, tamper=True)
    summaries = [run_cycle(settings, D1).to_dict()]
    again = send(root, "customs", "declarations", items[1:], day=D2, seq=1)
    _sign_as_agency(_manifest_of(again), CUSTOMS_SEED)
    summaries.append(run_cycle(settings, D2).to_dict())
    return Nights(root, settings, summaries)


def _files(nights: Nights, night: int, agency: str) -> dict[str, dict[str, Any]]:
    intake = next(i for i in nights.summaries[night]["intake"] if i["agency"] == agency)
    return {f["name"]: f for f in intake["files"]}


def test_each_bad_signature_rejects_the_file_whole_saying_which(nights: Nights) -> None:
    files = _files(nights, 0, "customs")
    assert {n: (f["status"], f["signature"]) for n, f in files.items()} == {
        "customs_declarations_20251103_001.csv": ("loaded", "verified"),
        "customs_declarations_20251103_002.csv": ("rejected", "rejected"),
        "customs_declarations_20251103_003.csv": ("rejected", "rejected"),
        "customs_declarations_20251103_004.csv": ("rejected", "rejected"),
    }
    drop = read_drop(nights.root, "customs", "rejections").fillna("")
    reasons = dict(zip(drop["file"], drop["error"], strict=True))
    assert reasons["customs_declarations_20251103_002.csv"].startswith("no signature")
    assert reasons["customs_declarations_20251103_003.csv"].startswith("unknown signing key")
    assert reasons["customs_declarations_20251103_004.csv"].startswith("invalid signature")
    assert set(drop["line"]) == {""}  # one rejection row per file, no line
    assert _files(nights, 1, "customs")["customs_declarations_20251104_001.csv"]["status"] == (
        "loaded"
    )


def test_files_of_an_agency_without_a_key_load_and_are_reported_unsigned(nights: Nights) -> None:
    (police,) = _files(nights, 0, "police").values()
    assert (police["status"], police["signature"]) == ("loaded", "unsigned")
    report = Path(nights.summaries[0]["publish"]["report"]).read_text()
    assert "1 file(s) signed and verified, 0 unsigned" in report  # customs
    assert "3 rejected for their signature" in report
    assert "0 file(s) signed and verified, 1 unsigned (no key configured for police" in report


def _drop_pairs(nights: Nights, day: date) -> list[tuple[Path, Path]]:
    inboxes = nights.root / "exchange"
    data = sorted(inboxes.glob(f"*/inbox/hub_*_{day:%Y%m%d}_001.csv"))
    return [(d, _manifest_of(d)) for d in data]


def test_every_drop_verifies_with_pynacl_over_independent_canonical_json(nights: Nights) -> None:
    key = hub_signing_key(nights.settings)
    verifier = nacl.signing.VerifyKey(base64.b64decode(key.public_text))
    missing = {D1: ["commerce", "tax"], D2: ["commerce", "police", "tax"]}  # nothing came
    pairs = [(day, *pair) for day in (D1, D2) for pair in _drop_pairs(nights, day)]
    assert len(pairs) == 22
    for day, data, manifest_path in pairs:
        manifest = json.loads(manifest_path.read_bytes())
        signature = manifest.pop("signature")
        assert (signature["alg"], signature["key_id"]) == ("Ed25519", key.key_id)
        assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
        assert manifest["missing_evidence"] == missing[day]
        verifier.verify(rfc8785.dumps(manifest), base64.b64decode(signature["value"]))
        body = bytearray(rfc8785.dumps(manifest))
        body[-3] ^= 1  # one changed byte
        with pytest.raises(nacl.exceptions.BadSignatureError):
            verifier.verify(bytes(body), base64.b64decode(signature["value"]))


def test_a_changed_byte_in_a_drop_or_its_manifest_fails_verification(
    nights: Nights, tmp_path: Path
) -> None:
    keys = hub_verification_keys(nights.settings)
    data, manifest = _drop_pairs(nights, D1)[0]
    assert verify_drop(data, manifest, keys) is None
    changed_data = tmp_path / data.name
    changed_data.write_bytes(data.read_bytes()[:-1] + b"X")
    assert "sha256" in str(verify_drop(changed_data, manifest, keys))
    changed_manifest = tmp_path / manifest.name
    changed_manifest.write_bytes(manifest.read_bytes().replace(b'"seq": 1', b'"seq": 2'))
    assert "invalid signature" in str(verify_drop(data, changed_manifest, keys))


def test_the_log_chain_verifies_and_holds_an_earlier_drops_log_head(
    nights: Nights, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(nights.settings.source)
    inbox = nights.root / "exchange" / "commerce" / "inbox"
    manifest = inbox / "hub_commerce_findings_20251103_001.manifest.json"  # the first drop
    head = json.loads(manifest.read_bytes())["log_head"]
    assert head["seq"] == 5  # the five files of the first night were logged before it
    code = main(["audit", "verify", "--config", config, "--head", f"{head['seq']}:{head['hash']}"])
    out = capsys.readouterr().out
    assert code == 0 and "intact" in out and "is on the chain" in out
    final = nights.summaries[-1]["publish"]["log_head"]
    assert (
        f"{final['seq']}:{final['hash']}"
        in Path(nights.summaries[-1]["publish"]["report"]).read_text()
    )
    assert main(["audit", "export", "--config", config, "--agency", "customs"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    taken = [(e["file"], e["outcome"]) for e in entries if e["direction"] == "in"]
    assert taken == [
        ("customs_declarations_20251103_001.csv", "loaded"),
        ("customs_declarations_20251103_002.csv", "rejected"),
        ("customs_declarations_20251103_003.csv", "rejected"),
        ("customs_declarations_20251103_004.csv", "rejected"),
        ("customs_declarations_20251104_001.csv", "loaded"),
    ]
    out_entries = [(e["file"], e["outcome"]) for e in entries if e["direction"] == "out"]
    name = "hub_customs_findings_20251103_001.csv"
    assert [o for f, o in out_entries if f == name] == ["written", "delivered"]


def test_rotation_keeps_earlier_drops_verifiable(nights: Nights) -> None:
    old = hub_signing_key(nights.settings)
    rotated = nights.settings.model_copy(
        update={
            "signing_key": base64.b64encode(bytes(range(1, 33))).decode(),
            "previous_signing_keys": [old.public_text],
        }
    )
    assert hub_signing_key(rotated).key_id != old.key_id
    for data, manifest in _drop_pairs(nights, D1):
        assert verify_drop(data, manifest, hub_verification_keys(rotated)) is None
    forgotten = rotated.model_copy(update={"previous_signing_keys": []})
    data, manifest = _drop_pairs(nights, D1)[0]
    assert "unknown signing key" in str(
        verify_drop(data, manifest, hub_verification_keys(forgotten))
    )
