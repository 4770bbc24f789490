"""Golden outputs: the nightly cycle over two fixed worlds gives exactly the committed files.

Two worlds go through ``pipeline.run_cycle`` on SQLite, each in a fresh directory:

- ``demo``: the world of ``vhub demo`` (its vehicles, seed and three business dates from
  2025-11-03), each agency signing its manifests with a fixed key and one file of the
  first date badly signed, as the demo does;
- ``noisy``: the noisy sample of ``tests/integration/test_noisy_sample.py`` (seed 2026,
  business date 2025-11-03, VINs typed over), at 2,000 vehicles and 200 claims.

What the hub gives is compared with ``tests/golden/<world>/``:

- ``drops/<date>/*.csv``: every drop data file, byte for byte;
- ``drops/<date>/*.manifest.json``: every drop manifest without what commits to the
  moment or the key of the run (``generated_at``, ``signature``, ``log_head``);
- ``store/findings.csv`` and ``store/verdict_history.csv``: the findings and the
  verdicts the store holds after the last date (without row ids and row hashes);
- ``report/<date>.txt``: the text of each date's HTML run report, without timestamps,
  timings and the run's directory.

A change that alters any of these on purpose regenerates them::

    .venv/bin/pytest tests/golden/test_golden.py --update-golden

and the commit that carries the new files says why the outputs changed.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from tests.conftest import write_config

from vehiclehub.config import AGENCIES, load_settings
from vehiclehub.demo import DEMO_SEED, DEMO_START, DEMO_VEHICLES, agencies_send
from vehiclehub.pipeline import run_cycle
from vehiclehub.signing import public_key_text, raw_public_key
from vehiclehub.store import connect
from vehiclehub.store.schema import findings, verdict_history
from vehiclehub_samples import business_dates, generate_world

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent
DEMO_DAYS = 3
NOISY_SEED = 2026
NOISY_DAY = date(2025, 11, 3)
NOISY_VEHICLES = 2_000
NOISY_CLAIMS = 200
#: What a drop manifest carries that depends on the moment of the run or its keys.
MANIFEST_VOLATILE = ("generated_at", "signature", "log_head")
#: Timestamps, durations and the exchange log's head (it hashes transfer times) in the
#: report's text.
REPORT_VOLATILE = (
    (re.compile(r"(Exchange log head after the run:\n\d+):[0-9a-f]{64}"), r"\1:<hash>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\d+(?:\.\d+)? (?:s|ms)\b"), "<duration>"),
)


def _agency_key(agency: str) -> Ed25519PrivateKey:
    """The agency's signing key, the same on every run."""
    seed = hashlib.sha256(f"vehiclehub golden {agency}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def _demo_world(root: Path) -> list[date]:
    keys = {agency: _agency_key(agency) for agency in AGENCIES}
    published = {agency: public_key_text(raw_public_key(key)) for agency, key in keys.items()}
    settings = load_settings(write_config(root, f"sqlite:///{root / 'hub.db'}", published))
    world = generate_world(
        DEMO_VEHICLES,
        business_dates(DEMO_START, DEMO_DAYS),
        seed=DEMO_SEED,
        plant_fraction=0.01,
    )
    send = agencies_send(world, root / "exchange", keys)
    for day in world.dates:
        send(day)
        run_cycle(settings, day)
    return world.dates


def _noisy_world(root: Path) -> list[date]:
    settings = load_settings(write_config(root, f"sqlite:///{root / 'hub.db'}"))
    world = generate_world(NOISY_VEHICLES, [NOISY_DAY], seed=NOISY_SEED, claims=NOISY_CLAIMS)
    world.write_day(NOISY_DAY, root / "exchange")
    run_cycle(settings, NOISY_DAY)
    return world.dates


WORLDS: dict[str, Callable[[Path], list[date]]] = {"demo": _demo_world, "noisy": _noisy_world}


class _Text(HTMLParser):
    """The text a reader sees, one line per piece, scripts and styles left out."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self._hidden:
            self.lines.append(text)


def report_text(html: str, root: Path) -> str:
    """The report's text with the run's directory, timestamps, durations and the log's
    head replaced."""
    parser = _Text()
    parser.feed(html)
    text = "\n".join(parser.lines).replace(str(root), "<root>")
    for pattern, placeholder in REPORT_VOLATILE:
        text = pattern.sub(placeholder, text)
    return text + "\n"


def _table_csv(rows: list[dict[str, object]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def outputs(root: Path, dates: list[date]) -> dict[str, str]:
    """What the golden files hold, by path under the world's golden directory."""
    got: dict[str, str] = {}
    drops = root / "work" / "drops"
    for path in sorted(drops.glob("*/*.csv")):
        got[f"drops/{path.relative_to(drops)}"] = path.read_text(encoding="utf-8")
    for path in sorted(drops.glob("*/*.manifest.json")):
        manifest = json.loads(path.read_bytes())
        kept = {k: v for k, v in manifest.items() if k not in MANIFEST_VOLATILE}
        got[f"drops/{path.relative_to(drops)}"] = json.dumps(kept, indent=2) + "\n"
    for day in dates:
        html = (root / "work" / "reports" / str(day) / "index.html").read_text(encoding="utf-8")
        got[f"report/{day}.txt"] = report_text(html, root)
    engine = connect(f"sqlite:///{root / 'hub.db'}")
    with engine.connect() as conn:
        for table, order, left_out in (
            (findings, ["identity"], {"id"}),
            (verdict_history, ["report", "record_key", "valid_from"], {"row_hash"}),
        ):
            columns = [c.name for c in table.columns if c.name not in left_out]
            query = select(*(table.c[c] for c in columns)).order_by(*(table.c[c] for c in order))
            rows = [dict(row._mapping) for row in conn.execute(query)]
            got[f"store/{table.name}.csv"] = _table_csv(rows, columns)
    engine.dispose()
    return got


def committed(world: str) -> dict[str, str]:
    base = GOLDEN / world
    return {
        str(path.relative_to(base)): path.read_text(encoding="utf-8")
        for path in sorted(base.rglob("*"))
        if path.is_file()
    }


def rewrite(world: str, got: dict[str, str]) -> None:
    base = GOLDEN / world
    for path in sorted(base.rglob("*"), reverse=True):
        if path.is_file():
            path.unlink()
        elif path.is_dir():
            path.rmdir()
    for name, text in got.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text, encoding="utf-8")


