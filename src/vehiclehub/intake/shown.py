"""Text from agency files as the hub shows it back: in rejections, reports and logs.

What an agency sends may hold anything; what the hub writes back holds no control
character and no line break (ICD §1: a control character is written ``\\uXXXX``).
"""

from __future__ import annotations

import re

import pandas as pd

#: Characters ICD §1 allows in no field: C0 and C1 controls, DEL, U+2028 and U+2029 — and
#: lone surrogates, which are what undecodable bytes of a file name become.
CONTROL_CHARS = "\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
_CONTROL = re.compile(f"[{CONTROL_CHARS}]")

#: The longest file name the store records (``intake_files.name``).
NAME_MAX_CHARS = 255


def escape_controls(text: str) -> str:
    """``text`` with every control character written as ``\\uXXXX``."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def shown_name(name: str) -> str:
    """An outbox entry's name as the hub records and reports it: escaped, and cut with
    ``…`` when longer than the store holds."""
    escaped = escape_controls(name)
    if len(escaped) <= NAME_MAX_CHARS:
        return escaped
    return escaped[: NAME_MAX_CHARS - 1] + "…"


#: Characters of a value a rejection shows (ICD §1).
VALUE_MAX_CHARS = 64


def cut_values(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Values as a rejection shows them (ICD §1), already masked: the first 64 characters,
    control characters written ``\\uXXXX``, ``…`` where cut; and where a value was cut,
    its length in characters (0 where it was not)."""
    text = values.astype("str")
    lengths = text.str.len().fillna(0).astype("int64")
    cut = lengths > VALUE_MAX_CHARS
    shown = (
        text.str.slice(0, VALUE_MAX_CHARS).map(escape_controls, na_action="ignore").astype("str")
    )
    shown = shown.where(~cut, shown + "…").where(values.notna(), None)
    return shown, lengths.where(cut, 0)
