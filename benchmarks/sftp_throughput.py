"""SFTP download throughput and memory: SftpExchange.copy_outbox against a real sshd.

Generates a CSV of ``--rows`` rows (~150 bytes each) straight into the outbox of a
temporary OpenSSH sshd on 127.0.0.1 (``vehiclehub_samples.sshd``), times
``copy_outbox`` into a file and prints MB/s and the process's peak RSS. Needs root (it
creates the agency accounts and runs sshd).

    .venv/bin/python benchmarks/sftp_throughput.py [--rows 1000000] [--window BYTES]

Peak RSS is per process, so compare read-ahead settings with separate runs.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import tempfile
import time
from pathlib import Path

from vehiclehub.exchange import sftp
from vehiclehub_samples.sshd import running_sshd

AGENCY = "customs"
NAME = "customs_declarations_20251103_001.csv"
HEADER = (
    "declaration_no,item_no,vin,hs_code,destination_country,port_code,declared_at,"
    "value_cny,exporter_uscc,brand,model,record_version,record_status\n"
)


def write_csv(path: Path, rows: int) -> int:
    """Write the CSV in small pieces (so generation does not inflate the peak RSS)."""
    written = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        batch: list[str] = []
        for i in range(rows):
            batch.append(
                f"5316202510{i:08d},{i % 20 + 1:03d},LSVAU2180N2{i % 1000000:06d},87032390,"
                f"KAZ,5316,2025-11-03T10:{i % 60:02d}:00+08:00,{100000 + i % 900000}.00,"
                f"91310000{i % 10000000000:010d},Toyota,Land Cruiser 300 GR,1,active\n"
            )
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
        written = out.tell()
    return written


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--window",
        type=int,
        default=sftp.PREFETCH_WINDOW,
        help="read-ahead bytes per prefetch window; 0 = no read-ahead",
    )
    parser.add_argument("--chunk-size", type=int, default=1 << 20)
    args = parser.parse_args()

    with running_sshd() as server, tempfile.TemporaryDirectory() as scratch:
        source = server.root(AGENCY) / "outbox" / NAME
        size = write_csv(source, args.rows)
        print(f"file: {args.rows:,} rows, {size / 1e6:.1f} MB ({size / args.rows:.0f} B/row)")
        exchange = sftp.SftpExchange(AGENCY, server.endpoint(AGENCY))
        exchange.prefetch_window = args.window
        target = Path(scratch) / NAME
        rss_before = peak_rss_mib()
        try:
            with target.open("wb") as sink:
                started = time.perf_counter()
                copied = exchange.copy_outbox(NAME, sink, chunk_size=args.chunk_size)
                sink.flush()
                elapsed = time.perf_counter() - started
        finally:
            exchange.close()
        rss_after = peak_rss_mib()
        assert copied == size and sha256_of(target) == sha256_of(source), "copy differs"
        window = f"{args.window / 2**20:g} MiB" if args.window else "off"
        print(f"read-ahead window: {window}, chunk: {args.chunk_size / 2**10:g} KiB")
        print(
            f"copy_outbox: {copied / 1e6:.1f} MB in {elapsed:.2f} s "
            f"= {copied / 1e6 / elapsed:.1f} MB/s"
        )
        print(
            f"peak RSS: {rss_after:.1f} MiB "
            f"(before the copy: {rss_before:.1f} MiB, growth {rss_after - rss_before:.1f} MiB)"
        )


if __name__ == "__main__":
    main()