def _first_difference(name: str, expected: str, got: str, lines: int = 12) -> str:
    diff = difflib.unified_diff(
        expected.splitlines(), got.splitlines(), f"golden/{name}", "this run", lineterm="", n=1
    )
    return "\n".join(list(diff)[: lines + 3])


@dataclass
class Comparison:
    missing: list[str]  # golden files this run did not produce
    extra: list[str]  # files this run produced that have no golden file
    changed: dict[str, str]  # name -> the start of a diff

    def __str__(self) -> str:
        parts = [f"not produced: {name}" for name in self.missing]
        parts += [f"not in the golden files: {name}" for name in self.extra]
        parts += list(self.changed.values())[:5]
        if len(self.changed) > 5:
            parts.append(f"... and {len(self.changed) - 5} more changed: {sorted(self.changed)}")
        return "\n".join(parts)


def compare(expected: dict[str, str], got: dict[str, str]) -> Comparison:
    return Comparison(
        missing=sorted(set(expected) - set(got)),
        extra=sorted(set(got) - set(expected)),
        changed={
            name: _first_difference(name, expected[name], got[name])
            for name in sorted(set(expected) & set(got))
            if expected[name] != got[name]
        },
    )


@pytest.mark.parametrize("world", sorted(WORLDS))
def test_the_cycle_gives_the_golden_outputs(
    world: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    dates = WORLDS[world](tmp_path)
    got = outputs(tmp_path, dates)
    if request.config.getoption("--update-golden"):
        rewrite(world, got)
    expected = committed(world)
    assert expected, f"no golden files for {world}: run with --update-golden"
    difference = compare(expected, got)
    if difference.missing or difference.extra or difference.changed:
        pytest.fail(f"{world}: the outputs differ from tests/golden/{world}/\n{difference}")


def test_a_changed_output_is_reported_by_name() -> None:
    """The comparison names what is missing, extra and changed, and shows how."""
    expected = {"a.csv": "x\n1\n", "b.csv": "y\n", "c.txt": "same\n"}
    got = {"a.csv": "x\n2\n", "c.txt": "same\n", "d.json": "{}\n"}
    difference = compare(expected, got)
    assert difference.missing == ["b.csv"] and difference.extra == ["d.json"]
    assert list(difference.changed) == ["a.csv"]
    assert "-1" in difference.changed["a.csv"] and "+2" in difference.changed["a.csv"]
    assert compare(expected, dict(expected)) == Comparison([], [], {})


def test_the_report_text_leaves_out_times_and_the_run_directory(tmp_path: Path) -> None:
    html = (
        f"<html><head><style>p {{}}</style></head><body><h1>run 2025-11-03</h1>"
        f"<p>Generated 2026-12-03T21:34:01+08:00 (GX 0.12 s)</p>"
        f"<a href='x'>{tmp_path}/work/drops</a><script>var t = 1;</script>"
        f"<p>Exchange log head after the run: <code>39:{'ab' * 32}</code>.</p></body></html>"
    )
    assert report_text(html, tmp_path) == (
        "run 2025-11-03\nGenerated <time> (GX <duration>)\n<root>/work/drops\n"
        "Exchange log head after the run:\n39:<hash>\n.\n"
    )
