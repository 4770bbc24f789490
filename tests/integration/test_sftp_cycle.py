"""The whole nightly cycle over SFTP against a real OpenSSH sshd (vehiclehub_samples.sshd).

Same findings and drops as over local folders, and the faults a real exchange has: a
wrong host key, files still uploading, a manifest a day late, the server killed in the
middle of a download or of an upload, an agency that does not answer. Every agency
file is written once with the factories into a local tree and copied as is into the
server's agency roots, so both transports see the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import socket
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from sqlalchemy import func, select
from tests.conftest import write_config
from tests.factories import Vehicle, send

from vehiclehub import crypto
from vehiclehub.cli import main
from vehiclehub.config import AGENCIES, AgencyEndpoint, Settings, load_settings
from vehiclehub.exchange import sftp
from vehiclehub.pipeline import intake_agency, run_cycle
from vehiclehub.store import connect
from vehiclehub.store.schema import agency_intakes, deliveries, feed_table, intake_files
from vehiclehub_samples.identifiers import make_uscc
from vehiclehub_samples.sshd import HOST, SshdServer, unix_user

pytestmark = pytest.mark.sshd

D1, D2, D3 = date(2025, 11, 3), date(2025, 11, 4), date(2025, 11, 5)


# --- a hub whose agencies are accounts on the test sshd ---------------------------------


def endpoint(server: SshdServer, agency: str, **kwargs: Any) -> AgencyEndpoint:
    """The agency's endpoint on ``server``, with fast retries and a patient timeout.

    The faults here are caused on purpose, so retrying long only slows the tests; a
    loaded test machine may, however, take seconds to complete a handshake.
    """
    return server.endpoint(
        agency, **({"retries": 1, "backoff_s": 0.05, "connect_timeout_s": 30.0} | kwargs)
    )


def sftp_config(root: Path, server: SshdServer, **endpoints: AgencyEndpoint) -> Path:
    """``write_config``'s hub under ``root``, each agency its account on ``server``.

    ``root/exchange/<agency>/outbox`` stays as the staging tree the factories write to
    (see ``mirror``); ``endpoints`` replace an agency's endpoint.
    """
    local = write_config(root, f"sqlite:///{root / 'hub.db'}").read_text(encoding="utf-8")
    top = [line for line in local.split("\n[", 1)[0].splitlines() if line.strip()]
    for agency in AGENCIES:
        ep = endpoints.get(agency) or endpoint(server, agency)
        top += [
            f"[agencies.{agency}]",
            f'url = "{ep.url}"',
            f'private_key = "{ep.private_key}"',
            f'known_hosts = "{ep.known_hosts}"',
            f"connect_timeout_s = {ep.connect_timeout_s}",
            f"retries = {ep.retries}",
            f"backoff_s = {ep.backoff_s}",
        ]
    path = root / "hub.toml"
    path.write_text("\n".join(top) + "\n", encoding="utf-8")
    return path


def mirror(root: Path, server: SshdServer, *names: str) -> list[str]:
    """Copy staged outbox files (all, or those named) into the server's agency outboxes."""
    copied = []
    for path in sorted((root / "exchange").glob("*/outbox/*")):
        if names and path.name not in names:
            continue
        server.put_outbox(path.parent.parent.name, path.name, path.read_bytes())
        copied.append(path.name)
    return copied


def story(root: Path) -> dict[str, Vehicle]:
    """Five vehicles: two check out, three raise findings; plus a bad row and a person."""
    ok, ok2, no_export, early, unknown = (Vehicle() for _ in range(5))
    bad = Vehicle()
    send(root, "commerce", "enterprises", [v.filing() for v in (ok, ok2, no_export, early)])
    send(root, "commerce", "licences", [v.licence() for v in (ok, ok2, no_export, early)])
    send(
        root,
        "customs",
        "declarations",
        [ok.item(), ok2.item(), early.item(), bad.item(vin="NOT-A-VIN")],
    )
    send(
        root,
        "police",
        "events",
        [
            ok.event("E0", "register", "2023-03-01"),  # owner is a person (ICD §5)
            ok.export_deregistration("E1"),
            ok2.export_deregistration("E2"),
            no_export.export_deregistration("E3"),  # no cleared item: EXP-001
            early.export_deregistration("E4", event_date="2025-10-11"),  # EXP-002
        ],
    )
    send(
        root,
        "tax",
        "refunds",
        [ok.refund("R1"), ok2.refund("R2"), no_export.refund("R3"), unknown.refund("R4")],
    )
    return {"ok": ok, "no_export": no_export, "early": early, "unknown": unknown}


