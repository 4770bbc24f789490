"""Decoding and parsing a data file (ICD §1, CSV dialect) into frames of trimmed text.

A file is read from its encrypted archive twice, never held whole: a first pass
checks its sha256 and that every byte decodes as the manifest says; a second pass
parses it in blocks of rows (:func:`read_chunks`), each a frame of trimmed text.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from vehiclehub.crypto import read_archive
from vehiclehub.intake.manifest import FileRejected

#: Bytes of CSV parsed at a time: about 120,000 rows of the widest feeds.
CHUNK_BYTES = 16 << 20


#: The longest line a data file may have (ICD §1), in bytes without its line break.
LINE_MAX_BYTES = 64 << 10

_QUOTE, _LF, _CR = ord('"'), ord("\n"), ord("\r")


@dataclass(frozen=True)
class FileScan:
    """What the first pass over a file found: its digest, size and what makes it unreadable."""

    sha256: str
    size: int
    undecodable: str | None = None  # why the bytes do not decode, in words
    bad_lines: str | None = None  # why its lines are not ICD §1's, in words
    #: Declared GB18030, but its bytes are also valid UTF-8 and not all ASCII: most
    #: likely a UTF-8 file under the wrong declaration, read as mojibake (丰田 -> 涓扮敯).
    reads_as_utf8: bool = False

    @property
    def problem(self) -> str | None:
        """Why the file is rejected whole before it is parsed, if it is."""
        return self.undecodable or self.bad_lines


class LineCheck:
    """Checks, block by block, that a file's lines are what ICD §1 allows.

    One record per line: no line longer than :data:`LINE_MAX_BYTES`, no CR or LF inside a
    quoted field, and no CR that does not end a line (either would move every later
    line number). Checked on the raw bytes before any parser sees them, so that no line
    or field is ever larger than that: in UTF-8 and GB18030 the bytes of ``"``, CR and
    LF are never part of another character.
    """

    def __init__(self) -> None:
        self._offset = 0  # bytes before the current block
        self._line_start = 0  # where the current line starts
        self._line = 1  # the current line's number (the header is line 1)
        self._quoted = False  # inside a quoted field where the block starts
        self._cr_last = False  # the previous block ended with a CR
        self.problem: str | None = None

    def feed(self, block: bytes) -> None:
        if self.problem is not None or not block:
            return
        data = np.frombuffer(block, dtype=np.uint8)
        quotes = np.flatnonzero(data == _QUOTE)
        lfs = np.flatnonzero(data == _LF)
        crs = np.flatnonzero(data == _CR)
        # (position in block, what is wrong there): the first in the file is reported, a
        # quoted line break before a CR it also is.
        problems: list[tuple[int, int, str]] = []

        def quoted_at(positions: np.ndarray) -> np.ndarray:
            # Quoting turns on and off at each quote ("" inside a field turns it twice).
            inside: np.ndarray = (np.searchsorted(quotes, positions) + self._quoted) % 2 == 1
            return inside

        def line_of(position: int) -> int:
            return self._line + int(np.searchsorted(lfs, position))

        if self._cr_last and data[0] != _LF:
            problems.append((0, 1, _LONE_CR))
        inside = crs[quoted_at(crs)]
        if inside.size:
            problems.append((int(inside[0]), 0, _QUOTED_BREAK))
        lone = crs[(crs + 1 < data.size) & (data[np.minimum(crs + 1, data.size - 1)] != _LF)]
        if lone.size:
            problems.append((int(lone[0]), 1, _LONE_CR))
        inside = lfs[quoted_at(lfs)]
        if inside.size:
            problems.append((int(inside[0]), 0, _QUOTED_BREAK))
        starts = np.concatenate(([self._line_start - self._offset], lfs[:-1] + 1))
        ends = lfs - (data[np.maximum(lfs - 1, 0)] == _CR)
        if lfs.size and lfs[0] == 0 and self._cr_last:
            ends[0] -= 1  # the CR ending the line came at the end of the previous block
        long = np.flatnonzero(ends - starts > LINE_MAX_BYTES)
        if long.size:
            problems.append((int(lfs[long[0]]), 2, _LONG_LINE))
        if lfs.size:
            self._line_start = self._offset + int(lfs[-1]) + 1
        # The unfinished line at the block's end (a trailing CR may belong to its end).
        if self._offset + data.size - self._line_start > LINE_MAX_BYTES + 1:
            problems.append((data.size, 2, _LONG_LINE))
        if problems:
            position, _, what = min(problems)
            self.problem = _line_problem(line_of(position), what)
            return
        self._quoted = bool((quotes.size + self._quoted) % 2)
        self._cr_last = bool(data[-1] == _CR)
        self._line += lfs.size
        self._offset += data.size

    def finish(self) -> str | None:
        """Why the file's lines are not ICD §1's, in words; None when they are."""
        if self.problem is None:
            length = self._offset - self._line_start - self._cr_last
            if self._quoted:
                self.problem = _line_problem(self._line, _QUOTED_BREAK)
            elif self._cr_last:
                self.problem = _line_problem(self._line, _LONE_CR)
            elif length > LINE_MAX_BYTES:
                self.problem = _line_problem(self._line, _LONG_LINE)
        return self.problem


_LONE_CR = "has a CR that does not end a line"
_QUOTED_BREAK = 'has an unbalanced quote: a line break inside a quoted field, or a " outside one'
_LONG_LINE = f"is longer than {LINE_MAX_BYTES // 1024} KiB"


def _line_problem(line: int, what: str) -> str:
    return (
        f"line {line} {what} (ICD §1: RFC 4180, one record per line of at most "
        f"{LINE_MAX_BYTES // 1024} KiB); the file is rejected whole"
    )


@dataclass
class Chunk:
    """A block of a file's rows: ``frame`` index ``i`` is line ``i + 2``.

    ``malformed`` holds the lines of the block with a wrong number of fields (line,
    fields, expected); they are not in ``frame``.
    """

    frame: pd.DataFrame
    malformed: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.frame) + len(self.malformed)


def _decode_error(codec: str, offset: int) -> str:
    return (
        f"bytes at offset {offset} do not decode as {codec.replace('-sig', '')} "
        "(the encoding the manifest names)"
    )


class Utf8Lookalike:
    """Whether bytes fed block by block are valid UTF-8 and hold a non-ASCII character.

    The manifest decides a file's encoding (ICD §1); this only tells when a file declared
    GB18030 would as well have read as UTF-8 — text that is very likely mojibake.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._valid = True
        self._non_ascii = False

    def feed(self, block: bytes) -> None:
        if not self._valid:
            return
        self._non_ascii = self._non_ascii or not block.isascii()
        try:
            self._decoder.decode(block)
        except UnicodeDecodeError:
            self._valid = False

    def finish(self) -> bool:
        if self._valid:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._valid = False
        return self._valid and self._non_ascii


