"""Decoding and parsing a data file (ICD §1, CSV dialect) into a frame of trimmed text."""

from __future__ import annotations

import csv
import io

import pandas as pd

from vehiclehub.intake.manifest import FileRejected


def _trim(frame: pd.DataFrame) -> pd.DataFrame:
    """Trim every field; an empty field is null."""
    for name in frame.columns:
        stripped = frame[name].astype("str").str.strip()
        frame[name] = stripped.where(stripped != "", None)
    return frame


def read_csv(data: bytes, codec: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse a data file; return (rows as text, malformed lines).

    Rows keep their position: frame index ``i`` is line ``i + 2``. Malformed lines
    (a wrong number of fields) come back separately with their line number and are
    left null in the frame. Undecodable bytes reject the file.
    """
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            encoding=codec,
            encoding_errors="strict",
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            quoting=csv.QUOTE_MINIMAL,
        )
        header = list(frame.columns)
        # Short rows come back padded with NA (empty fields are "" with na_filter off).
        short = frame[frame[header[-1]].isna()].index if header else frame.index[:0]
        malformed = pd.DataFrame(
            {"line": short + 2, "fields": frame.loc[short].notna().sum(axis=1).to_numpy()}
        )
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"bytes at offset {exc.start} do not decode as {codec.replace('-sig', '')} "
            "(the encoding the manifest names)"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise FileRejected("file is empty: no header row") from exc
    except pd.errors.ParserError:
        frame, malformed = _read_ragged(data, codec)
        header = list(frame.columns)
    if any(h.strip() == "" or h.startswith("Unnamed: ") for h in header):
        raise FileRejected("header row has an empty column name")
    frame.columns = pd.Index([h.strip() for h in header])
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise FileRejected(f"header names a column twice: {', '.join(dupes)}")
    if not malformed.empty:
        frame.loc[malformed["line"] - 2, :] = None
    malformed["expected"] = len(header)
    return _trim(frame), malformed


def _read_ragged(data: bytes, codec: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The slow path for files with over-long lines: parse record by record."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"bytes at offset {exc.start} do not decode as {codec.replace('-sig', '')}"
        ) from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    width = len(header)
    rows, bad_lines, bad_widths = [], [], []
    for line, record in enumerate(reader, start=2):
        if len(record) != width:
            bad_lines.append(line)
            bad_widths.append(len(record))
            record = [""] * width
        rows.append(record)
    frame = pd.DataFrame(rows, columns=header, dtype="str")
    return frame, pd.DataFrame({"line": bad_lines, "fields": bad_widths})