# --- reading back ---------------------------------------------------------------------------


def inbox(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def local_drops(root: Path) -> dict[str, dict[str, bytes]]:
    return {a: inbox(root / "exchange" / a / "inbox") for a in AGENCIES}


def server_drops(server: SshdServer) -> dict[str, dict[str, bytes]]:
    return {a: inbox(server.root(a) / "inbox") for a in AGENCIES}


def comparable(manifest: bytes) -> dict[str, Any]:
    """A manifest without what differs between two runs on the same files: when it was
    made, and the exchange log's head and the signature over it (log entries carry the
    time of each transfer)."""
    document = json.loads(manifest)
    assert document.pop("generated_at")
    document.pop("log_head", None)
    document.pop("signature", None)
    return dict(document)


def rows(settings: Settings, query: Any) -> list[dict[str, Any]]:
    with connect(settings.database_url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def intake_status(settings: Settings, day: date) -> dict[str, tuple[str, str | None]]:
    found = rows(settings, select(agency_intakes).where(agency_intakes.c.run_date == day))
    return {r["agency"]: (r["status"], r["detail"]) for r in found}


def files_named(settings: Settings, name: str) -> list[dict[str, Any]]:
    return rows(settings, select(intake_files).where(intake_files.c.name == name))


def assert_inboxes_hold_exactly(settings: Settings, server: SshdServer, days: list[date]) -> None:
    """Each agency's inbox holds each drop of ``days`` once, complete, and nothing else."""
    for agency in AGENCIES:
        expected: dict[str, bytes] = {}
        for day in days:
            written = settings.work_dir / "drops" / day.isoformat()
            for path in written.glob(f"hub_{agency}_*"):
                expected[path.name] = path.read_bytes()
        held = inbox(server.root(agency) / "inbox")
        assert sorted(held) == sorted(expected), agency  # no .part, nothing doubled or lost
        for name, data in held.items():
            if name.endswith(".csv"):
                assert data == expected[name], name
                manifest = json.loads(held[name[: -len(".csv")] + ".manifest.json"])
                assert manifest["sha256"] == hashlib.sha256(data).hexdigest(), name
            else:
                assert comparable(data) == comparable(expected[name])
    pending = rows(settings, select(deliveries).where(deliveries.c.delivered_at.is_(None)))
    assert pending == []


# --- 1. the same results as local folders -----------------------------------------------


def test_cycle_over_sftp_gives_the_same_findings_and_drops_as_local_folders(
    tmp_path: Path, sshd_server: SshdServer
) -> None:
    local_root, sftp_root = tmp_path / "local", tmp_path / "sftp"
    local = load_settings(write_config(local_root, f"sqlite:///{local_root / 'hub.db'}"))
    remote = load_settings(sftp_config(sftp_root, sshd_server))
    assert remote.agencies["customs"].url.startswith("sftp://")
    story(local_root)
    assert len(mirror(local_root, sshd_server)) == 10  # five data files and their manifests
    outbox_before = {a: inbox(sshd_server.root(a) / "outbox") for a in AGENCIES}

    over_folders = run_cycle(local, D1).to_dict()
    over_sftp = run_cycle(remote, D1).to_dict()

    assert over_sftp["intake"] == over_folders["intake"]
    assert all(i["status"] == "received" for i in over_sftp["intake"])
    assert over_sftp["reconcile"] == over_folders["reconcile"]
    assert {"EXP-001", "EXP-002"} <= set(over_sftp["reconcile"]["per_rule"])
    assert over_sftp["publish"]["drops"] == over_folders["publish"]["drops"]
    assert over_sftp["publish"]["delivered"] == dict.fromkeys(AGENCIES, "delivered")

    by_folder, by_sftp = local_drops(local_root), server_drops(sshd_server)
    for agency in AGENCIES:
        assert sorted(by_sftp[agency]) == sorted(by_folder[agency])
        assert by_sftp[agency], agency
        for name, data in by_sftp[agency].items():
            if name.endswith(".csv"):
                assert data == by_folder[agency][name], name  # byte for byte
            else:
                assert comparable(data) == comparable(by_folder[agency][name])
    assert b"NOT-A-VIN" in by_sftp["customs"]["hub_customs_rejections_20251103_001.csv"]
    # The hub never changes an outbox, and leaves no .part in an inbox.
    assert {a: inbox(sshd_server.root(a) / "outbox") for a in AGENCIES} == outbox_before
    assert not list(sshd_server.agencies_dir.glob("*/inbox/*.part"))


# --- 2. faults ----------------------------------------------------------------------------


def test_wrong_host_key_refuses_that_agency_only(tmp_path: Path, sshd_server: SshdServer) -> None:
    impostor = sshd_server.foreign_known_hosts()
    police = endpoint(sshd_server, "police", known_hosts=impostor, retries=3, backoff_s=2.0)
    settings = load_settings(sftp_config(tmp_path, sshd_server, police=police))
    story(tmp_path)
    mirror(tmp_path, sshd_server)

    summary = run_cycle(settings, D1).to_dict()

    status = intake_status(settings, D1)
    assert {a: s for a, (s, _) in status.items()} == {
        "commerce": "received",
        "police": "not received",
        "customs": "received",
        "tax": "received",
    }
    detail = status["police"][1] or ""
    assert sshd_server.host_fingerprint("ed25519") in detail and "CHANGED" in detail
    assert files_named(settings, "police_events_20251103_001.csv") == []
    assert len(files_named(settings, "customs_declarations_20251103_001.csv")) == 1
    delivered = summary["publish"]["delivered"]
    assert delivered["police"].startswith("not delivered") and "CHANGED" in delivered["police"]
    assert not list((sshd_server.root("police") / "inbox").iterdir())
    assert delivered["customs"] == "delivered"
    waiting = rows(
        settings,
        select(deliveries.c.agency, func.count().label("n"))
        .where(deliveries.c.delivered_at.is_(None))
        .group_by(deliveries.c.agency),
    )
    assert waiting == [{"agency": "police", "n": 3}]


def test_part_files_are_ignored_and_a_late_manifest_is_taken_that_day(
    tmp_path: Path, sshd_server: SshdServer
) -> None:
    settings = load_settings(sftp_config(tmp_path, sshd_server))
    late = send(tmp_path, "customs", "declarations", [Vehicle().item()], seq=2)
    done = send(tmp_path, "customs", "declarations", [Vehicle().item()], seq=1)
    manifest = late.with_name(late.name.replace(".csv", ".manifest.json"))
    mirror(tmp_path, sshd_server, done.name, done.name.replace(".csv", ".manifest.json"))
    mirror(tmp_path, sshd_server, late.name)  # the data file, its manifest not yet
    uploading = "customs_declarations_20251103_003.csv"
    sshd_server.put_outbox("customs", uploading + ".part", b"decl_no,item_no\n53")
    sshd_server.put_outbox("customs", "customs_declarations_20251103_004.csv", late.read_bytes())
    sshd_server.put_outbox(
        "customs", "customs_declarations_20251103_004.manifest.json.part", b'{"file": '
    )

    first = intake_agency(settings, "customs", D1).to_dict()
    assert [f["name"] for f in first["files"]] == [done.name]
    assert first["waiting"] == [late.name, "customs_declarations_20251103_004.csv"]
    assert intake_status(settings, D1)["customs"][0] == "received"
    taken = rows(settings, select(intake_files.c.name))
    assert taken == [{"name": done.name}]  # nothing of .part files, nothing rejected

    mirror(tmp_path, sshd_server, manifest.name)  # arrives the next day
    second = intake_agency(settings, "customs", D2).to_dict()
    assert [(f["name"], f["status"], f["loaded"]) for f in second["files"]] == [
        (late.name, "loaded", 1)
    ]
    assert second["waiting"] == ["customs_declarations_20251103_004.csv"]
    (row,) = files_named(settings, late.name)
    assert (row["run_date"], row["business_date"], row["seq"]) == (D2, D1, 2)


BIG_ROWS = 60_000  # about 6.5 MB of filings: several read-ahead windows of 1 MiB


def big_filings(root: Path) -> Path:
    rng = random.Random(11)
    filing = Vehicle().filing()
    usccs = {make_uscc(rng) for _ in range(BIG_ROWS)}
    while len(usccs) < BIG_ROWS:
        usccs.add(make_uscc(rng))
    return send(
        root,
        "commerce",
        "enterprises",
        [filing | {"uscc": u, "filing_no": f"F-{i:06d}"} for i, u in enumerate(sorted(usccs))],
        seq=2,
    )


@pytest.mark.slow
# paramiko's read-ahead thread dies with the killed connection and says so in its thread;
# the download itself raises ExchangeUnavailable, which is what this test is about.
@pytest.mark.filterwarnings(
    "ignore:Exception in thread .*_prefetch_thread:pytest.PytestUnhandledThreadExceptionWarning"
)
def test_server_killed_mid_download_loads_nothing_of_that_file_then_all_of_it_once(
    tmp_path: Path, sshd_server: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(sftp_config(tmp_path, sshd_server))
    small = send(tmp_path, "commerce", "enterprises", [Vehicle().filing()], seq=1)
    big = big_filings(tmp_path)
    send(tmp_path, "tax", "refunds", [Vehicle().refund()])
    mirror(tmp_path, sshd_server)
    # Small read-ahead windows, so the kill lands while most of the file is still on
    # the server whatever the machine's speed.
    monkeypatch.setattr(sftp, "PREFETCH_WINDOW", 1 << 20)
    cut_at = 2 << 20
    kills: list[int] = []

    class KillingArchiveWriter(crypto.ArchiveWriter):
        """The real archive writer; kills sshd (then starts it again) once 2 MiB are in."""

        def write(self, data: bytes) -> int:
            written = super().write(data)
            if self.path.name == f"incoming-{big.name}" and self.size >= cut_at and not kills:
                kills.append(self.size)
                sshd_server.kill()
                sshd_server.start()  # the cut session stays dead; the others may go on
            return written

    monkeypatch.setattr("vehiclehub.intake.fetch.ArchiveWriter", KillingArchiveWriter)

    summary = run_cycle(settings, D1).to_dict()

    assert kills and kills[0] < big.stat().st_size
    commerce, _, _, tax = summary["intake"]
    assert commerce["status"] == "not received"
    assert f"copying outbox/{big.name} (cut after" in commerce["detail"]
    assert intake_status(settings, D1)["commerce"][0] == "not received"
    assert tax["status"] == "received" and len(tax["files"]) == 1  # the others go on
    # Nothing half-loaded: the file before the cut is in, nothing of the cut one.
    assert len(files_named(settings, small.name)) == 1
    assert files_named(settings, big.name) == []
    enterprises = feed_table("commerce", "enterprises")
    count = select(func.count().label("n")).select_from(enterprises)
    assert rows(settings, count) == [{"n": 1}]
    archive = settings.archive_dir
    assert not list(archive.rglob("*.part")) and not list(archive.rglob("incoming-*"))

    monkeypatch.undo()
    again = intake_agency(settings, "commerce", D2).to_dict()
    assert [(f["name"], f["status"], f["loaded"]) for f in again["files"]] == [
        (big.name, "loaded", BIG_ROWS)
    ]
    (row,) = files_named(settings, big.name)
    assert (row["run_date"], row["rows_read"], row["rows_loaded"]) == (D2, BIG_ROWS, BIG_ROWS)
    assert rows(settings, count) == [{"n": BIG_ROWS + 1}]
    assert intake_agency(settings, "commerce", D3).to_dict()["files"] == []  # exactly once
    assert len(files_named(settings, big.name)) == 1


def test_server_killed_mid_upload_of_drops_next_run_delivers_each_once(
    tmp_path: Path, sshd_server: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(sftp_config(tmp_path, sshd_server))
    story(tmp_path)
    mirror(tmp_path, sshd_server)
    # Drops here are small: tiny upload chunks put the kill in the middle of one.
    monkeypatch.setattr(sftp, "UPLOAD_CHUNK", 64)
    cut = "hub_police_export_verification_20251103_001.csv"
    put_inbox = sftp.SftpExchange.put_inbox
    killed: list[str] = []

    class KillingSource(io.BytesIO):
        """The drop's bytes; kills sshd once the first chunk has been handed over."""

        def read(self, size: int | None = -1) -> bytes:
            chunk = super().read(size)
            if self.tell() >= 64 and not killed:
                killed.append(cut)
                sshd_server.kill()
            return chunk

    def cutting_put(self: sftp.SftpExchange, name: str, source: BinaryIO) -> None:
        if name == cut and not killed:
            source = KillingSource(source.read())
        put_inbox(self, name, source)

    monkeypatch.setattr(sftp.SftpExchange, "put_inbox", cutting_put)

    first = run_cycle(settings, D1).to_dict()["publish"]["delivered"]

    assert killed == [cut]
    assert first["commerce"] == "delivered"
    for agency in ("police", "customs", "tax"):
        assert first[agency].startswith("not delivered"), first[agency]
    police_inbox = sshd_server.root("police") / "inbox"
    assert cut.replace(".csv", ".manifest.json") not in inbox(police_inbox)
    left = rows(settings, select(deliveries.c.name).where(deliveries.c.delivered_at.is_(None)))
    assert {r["name"] for r in left} >= {cut, "hub_tax_findings_20251103_001.csv"}

    monkeypatch.undo()
    sshd_server.start()
    send(tmp_path, "customs", "declarations", [Vehicle().item()], day=D2)
    mirror(tmp_path, sshd_server, "customs_declarations_20251104_001.csv")
    mirror(tmp_path, sshd_server, "customs_declarations_20251104_001.manifest.json")
    second = run_cycle(settings, D2).to_dict()["publish"]["delivered"]

    assert second["commerce"] == "delivered"
    for agency in ("police", "customs", "tax"):
        assert second[agency].startswith("delivered, including"), second[agency]
        assert "of 2025-11-03 left pending before" in second[agency]
    assert_inboxes_hold_exactly(settings, sshd_server, [D1, D2])
    # D2's verdicts are compared with D1's drop (the latest for an earlier business
    # date, ICD §4), delivered late but delivered: nothing changed, so D2's is empty.
    verified = inbox(police_inbox)
    assert len(verified[cut].splitlines()) == 1 + 4
    assert len(verified[cut.replace("20251103", "20251104")].splitlines()) == 1
    # Oldest first: every drop of D1 reached the agency before any of D2.
    for agency in AGENCIES:
        stamps = rows(
            settings,
            select(deliveries.c.run_date, deliveries.c.delivered_at)
            .where(deliveries.c.agency == agency)
            .order_by(deliveries.c.delivered_at),
        )
        assert [r["run_date"] for r in stamps] == sorted(r["run_date"] for r in stamps)


def refused_url(server: SshdServer, agency: str) -> str:
    """The agency's url on a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    return f"sftp://{unix_user(agency)}@{HOST}:{port}{server.root(agency)}"


def test_unreachable_agency_is_not_received_the_others_go_on_and_it_catches_up(
    tmp_path: Path, sshd_server: SshdServer, capsys: pytest.CaptureFixture[str]
) -> None:
    down = endpoint(sshd_server, "tax", url=refused_url(sshd_server, "tax"))
    config = sftp_config(tmp_path, sshd_server, tax=down)
    settings = load_settings(config)
    story(tmp_path)
    mirror(tmp_path, sshd_server)

    assert main(["run", "--config", str(config), "--date", D1.isoformat()]) == 0

    out = capsys.readouterr().out
    (tax_line,) = [line for line in out.splitlines() if line.strip().startswith("tax ")]
    assert "NOT RECEIVED" in tax_line and "Unable to connect" in tax_line
    assert "drops to tax: not delivered" in out
    status = intake_status(settings, D1)
    assert status["tax"][0] == "not received" and "2 attempt(s)" in (status["tax"][1] or "")
    assert {status[a][0] for a in ("commerce", "police", "customs")} == {"received"}
    assert len(files_named(settings, "police_events_20251103_001.csv")) == 1
    report = (settings.reports_dir / D1.isoformat() / "index.html").read_text()
    assert 'class="status-not-received">not received<' in report
    assert "Unable to connect" in report

    sftp_config(tmp_path, sshd_server)  # the agency's server answers again
    assert main(["run", "--config", str(config), "--date", D2.isoformat()]) == 0

    out = capsys.readouterr().out
    assert "NOT RECEIVED" not in out
    assert "drops to tax: delivered, including 3 drop(s) of 2025-11-03" in out
    (refunds,) = files_named(settings, "tax_refunds_20251103_001.csv")
    assert (refunds["status"], refunds["run_date"]) == ("loaded", D2)
    assert intake_status(settings, D2)["tax"] == ("received", None)
    assert_inboxes_hold_exactly(settings, sshd_server, [D1, D2])


# --- 4. data errors are not retried; unreadable files are not data errors ----------------


def test_a_rejected_file_is_fetched_once_and_never_again(
    tmp_path: Path, sshd_server: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(sftp_config(tmp_path, sshd_server))
    bad = send(
        tmp_path, "customs", "declarations", [Vehicle().item()], manifest={"sha256": "0" * 64}
    )
    mirror(tmp_path, sshd_server)
    copies: list[str] = []
    copy_outbox = sftp.SftpExchange.copy_outbox

    def counting_copy(self: sftp.SftpExchange, name: str, sink: BinaryIO, *a: Any) -> int:
        copies.append(name)
        return copy_outbox(self, name, sink, *a)

    monkeypatch.setattr(sftp.SftpExchange, "copy_outbox", counting_copy)

    (outcome,) = intake_agency(settings, "customs", D1).to_dict()["files"]
    assert outcome["status"] == "rejected" and "checksum mismatch" in outcome["error"]
    assert intake_agency(settings, "customs", D2).to_dict()["files"] == []
    assert copies == [bad.name]
    assert len(files_named(settings, bad.name)) == 1


def test_a_file_the_account_cannot_read_stops_the_agency_until_fixed(
    tmp_path: Path, sshd_server: SshdServer
) -> None:
    settings = load_settings(sftp_config(tmp_path, sshd_server))
    data = send(tmp_path, "customs", "declarations", [Vehicle().item()])
    mirror(tmp_path, sshd_server)
    remote = sshd_server.root("customs") / "outbox" / data.name
    remote.chmod(0o000)

    result = intake_agency(settings, "customs", D1).to_dict()
    assert result["status"] == "not received"
    assert f"cannot read outbox/{data.name}" in result["detail"]
    assert "Permission denied" in result["detail"]
    assert files_named(settings, data.name) == []
    assert not list(settings.archive_dir.rglob("*.part"))

    remote.chmod(0o644)
    (outcome,) = intake_agency(settings, "customs", D2).to_dict()["files"]
    assert (outcome["name"], outcome["status"], outcome["loaded"]) == (data.name, "loaded", 1)