def scan(chunks: Iterable[bytes], codec: str) -> FileScan:
    """Hash a file's plaintext and check it decodes and its lines are ICD §1's, streaming.

    A file declared GB18030 is also checked for reading as UTF-8 (``reads_as_utf8``).
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    lines = LineCheck()
    lookalike = Utf8Lookalike() if codec == "gb18030" else None
    size = 0
    undecodable = None
    for block in chunks:
        digest.update(block)
        lines.feed(block)
        if lookalike is not None:
            lookalike.feed(block)
        if undecodable is None:
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                undecodable = _decode_error(codec, size - pending + exc.start)
        size += len(block)
    if undecodable is None:
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            undecodable = _decode_error(codec, size - pending + exc.start)
    return FileScan(
        digest.hexdigest(),
        size,
        undecodable,
        lines.finish(),
        reads_as_utf8=lookalike is not None and lookalike.finish(),
    )


def scan_archive(path: Path, key: bytes, codec: str) -> FileScan:
    return scan(read_archive(path, key), codec)


class _Utf8Stream(io.RawIOBase):
    """A readable stream of a file's text as UTF-8, from its plaintext blocks."""

    def __init__(self, blocks: Iterable[bytes], codec: str) -> None:
        self._blocks = iter(blocks)
        self._decoder = None if codec.startswith("utf-8") else codecs.getincrementaldecoder(codec)()
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def _next_block(self) -> bytes:
        block = next(self._blocks, None)
        if block is None:
            self._done = True
            return b"" if self._decoder is None else self._decoder.decode(b"", True).encode()
        return block if self._decoder is None else self._decoder.decode(block).encode()

    def peek_line(self) -> bytes:
        """The first line of what is left to read, without consuming it."""
        while b"\n" not in self._buffer and not self._done:
            self._buffer += self._next_block()
        return self._buffer.split(b"\n", 1)[0]

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative): whole blocks of rows."""
        parts, have = [self._buffer], len(self._buffer)
        while (size < 0 or have < size) and not self._done:
            block = self._next_block()
            parts.append(block)
            have += len(block)
        data = b"".join(parts)
        if size < 0 or len(data) <= size:
            self._buffer = b""
            return data
        self._buffer = data[size:]
        return data[:size]

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)


def _header(first_line: bytes) -> list[str]:
    text = first_line.decode("utf-8").removeprefix("\ufeff").rstrip("\r")
    if not text.strip():
        raise FileRejected("file is empty: no header row")
    return next(csv.reader([text]))


def _check_header(header: list[str]) -> list[str]:
    names = [h.strip() for h in header]
    if any(n == "" for n in names):
        raise FileRejected("header row has an empty column name")
    dupes = sorted(n for n, count in Counter(names).items() if count > 1)
    if dupes:
        raise FileRejected(f"header names a column twice: {', '.join(dupes)}")
    return names


def _trimmed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trim a text column; an empty field is null."""
    stripped = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)


