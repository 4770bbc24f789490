"""``vhub demo``: a generated world of used-car exports through the hub, day by day.

Everything lives in one directory, made afresh on every run::

    hub.toml, hub.db            the hub's configuration and store (SQLite)
    keys/                       the hub's signing key and the agencies' (ICD §6)
    exchange/<agency>/outbox/   the agencies' files, as they upload them
    exchange/<agency>/inbox/    the hub's drops to them
    work/                       the hub's work directory: archive, drops, reports

Each business date the agencies' files of that date land in the outboxes and the hub
runs its nightly cycle. Every agency signs its manifests with its own demo key, which
the hub's configuration lists, and one file of the first date arrives badly signed. The
world carries planted cases for every rule of the rulebook,
VINs typed over in one feed's copy, and the usual trouble at intake (bad rows, broken
files, a late manifest, ...), so the closing summary lists the findings of every rule
and says how they compare with what was planted, VIN-003's candidates included.

With ``sftp=True`` the agencies sit behind a real OpenSSH server on 127.0.0.1 (the sample
world's, ``vehiclehub_samples.sshd``; needs root) and the hub reaches them over
``sftp://``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vehiclehub.config import AGENCIES, Settings, load_settings
from vehiclehub.errors import ExitCode
from vehiclehub.icd.names import FileName, manifest_name
from vehiclehub.intake.take import FileStatus
from vehiclehub.pipeline import run_cycle
from vehiclehub.publish.drops import open_findings
from vehiclehub.results import RunResult
from vehiclehub.rules import RULES
from vehiclehub.signing import (
    new_private_key_pem,
    public_key_text,
    raw_public_key,
    sign_manifest,
)
from vehiclehub.store import connect
from vehiclehub.summary import format_summary

if TYPE_CHECKING:
    from vehiclehub_samples import World

DEMO_START = date(2025, 11, 3)
DEMO_VEHICLES = 300
DEMO_SEED = 20251103
SSHD = Path("/usr/sbin/sshd")
#: The sample world and what it needs, which the dev and demo extras install.
SAMPLE_PACKAGES = ("vehiclehub_samples", "stdnum")
SAMPLES_MISSING = (
    "vhub demo: the sample world (the vehiclehub_samples package and python-stdnum) is not "
    "installed; the dev and demo extras install it.\n"
    "From a source checkout: make demo, or pip install -e '.[demo]'"
)
#: What a demo run leaves in its directory (and removes on the next run).
DEMO_ENTRIES = (
    "exchange",
    "work",
    "keys",
    "hub.toml",
    "hub.db",
    "hub.db-wal",
    "hub.db-shm",
)
#: The planted badly signed file: a re-send of this feed's last file of the first date,
#: whose manifest was changed after it was signed.
BADLY_SIGNED_FEED = ("customs", "declarations")


def demo_keys(directory: Path) -> tuple[Path, dict[str, Ed25519PrivateKey]]:
    """A fresh hub signing key in ``keys/hub.pem`` (0600), and a key per agency."""
    folder = directory / "keys"
    folder.mkdir(parents=True, exist_ok=True)
    pem, _ = new_private_key_pem()
    hub_key = folder / "hub.pem"
    fd = os.open(hub_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as target:
        target.write(pem)
    return hub_key, {agency: Ed25519PrivateKey.generate() for agency in AGENCIES}


def write_hub_config(
    directory: Path,
    database_url: str,
    agencies: dict[str, dict[str, str]],
    signing_key_file: Path | None = None,
    agency_keys: dict[str, Ed25519PrivateKey] | None = None,
) -> Path:
    """``directory/hub.toml`` with a fresh pseudonym key, the agencies' endpoints and, when
    given, the hub's signing key file and each agency's public key."""
    lines = [
        f'database_url = "{database_url}"',
        f'work_dir = "{directory / "work"}"',
        f'pseudonym_key = "{secrets.token_hex(24)}"',
    ]
    if signing_key_file is not None:
        lines.append(f'signing_key_file = "{signing_key_file}"')
    for agency in AGENCIES:
        lines.append(f"[agencies.{agency}]")
        lines += [f'{key} = "{value}"' for key, value in agencies[agency].items()]
        if agency_keys is not None:
            published = public_key_text(raw_public_key(agency_keys[agency]))
            lines.append(f'public_keys = ["{published}"]')
    path = directory / "hub.toml"
    # It holds the pseudonym key: readable by its user only, from its first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as config:
        config.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)  # a file made by an earlier demo too
    return path


def _start_afresh(directory: Path) -> None:
    """Remove what an earlier demo left there, and nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in DEMO_ENTRIES:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def sign_outboxes(exchange: Path, keys: dict[str, Ed25519PrivateKey]) -> None:
    """Sign, as each agency's exporter would, every manifest in its outbox not signed yet
    (a manifest that is not a JSON object is left as it is: it is rejected anyway)."""
    for agency, key in keys.items():
        for path in sorted((exchange / agency / "outbox").glob("*.manifest.json")):
            try:
                document = json.loads(path.read_bytes())
            except ValueError:
                continue
            if isinstance(document, dict) and "signature" not in document:
                signed = sign_manifest(document, key)
                _write_atomically(path, json.dumps(signed, ensure_ascii=False).encode("utf-8"))