def read_chunks(
    blocks: Iterable[bytes], codec: str, chunk_bytes: int | None = None
) -> Iterator[Chunk]:
    """Parse a file's plaintext blocks into chunks of trimmed text rows.

    Raises FileRejected before the first chunk when the header is unusable. A file
    with a header and no rows yields one empty chunk, so the caller always sees the
    header (the first chunk's columns).
    """
    stream = _Utf8Stream(blocks, codec)
    raw_header = _header(stream.peek_line())
    names = _check_header(raw_header)
    width = len(names)
    malformed: list[tuple[int, int]] = []

    def invalid_row(row: pa_csv.InvalidRow) -> str:
        malformed.append((int(row.number), int(row.actual_columns)))
        return "skip"

    try:
        # open_csv parses the first block already. Lines were checked by :func:`scan`:
        # none holds a line break, so none is parsed as if it did.
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(
                block_size=chunk_bytes or CHUNK_BYTES, use_threads=False
            ),
            parse_options=pa_csv.ParseOptions(
                invalid_row_handler=invalid_row, newlines_in_values=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(raw_header, pa.string()), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as exc:
        raise FileRejected(f"file is not CSV as ICD §1 describes: {exc}") from exc
    next_line, taken = 2, 0  # the next line to place, malformed lines placed so far
    yielded = False
    for batch in _batches(reader.read_next_batch):
        n = batch.num_rows
        # Rows of this block are the next n lines that are not malformed; the parser
        # has reported every malformed line up to the end of the block.
        bad = np.array([line for line, _ in malformed[taken:]], dtype=np.int64)
        lines = np.arange(next_line, next_line + n + len(bad), dtype=np.int64)
        lines = lines[~np.isin(lines, bad)][:n]
        end = int(lines[-1]) + 1 if n else next_line
        mine = [(line, fields) for line, fields in malformed[taken:] if line < end]
        taken += len(mine)
        next_line = end
        yielded = True
        yield _chunk(batch, names, lines, mine, width)
    rest = malformed[taken:]
    if rest or not yielded:
        empty = pa.RecordBatch.from_arrays([pa.array([], pa.string())] * width, names=raw_header)
        yield _chunk(empty, names, np.array([], dtype=np.int64), rest, width)


def _batches(read_next: Callable[[], pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield read_next()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise FileRejected(f"file is not CSV as ICD §1 describes: {exc}") from exc


def _chunk(
    batch: pa.RecordBatch,
    names: list[str],
    lines: np.ndarray,
    malformed: list[tuple[int, int]],
    width: int,
) -> Chunk:
    table = pa.Table.from_arrays([_trimmed(pa.chunked_array([c])) for c in batch.columns], names)
    frame = table.to_pandas()
    frame.index = pd.Index(lines - 2)
    bad = pd.DataFrame(
        {
            "line": pd.Series([m[0] for m in malformed], dtype="int64"),
            "fields": pd.Series([m[1] for m in malformed], dtype="int64"),
            "expected": width,
        }
    )
    return Chunk(frame, bad)