def plant_badly_signed_file(exchange: Path, keys: dict[str, Ed25519PrivateKey], day: date) -> str:
    """Re-send the last file of :data:`BADLY_SIGNED_FEED` for ``day`` under the next
    number, its manifest changed after signing; return its name.

    Its bytes are those of a file already sent, so the hub's rejection of it (invalid
    signature) changes nothing else the demo shows.
    """
    agency, feed = BADLY_SIGNED_FEED
    outbox = exchange / agency / "outbox"
    stamp = FileName.prefix(agency, feed, day)
    sent = sorted(outbox.glob(f"{stamp}*.manifest.json"))
    if not sent:
        raise RuntimeError(f"the demo world sends no {agency}/{feed} file for {day}")
    source = json.loads(sent[-1].read_bytes())
    # The next number after every file of the date there, complete or not.
    seq = max(int(p.name[len(stamp) : len(stamp) + 3]) for p in outbox.glob(f"{stamp}*")) + 1
    name = str(FileName(agency, feed, day, seq))
    _write_atomically(outbox / name, (outbox / str(source["file"])).read_bytes())
    document = {k: v for k, v in source.items() if k != "signature"}
    document |= {"file": name, "seq": seq}
    signed = sign_manifest(document, keys[agency])
    signed["generated_at"] = "2000-01-01T00:00:00+08:00"  # changed after signing
    manifest = outbox / manifest_name(name)
    _write_atomically(manifest, json.dumps(signed, ensure_ascii=False).encode("utf-8"))
    return name


def agencies_send(
    world: World, exchange: Path, keys: dict[str, Ed25519PrivateKey]
) -> Callable[[date], None]:
    """What the agencies do each business date: upload the day's files, signed, and on
    the first date the badly signed one as well."""

    def send(day: date) -> None:
        world.write_day(day, exchange)
        sign_outboxes(exchange, keys)
        if day == world.dates[0]:
            plant_badly_signed_file(exchange, keys, day)

    return send


def _run_days(
    world: World, settings: Settings, deliver: Callable[[date], object]
) -> list[RunResult]:
    """For each business date: the agencies' files arrive, then the nightly cycle runs."""
    summaries = []
    for day in world.dates:
        deliver(day)
        summary = run_cycle(settings, day)
        print(format_summary(summary), end="\n\n", flush=True)
        summaries.append(summary)
    return summaries


def closing_summary(world: World, settings: Settings, summaries: list[RunResult]) -> str:
    """Totals over the run, the last date's findings against the planted ones, and where
    to look next."""
    files = [f for s in summaries for i in s.intake for f in i.files]
    whole = sum(f.status == FileStatus.REJECTED for f in files)
    duplicates = sum(f.status == FileStatus.DUPLICATE for f in files)
    last = summaries[-1]
    waiting = sum(len(i.waiting) for i in last.intake)
    lines = [
        f"demo finished: {len(world.dates)} business date{'s' * (len(world.dates) > 1)}, "
        f"{world.dates[0]} .. {world.dates[-1]}",
        f"  files:    {len(files)} taken ({whole} rejected whole, {duplicates} already "
        f"loaded); {waiting} still waiting for a manifest, "
        f"{len(world.truth.unfinished)} unfinished upload(s) left alone",
        f"  rows:     {sum(f.loaded for f in files)} loaded, "
        f"{sum(f.ignored for f in files)} ignored, "
        f"{sum(f.rejected for f in files)} rejected",
        f"  findings on {world.dates[-1]}: {last.reconcile.rules.findings}",
    ]
    per_rule = last.reconcile.rules.per_rule
    for rule_id in sorted(RULES):
        lines.append(f"    {rule_id:<8} {per_rule.get(rule_id, 0):>4}  {RULES[rule_id].summary}")
    with connect(settings.database_url).connect() as conn:
        found = open_findings(conn, world.dates[-1])
    got = set(zip(found["rule_id"], found["record_key"], strict=True))
    expected = set(
        zip(world.truth.findings["rule_id"], world.truth.findings["record_key"], strict=True)
    )
    lines.append(
        f"  planted:  {len(expected)} findings expected, {len(expected & got)} found, "
        f"{len(got - expected)} not planted"
    )
    proposed = found[found["rule_id"] == "VIN-003"]
    pairs = {
        (key, related)
        for key, listed in zip(proposed["record_key"], proposed["related"].fillna(""), strict=True)
        for related in listed.split(";")
        if related
    }
    right = world.truth.expected_candidates()
    lines.append(
        f"  typos:    {len(world.truth.typos)} VINs typed over; VIN-003 proposed "
        f"{len(pairs)} candidates, {len(pairs & right)} of the {len(right)} expected"
    )
    lines.append(f"  drops:    {last.publish.drops_dir} (and each agency's inbox)")
    lines.append(f"  report:   {last.publish.report}")
    return "\n".join(lines)


#: The demo's users of the review desk: (name, role); their passwords are made afresh.
DEMO_DESK_USERS = (("demo", "operator"), ("demo-lead", "supervisor"))


def desk_invitation(settings: Settings) -> str:
    """Add the demo's desk users with fresh passwords; how to open the desk with them."""
    import secrets

    from vehiclehub.review.auth import add_user

    passwords = {name: secrets.token_urlsafe(9) for name, _ in DEMO_DESK_USERS}
    engine = connect(settings.database_url)
    with engine.begin() as conn:
        for name, role in DEMO_DESK_USERS:
            add_user(conn, name, role, [], passwords[name])
    engine.dispose()
    (operator, _), (supervisor, _) = DEMO_DESK_USERS
    return "\n".join(
        [
            f"  desk:     .venv/bin/vhub serve --config {settings.source}, then open "
            "http://127.0.0.1:8800/",
            f'            log in as operator "{operator}", password {passwords[operator]} '
            f'(supervisor "{supervisor}", password {passwords[supervisor]})',
        ]
    )


def _demo_world(days: int) -> World:
    from vehiclehub_samples import business_dates, generate_world

    return generate_world(
        DEMO_VEHICLES, business_dates(DEMO_START, days), seed=DEMO_SEED, plant_fraction=0.01
    )


def _introduce(world: World, directory: Path, how: str) -> None:
    print(
        f"vehiclehub demo: {DEMO_VEHICLES} vehicles, {len(world.dates)} business dates "
        f"({world.dates[0]} .. {world.dates[-1]}), agencies {how}, in {directory}\n",
        flush=True,
    )


def run_demo(directory: Path, days: int = 3, sftp: bool = False) -> int:
    """Run the demo in ``directory``; return the process exit status."""
    if days < 1:
        print("vhub demo: --days must be at least 1")
        return ExitCode.CANNOT_START
    try:
        world = _demo_world(days)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in SAMPLE_PACKAGES:
            raise
        print(SAMPLES_MISSING, file=sys.stderr)
        return ExitCode.CANNOT_START
    if sftp:
        return _run_sftp_demo(directory, world)
    _start_afresh(directory)
    exchange = directory / "exchange"
    hub_key, agency_keys = demo_keys(directory)
    config = write_hub_config(
        directory,
        f"sqlite:///{directory / 'hub.db'}",
        {agency: {"url": f"file://{exchange / agency}"} for agency in AGENCIES},
        hub_key,
        agency_keys,
    )
    settings = load_settings(config)
    _introduce(world, directory, f"in local folders under {exchange}")
    summaries = _run_days(world, settings, agencies_send(world, exchange, agency_keys))
    print(closing_summary(world, settings, summaries))
    print(desk_invitation(settings))
    return ExitCode.COMPLETED


def _run_sftp_demo(directory: Path, world: World) -> int:
    """The demo with every agency behind a local OpenSSH server, reached over SFTP."""
    from vehiclehub_samples.sshd import running_sshd

    if not SSHD.exists():
        print(
            "vhub demo --sftp runs a local OpenSSH server, and /usr/sbin/sshd is missing.\n"
            "Install it with: sudo apt-get install openssh-server"
        )
        return ExitCode.FAILED
    _start_afresh(directory)
    hub_key, agency_keys = demo_keys(directory)
    try:
        with running_sshd() as server:
            config = write_hub_config(
                directory,
                f"sqlite:///{directory / 'hub.db'}",
                {
                    agency: {
                        "url": server.url(agency),
                        "private_key": str(server.client_key(agency)),
                        "known_hosts": str(server.known_hosts_path),
                    }
                    for agency in AGENCIES
                },
                hub_key,
                agency_keys,
            )
            settings = load_settings(config)
            _introduce(world, directory, f"behind sshd on 127.0.0.1:{server.port}")
            summaries = _run_days(
                world, settings, agencies_send(world, server.agencies_dir, agency_keys)
            )
            # The server's folders go with it: keep a copy of what was exchanged.
            shutil.copytree(server.agencies_dir, directory / "exchange")
    except RuntimeError as exc:  # no root, or sshd would not start
        print(f"vhub demo --sftp: cannot run a local sshd: {exc}")
        return ExitCode.FAILED
    print(closing_summary(world, settings, summaries))
    print(desk_invitation(settings))
    return ExitCode.COMPLETED
