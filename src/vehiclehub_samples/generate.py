"""A consistent sample world of used-car exports, with planted rule cases and intake noise.

The world: export enterprises with yearly filings; vehicles registered to people, sold to
an exporter pending export (转让待出口), licensed, declared and cleared by customs,
deregistered for export by the police and claimed for a tax refund; and a few trade-in
claims (以旧换新). Columns come from the feed contract (``vehiclehub.contract.feeds()``)
and every value is valid per its checks. Generation is vectorised (a million vehicles
take about a minute) and deterministic for a seed.

Each record has the business day on which it is first known and, for records that
change (a licence is issued, an item clears or is withdrawn, a refund is decided), the
day of each change. Each business date's file holds the records that are new or changed
since the previous date, with ``record_version`` counting the changes; everything known
by the first date goes into the first date's files, like an initial load.

Three registries make the world a test bed; adding a case is adding one small function:

* :data:`PLANTS`, per rule id: bend a few stories so that exactly that rule fires
  (:meth:`Stories.set` changes a story's steps and parties, :meth:`Stories.override` one
  record that differs from its story), and say which records the findings are on
  (``@plant("LIC-006")``).
* :data:`NEAR_MISSES`, per rule id: stories that come close to the rule and must not
  fire it.
* :data:`NOISE`: what goes wrong at intake (bad rows, bad files, late manifests, ...);
  every row or file the hub must reject is reported with its file, line and column.
* :data:`STORY_NOISE`: trouble whose consequences are findings, planted in the stories
  before their records are built: a clerk types a VIN over in one feed's copy (about 2%
  of the vehicles and claims), which makes the findings of the record that no longer
  meets its counterparts fire (EXP-001, LIC-001, ...) and VIN-003 propose the candidates.

:func:`generate_world` returns a :class:`World` whose :class:`GroundTruth` lists every
finding the hub must report on the last business date under the whole of RULES.md (a
rule with no planted case expects none), the candidates VIN-003 must propose, the
verdicts, and the expected rejections.

Inside the generator a day is a whole number of days since 1970-01-01 and NaN means
"never" (NaN compares false, so a step that never happens is never "on or before").
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from vehiclehub.config import RuleParameters
from vehiclehub.contract import FeedSpec, feed, feeds
from vehiclehub.workdays import package_calendar
from vehiclehub_samples.files import feed_file_name, write_manifest

EPOCH = date(1970, 1, 1)

# --------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    brand: str
    model: str
    wmi: str  # world manufacturer identifier (VIN positions 1-3)
    hs_code: str
    goods: str  # displacement and body type, as customs' 商品名称 carries them
    fob_usd: int  # typical FOB value of a three-year-old vehicle
    share: float  # share of exports


MODELS = (
    Model("比亚迪", "秦PLUS", "LGX", "87036012", "1.5L插电混动轿车", 9_000, 14),
    Model("比亚迪", "宋PLUS", "LGX", "87038000", "纯电动SUV", 12_000, 8),
    Model("吉利", "帝豪", "L6T", "87032342", "1.5L轿车", 6_000, 12),
    Model("长安", "CS75", "LS5", "87032343", "1.5T SUV", 8_000, 12),
    Model("奇瑞", "瑞虎8", "LVV", "87032362", "1.6T SUV", 9_500, 10),
    Model("长城", "哈弗H6", "LGW", "87032343", "1.5T SUV", 8_500, 14),
    Model("大众", "朗逸", "LSV", "87032342", "1.5L轿车", 7_000, 10),
    Model("丰田", "凯美瑞", "LVG", "87032362", "2.0L轿车", 14_000, 8),
    Model("五菱", "宏光MINIEV", "LZW", "8703800090", "纯电动微型车", 3_000, 6),
    Model("长城", "风骏5", "LGW", "87042100", "2.0T柴油皮卡", 7_000, 4),
    Model("宇通", "ZK6122", "LZY", "87021091", "柴油大客车", 40_000, 2),
)


@dataclass(frozen=True)
class Region:
    city: str
    plate: str  # 号牌 prefix
    code: str  # GB/T 2260 division code
    port: str  # customs district of the export port used from there


REGIONS = (
    Region("天津", "津A", "120116", "0202"),
    Region("上海", "沪A", "310115", "2248"),
    Region("广州", "粤A", "440106", "5141"),
    Region("深圳", "粤B", "440304", "5304"),
    Region("青岛", "鲁B", "370211", "4218"),
    Region("大连", "辽B", "210211", "0908"),
    Region("重庆", "渝A", "500112", "8012"),
    Region("成都", "川A", "510107", "7901"),
    Region("西安", "陕A", "610113", "9001"),
    Region("郑州", "豫A", "410105", "4601"),
    Region("乌鲁木齐", "新A", "650104", "7803"),
)
COUNTRIES = ("RUS", "KAZ", "ARE", "UZB", "KGZ", "TJK", "AZE", "GEO", "MNG", "SAU")
COUNTRY_SHARES = (30, 18, 14, 10, 8, 5, 5, 4, 3, 3)
NAME_WORDS = (
    "恒通",
    "远航",
    "丝路",
    "华信",
    "海川",
    "东方",
    "中汇",
    "宏达",
    "博远",
    "鑫源",
    "安泰",
    "长风",
    "瑞丰",
    "金桥",
    "昌盛",
    "新程",
    "联众",
    "盛世",
    "天成",
    "聚力",
)
NAME_SUFFIXES = (
    "汽车进出口有限公司",
    "国际贸易有限公司",
    "二手车出口有限公司",
    "供应链管理有限公司",
    "汽车服务有限公司",
)
REFUND_CLASSES = ("1", "2", "3", "4")
REFUND_CLASS_SHARES = (30, 40, 25, 5)
CNY_PER_USD = 7.1
REFUND_RATE = 0.13  # VAT refunded on the FOB value
LICENCE_VALID_DAYS = 180
LICENCE_BATCH = 20  # vehicles per licence and HS code (ICD §3)
DECLARATION_BATCH = 20  # items per declaration

# --------------------------------------------------------------------------------------
# Identifiers in bulk (ICD §2). Implemented here from the standards, independently of
# the hub's checks, so that a fault in either shows up in the tests.
# --------------------------------------------------------------------------------------

VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_VIN_CODES = np.frombuffer(VIN_ALPHABET.encode(), np.uint8)
_USCC_CODES = np.frombuffer(USCC_ALPHABET.encode(), np.uint8)
_DIGIT_CODES = np.frombuffer(b"0123456789", np.uint8)
_LETTER_CODES = np.frombuffer(PLATE_LETTERS.encode(), np.uint8)
_MODEL_YEAR_CODES = np.frombuffer(b"ABCDEFGHJKLMNPRSTVWXY123456789", np.uint8)  # 2010 = A
_VIN_WEIGHTS = np.array([8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2])
_USCC_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)])
_RID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)])
DRAWS = 50  # rounds of redrawing repeated identifiers before giving up


def _transliteration() -> np.ndarray:
    """ISO 3779 values of the VIN characters, indexed by ASCII code."""
    values = np.zeros(128, np.int64)
    for position, char in enumerate("0123456789"):
        values[ord(char)] = position
    for letters, first in (("ABCDEFGH", 1), ("JKLMN", 1), ("P", 7), ("R", 9), ("STUVWXYZ", 2)):
        for offset, char in enumerate(letters):
            values[ord(char)] = first + offset
    return values


_VIN_VALUES = _transliteration()
_CHECK_CODES = np.frombuffer(b"0123456789X", np.uint8)
_CHECK_INDEX = np.zeros(128, np.int64)
_CHECK_INDEX[_CHECK_CODES] = np.arange(len(_CHECK_CODES))
_VIN_INDEX = np.zeros(128, np.int64)
_VIN_INDEX[_VIN_CODES] = np.arange(len(VIN_ALPHABET))


def _siblings() -> np.ndarray:
    """Per VIN character (ASCII), the next character of the same ISO 3779 value (itself
    when it has none: ``0``)."""
    nxt = np.arange(128, dtype=np.uint8)
    for value in range(10):
        group = _VIN_CODES[_VIN_VALUES[_VIN_CODES] == value]
        nxt[group] = np.roll(group, -1)
    return nxt


_SIBLINGS = _siblings()
_USCC_VALUES = np.zeros(128, np.int64)
_USCC_VALUES[_USCC_CODES] = np.arange(len(USCC_ALPHABET))


def _ascii(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII strings of exactly ``width`` characters as a ``(n, width)`` uint8 matrix."""
    return np.asarray(values).astype(f"S{width}").view(np.uint8).reshape(-1, width)


def _text(codes: np.ndarray) -> np.ndarray:
    """The rows of a uint8 matrix as strings."""
    width = codes.shape[1]
    return np.ascontiguousarray(codes).view(f"S{width}").ravel().astype(f"U{width}")


def _put_digits(codes: np.ndarray, start: int, width: int, numbers: np.ndarray) -> None:
    """Write ``numbers`` zero-padded into columns ``start .. start + width`` of ``codes``."""
    for place in range(width):
        codes[:, start + width - 1 - place] = 48 + (numbers // 10**place) % 10


def _row_hashes(codes: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of a code matrix (equal rows, equal hashes)."""
    hashes = np.zeros(len(codes), np.uint64)
    for column in codes.T:
        hashes = hashes * np.uint64(1_099_511_628_211) + column
    return hashes


def _unique(draw: Callable[[np.ndarray], np.ndarray], count: int) -> np.ndarray:
    """``draw(rows)`` (a matrix of ASCII codes per row) for every row, drawn again for the
    rows whose hash repeats an earlier one's (a collision only costs a redraw); as text."""
    codes = draw(np.arange(count))
    for _ in range(DRAWS):
        _, first = np.unique(_row_hashes(codes), return_index=True)
        repeated = np.ones(count, bool)
        repeated[first] = False
        if not repeated.any():
            return _text(codes)
        codes[repeated] = draw(np.flatnonzero(repeated))
    raise ValueError(f"cannot draw {count} distinct values: too few possible ones")


def vin_check_codes(codes: np.ndarray) -> np.ndarray:
    """ISO 3779 check characters (ASCII) of a ``(n, 17)`` matrix of VIN characters."""
    remainder = (_VIN_VALUES[codes] @ _VIN_WEIGHTS) % 11
    return np.where(remainder == 10, ord("X"), 48 + remainder).astype(np.uint8)


def bulk_vins(rng: np.random.Generator, wmis: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Distinct random VINs with a correct check digit, one per (WMI, model year) given."""
    wmi_codes = _ascii(wmis, 3)

    def draw(rows: np.ndarray) -> np.ndarray:
        codes = np.empty((len(rows), 17), np.uint8)
        codes[:, :3] = wmi_codes[rows]
        codes[:, 3:8] = _VIN_CODES[rng.integers(0, len(VIN_ALPHABET), (len(rows), 5))]
        codes[:, 8] = ord("0")  # the check digit's place has weight 0
        codes[:, 9] = _MODEL_YEAR_CODES[(years[rows] - 2010) % len(_MODEL_YEAR_CODES)]
        codes[:, 10] = _VIN_CODES[rng.integers(0, len(VIN_ALPHABET), len(rows))]
        codes[:, 11:] = _DIGIT_CODES[rng.integers(0, 10, (len(rows), 6))]
        codes[:, 8] = vin_check_codes(codes)
        return codes

    return _unique(draw, len(wmis))


def uscc_check_codes(codes: np.ndarray) -> np.ndarray:
    """GB 32100 check characters (ASCII) of a ``(n, 17+)`` matrix of USCC characters."""
    remainder = (_USCC_VALUES[codes[:, :17]] @ _USCC_WEIGHTS) % 31
    return _USCC_CODES[(31 - remainder) % 31]


def bulk_usccs(rng: np.random.Generator, regions: np.ndarray) -> np.ndarray:
    """Distinct enterprise USCCs (``91`` + division code + organisation code + check)."""
    region_codes = _ascii(regions, 6)

    def draw(rows: np.ndarray) -> np.ndarray:
        codes = np.empty((len(rows), 18), np.uint8)
        codes[:, :2] = np.frombuffer(b"91", np.uint8)
        codes[:, 2:8] = region_codes[rows]
        codes[:, 8:17] = _USCC_CODES[rng.integers(0, len(USCC_ALPHABET), (len(rows), 9))]
        codes[:, 17] = uscc_check_codes(codes)
        return codes

    return _unique(draw, len(regions))


def resident_id_check_codes(codes: np.ndarray) -> np.ndarray:
    """GB 11643 check characters (ASCII) of a ``(n, 17+)`` matrix of digits."""
    check = (12 - ((codes[:, :17].astype(np.int64) - 48) @ _RID_WEIGHTS) % 11) % 11
    return np.where(check == 10, ord("X"), 48 + check).astype(np.uint8)


def bulk_resident_ids(
    rng: np.random.Generator, regions: np.ndarray, births: np.ndarray
) -> np.ndarray:
    """Distinct resident IDs: division code, birth date (day numbers), sequence, check."""
    region_codes = _ascii(regions, 6)
    born = births.astype("datetime64[D]")
    years = born.astype("datetime64[Y]").astype(np.int64) + 1970
    months = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (born - born.astype("datetime64[M]")).astype(np.int64) + 1

    def draw(rows: np.ndarray) -> np.ndarray:
        codes = np.empty((len(rows), 18), np.uint8)
        codes[:, :6] = region_codes[rows]
        _put_digits(codes, 6, 4, years[rows])
        _put_digits(codes, 10, 2, months[rows])
        _put_digits(codes, 12, 2, days[rows])
        _put_digits(codes, 14, 3, rng.integers(0, 1000, len(rows)))
        codes[:, 17] = resident_id_check_codes(codes)
        return codes

    return _unique(draw, len(regions))


def bulk_plates(rng: np.random.Generator, prefixes: np.ndarray) -> np.ndarray:
    """Number plates such as ``津A12345`` (a letter in front for about a third)."""
    codes = _DIGIT_CODES[rng.integers(0, 10, (len(prefixes), 5))]
    lettered = rng.random(len(prefixes)) < 0.3
    codes[lettered, 0] = _LETTER_CODES[rng.integers(0, len(PLATE_LETTERS), lettered.sum())]
    return np.char.add(prefixes.astype("U2"), _text(codes))


# --------------------------------------------------------------------------------------
# Days and text columns
# --------------------------------------------------------------------------------------


def day_number(day: date) -> int:
    return (day - EPOCH).days


def calendar_day(number: float) -> date:
    return EPOCH + timedelta(days=int(number))


def business_dates(start: date, count: int) -> list[date]:
    """``count`` consecutive Chinese working days from ``start`` (itself if a working day).

    In a year the working-day calendar does not cover, the simulated agencies send their
    files Monday to Friday (a choice for sample files; no rule counts with it).
    """
    calendar = package_calendar()
    found: list[date] = []
    day = start
    while len(found) < count:
        working = calendar.is_working_day(day)
        if working or (working is None and day.weekday() < 5):
            found.append(day)
        day += timedelta(days=1)
    return found


def _arrow_text(array: pa.Array) -> pd.Series:
    """An Arrow string array as a pandas string Series (no Python strings on the way)."""
    return pd.Series(pd.array(array, dtype="str"))


def _str(values: Any) -> pd.Series:
    """Text values (None for null) as a string Series with a fresh index."""
    return _arrow_text(pa.array(np.asarray(values)))


def _choose(options: Sequence[str] | pd.Series, index: Any) -> pd.Series:
    """``options[index]`` per row, as text, built through an Arrow dictionary."""
    codes = pa.array(np.asarray(index, dtype=np.int32))
    chosen = pa.DictionaryArray.from_arrays(codes, pa.array(list(options), pa.string()))
    return _arrow_text(chosen.cast(pa.string()))


def _iso(days: Any) -> pd.Series:
    """Day numbers as ``YYYY-MM-DD`` text; NaN (never) as null."""
    values = np.asarray(days, dtype=np.float64)
    missing = np.isnan(values)
    dates = pa.array(np.where(missing, 0, values).astype(np.int32), pa.date32(), mask=missing)
    return _arrow_text(pc.cast(dates, pa.string()))


def _compact(days: Any) -> pd.Series:
    """Day numbers as ``YYYYMMDD``."""
    return _iso(days).str.replace("-", "", regex=False)


def _padded(numbers: Any, width: int) -> pd.Series:
    """Whole numbers as text, zero-padded to ``width``."""
    text = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string())
    return _arrow_text(pc.utf8_lpad(text, width=width, padding="0"))


def _money(cents: Any) -> pd.Series:
    """Whole cents as a plain decimal with two places."""
    cents = np.asarray(cents, dtype=np.int64)
    return _padded(cents // 100, 1) + "." + _padded(cents % 100, 2)


def _pick(values: Sequence[Any], index: Any) -> np.ndarray:
    return np.asarray(values)[np.asarray(index)]


def _shares(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


# --------------------------------------------------------------------------------------
# The population: exporters, vehicles and trade-in claims, as story parameters
# --------------------------------------------------------------------------------------

#: Trade-in claim story steps, each a day number (NaN: does not happen).
CLAIM_STEPS = ("old_registered", "old_ended", "new_registered", "applied")

#: Vehicle story steps, each a day number (NaN: does not happen).
STEPS = (
    "registered",  # 注册登记 to a person
    "transferred",  # a domestic sale to another person (some vehicles)
    "pending",  # 转让登记待出口 to the exporter
    "applied",  # licence application complete
    "issued",  # licence issued
    "valid_to",  # licence valid until
    "declared",  # customs item 1 declared
    "exported",  # item 1 cleared and exited
    "withdrawn",  # item 1 withdrawn (修撤单)
    "declared2",  # customs item 2 declared
    "exported2",  # item 2 cleared and exited
    "deregistered",  # police deregistration for export
    "refund_applied",  # refund line 1 documents complete
    "refund_decided",  # refund line 1 approved or rejected
    "refund2_applied",  # refund line 2 (a second claim on the same item)
    "refund2_decided",
)


@dataclass
class Stories:
    """The population whose stories the plants bend, and the business dates they end on.

    ``vehicles`` has one row per export vehicle: the :data:`STEPS` (day numbers) and
    who does what (``exporter`` holds the licence, ``item_exporter`` declares,
    ``refund_exporter`` claims the refund; indexes into ``exporters``), plus
    ``dereg_cites`` (the item, 1 or 2, the deregistration names), ``refund_cites`` (1, 2,
    or 0 for an item number that does not exist) and the refund lines' final statuses.
    ``claims`` has one row per trade-in claim: ``claim_type``, ``applicant``, the old and
    new vehicles (``old_vin``, ``new_vin``, ...) and the days ``old_registered``,
    ``old_ended`` (deregistered for ``old_reason`` if scrapped, or sold to ``buyer``),
    ``new_registered`` and ``applied``.

    ``candidates`` collects, for VIN-003, which records' findings must list which
    records as likely counterparts: (story rows, kind of the finding's record, kind of
    the candidate record of the same story, the finding's VIN per row).
    """

    rng: np.random.Generator
    params: RuleParameters
    dates: tuple[int, ...]  # the business dates, ascending
    vehicles: pd.DataFrame
    exporters: pd.DataFrame
    claims: pd.DataFrame
    used: np.ndarray = field(init=False)
    used_claims: np.ndarray = field(init=False)
    overrides: list[tuple[str, np.ndarray, dict[str, Any]]] = field(default_factory=list)
    candidates: list[tuple[np.ndarray, str, str, np.ndarray]] = field(default_factory=list)
    typos: list[pd.DataFrame] = field(default_factory=list)
    _workdays: tuple[int, np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.used = np.zeros(len(self.vehicles), bool)
        self.used_claims = np.zeros(len(self.claims), bool)

    @property
    def first(self) -> int:
        return self.dates[0]

    @property
    def second(self) -> int:
        """The second business date (the only one when there is just one)."""
        return self.dates[min(1, len(self.dates) - 1)]

    @property
    def last(self) -> int:
        return self.dates[-1]

    @property
    def normal_exporters(self) -> int:
        return int((self.exporters["standing"] == "active").sum())

    def step(self, name: str) -> np.ndarray:
        return self.vehicles[name].to_numpy()

    def take(self, count: int, eligible: np.ndarray) -> np.ndarray:
        """Up to ``count`` vehicles, at random among the eligible ones not bent yet."""
        pool = np.flatnonzero(eligible & ~self.used)
        chosen = np.sort(self.rng.choice(pool, size=min(count, len(pool)), replace=False))
        self.used[chosen] = True
        return chosen

    def take_claims(self, count: int, eligible: np.ndarray) -> np.ndarray:
        """Up to ``count`` trade-in claims, at random among the eligible ones not bent yet."""
        pool = np.flatnonzero(eligible & ~self.used_claims)
        chosen = np.sort(self.rng.choice(pool, size=min(count, len(pool)), replace=False))
        self.used_claims[chosen] = True
        return chosen

    def holds(self, vins: np.ndarray) -> np.ndarray:
        """Whether each VIN is already one the stories give a vehicle, a claim or a typo."""
        held = [self.vehicles["vin"], self.claims["old_vin"], self.claims["new_vin"]]
        held += [typo["read"] for typo in self.typos]
        value_set = pa.chunked_array([pa.array(v).cast(pa.large_string()) for v in held])
        found = pc.is_in(pa.array(np.asarray(vins), pa.large_string()), value_set=value_set)
        return found.to_numpy(zero_copy_only=False)

    def claim_is(self, claim_type: str) -> np.ndarray:
        return (self.claims["claim_type"] == claim_type).to_numpy()

    def claim_count(self, count: int) -> int:
        """A plant's vehicle count scaled to the (fewer) trade-in claims, at least one."""
        return max(1, round(count * len(self.claims) / max(1, len(self.vehicles))))

    def complete(self) -> np.ndarray:
        """Vehicles whose whole story (refund decided included) is over by the last date."""
        done = np.fmax(self.step("deregistered"), self.step("refund_decided"))
        return done <= self.last

    def refunded(self) -> np.ndarray:
        """Complete vehicles with an approved refund line."""
        approved = (self.vehicles["refund_status"] == "approved").to_numpy()
        return self.complete() & approved & ~np.isnan(self.step("refund_applied"))

    def days(self, rows: np.ndarray, low: int, high: int) -> np.ndarray:
        """A random whole number of days from ``low`` to ``high`` for each row."""
        return self.rng.integers(low, high + 1, len(rows)).astype(np.float64)

    def other_exporter(self, current: np.ndarray) -> np.ndarray:
        """A different ordinary exporter for each given one."""
        count = self.normal_exporters
        return (current + 1 + self.rng.integers(0, count - 1, len(current))) % count

    def set(self, rows: np.ndarray, **columns: Any) -> None:
        """Change story parameters of the given vehicles."""
        for name, value in columns.items():
            self.vehicles.loc[rows, name] = value

    def label_typos(self, since: int, case: str) -> None:
        """Name the case that typed over the VINs recorded since the ``since``-th."""
        self.typos[since:] = [typo.assign(case=case) for typo in self.typos[since:]]

    def set_claims(self, rows: np.ndarray, **columns: Any) -> None:
        """Change story parameters of the given trade-in claims."""
        for name, value in columns.items():
            self.claims.loc[rows, name] = value

    def override(self, kind: str, rows: np.ndarray, **columns: Any) -> None:
        """Once the records are built, set columns of the ``kind`` record (see
        :data:`KIND_FEEDS`) of the given stories: to a value, to one value per story (a
        Series indexed by story row, see :func:`by_story`), or to what a function makes of
        the current values (a string Series). For a record that differs from its story:
        a typed-over VIN, another brand, another owner."""
        self.overrides.append((kind, rows, columns))

    def shift(self, rows: np.ndarray, by: np.ndarray) -> None:
        """Move the whole story of each vehicle by ``by`` days."""
        for name in STEPS:
            self.vehicles.loc[rows, name] = self.vehicles.loc[rows, name].to_numpy() + by

    def shift_claims(self, rows: np.ndarray, by: np.ndarray) -> None:
        """Move the whole story of each trade-in claim by ``by`` days."""
        for name in CLAIM_STEPS:
            self.claims.loc[rows, name] = self.claims.loc[rows, name].to_numpy() + by

    def _calendar(self) -> tuple[int, np.ndarray]:
        """The first of the 800 days before the last date, and the running count of working
        days over them (the State Council calendar, as ``chinesecalendar`` publishes it).
        A day of a year it does not cover counts as no working day: no working-day case is
        planted across it (the hub does not evaluate those)."""
        if self._workdays is None:
            first = self.last - 800
            days = pd.Series([calendar_day(d) for d in range(first - 1, self.last + 1)])
            counts = package_calendar().working_days_after(days.iloc[:-1], days.iloc[1:])
            working = counts.fillna(0).to_numpy(dtype=np.int64)
            self._workdays = (first, np.cumsum(working))
        return self._workdays

    def working_day_after(self, days: np.ndarray, count: Any) -> np.ndarray:
        """The day of the ``count``-th working day after each of ``days`` (NaN when that is
        after the last date or ``days`` is outside the calendar kept)."""
        first, running = self._calendar()
        offset = np.asarray(days, dtype=np.float64) - first
        inside = (offset >= 0) & (offset < len(running))
        target = running[np.where(inside, offset, 0).astype(np.int64)] + count
        at = np.searchsorted(running, target)
        return np.where(inside & (at < len(running)), first + at, np.nan)

    def working_day_before_last(self, count: Any) -> np.ndarray:
        """For each ``count``, the working day after which exactly ``count`` working days
        fall up to and including the last date."""
        first, running = self._calendar()
        return (first + np.searchsorted(running, running[-1] - np.asarray(count))).astype(
            np.float64
        )


def _sample_exporters(rng: np.random.Generator, count: int, last: int) -> pd.DataFrame:
    """Ordinary exporters with yearly filings, and two whose filings do not hold."""
    total = count + 2
    region = rng.integers(0, len(REGIONS), total)
    words = rng.integers(0, len(NAME_WORDS), total)
    suffixes = rng.integers(0, len(NAME_SUFFIXES), total)
    codes = _pick([r.code for r in REGIONS], region)
    return pd.DataFrame(
        {
            "uscc": _str(bulk_usccs(rng, codes)),
            "name": _choose([r.city for r in REGIONS], region)
            + _choose(NAME_WORDS, words)
            + _choose(NAME_SUFFIXES, suffixes),
            "region_code": _str(codes),
            "standing": ["active"] * count + ["revoked", "lapsed"],
            "filed_from": (last - 4 * 365 + rng.integers(-180, 180, total)).astype(float),
        }
    )


def _sample_vehicles(
    rng: np.random.Generator, count: int, last: int, exporters: int
) -> pd.DataFrame:
    """Export vehicles with a complete, consistent story; later steps may lie ahead."""

    def days(low: int, high: int) -> np.ndarray:
        return rng.integers(low, high + 1, count).astype(np.float64)

    model = rng.choice(len(MODELS), size=count, p=_shares([m.share for m in MODELS]))
    region = rng.integers(0, len(REGIONS), count)
    # Backwards from the deregistration; the gaps keep every rule quiet: SLA-001 (issued
    # within 3 calendar days), POL-001 (declared within 53 days of pending export),
    # EXP-003 (deregistered within 30 days of export), LIC-007 (over 200 days old).
    deregistered = last + days(-450, 88)
    exported = deregistered - days(0, 30)
    declared = exported - days(0, 7)
    issued = declared - days(0, 40)
    applied = issued - days(0, 3)
    pending = applied - days(0, 10)
    registered = applied - days(200, 2900)
    resold = rng.random(count) < 0.3
    share = rng.uniform(0.2, 0.8, count)
    transferred = np.where(resold, registered + np.floor((pending - registered) * share), np.nan)
    refund_applied = np.where(rng.random(count) < 0.92, exported + days(1, 30), np.nan)
    exporter = rng.choice(exporters, size=count, p=_shares(1 / np.arange(1, exporters + 1) ** 0.8))
    fob = _pick([m.fob_usd for m in MODELS], model) * 100 * rng.uniform(0.6, 1.4, count)
    country = rng.choice(len(COUNTRIES), count, p=_shares(COUNTRY_SHARES))
    refund_class = rng.choice(len(REFUND_CLASSES), count, p=_shares(REFUND_CLASS_SHARES))
    nan = np.full(count, np.nan)
    return pd.DataFrame(
        {
            "model": model,
            "region": region,
            "exporter": exporter,
            "item_exporter": exporter,
            "refund_exporter": exporter,
            "port": _choose([r.port for r in REGIONS], region),
            "country": _choose(COUNTRIES, country),
            "fob_cents": fob.astype(np.int64),
            "refund_class": _choose(REFUND_CLASSES, refund_class),
            "refund_status": _choose(["approved", "rejected"], rng.random(count) >= 0.97),
            "refund2_status": _choose(["approved"], np.zeros(count)),
            "dereg_cites": 1,
            "refund_cites": 1,
            "registered": registered,
            "transferred": transferred,
            "pending": pending,
            "applied": applied,
            "issued": issued,
            "valid_to": issued + LICENCE_VALID_DAYS - 1,
            "declared": declared,
            "exported": exported,
            "withdrawn": nan,
            "declared2": nan,
            "exported2": nan,
            "deregistered": deregistered,
            "refund_applied": refund_applied,
            "refund_decided": refund_applied + days(0, 3),
            "refund2_applied": nan,
            "refund2_decided": nan,
        }
    )


def _sample_claims(rng: np.random.Generator, count: int, last: int) -> pd.DataFrame:
    """Trade-in claims: the old vehicle scrapped or sold, a new one registered."""

    def days(low: int, high: int) -> np.ndarray:
        return rng.integers(low, high + 1, count).astype(np.float64)

    applied = last - days(1, 400)
    old_ended = applied - days(0, 30)
    return pd.DataFrame(
        {
            "claim_type": _choose(["scrap", "replace"], rng.random(count) >= 0.5),
            "old_reason": _choose(["scrap"], np.zeros(count)),
            "old_model": rng.integers(0, len(MODELS), count),
            "new_model": rng.integers(0, len(MODELS), count),
            "region": rng.integers(0, len(REGIONS), count),
            "old_registered": old_ended - days(1000, 4000),
            "old_ended": old_ended,
            "new_registered": applied - days(0, 20),
            "applied": applied,
        }
    )


def _populate(
    rng: np.random.Generator,
    vehicles: int,
    claims: int,
    dates: tuple[int, ...],
    params: RuleParameters,
) -> Stories:
    """Sample every party and story, then give them VINs, plates and IDs in bulk."""
    last = dates[-1]
    exporters = _sample_exporters(rng, max(3, vehicles // 500), last)
    cars = _sample_vehicles(rng, vehicles, last, int((exporters["standing"] == "active").sum()))
    trade = _sample_claims(rng, claims, last)
    split = [vehicles, vehicles + claims]

    models = np.concatenate([cars["model"], trade["old_model"], trade["new_model"]])
    registered = np.concatenate(
        [cars["registered"], trade["old_registered"], trade["new_registered"]]
    )
    year = registered.astype(np.int64).astype("datetime64[D]").astype("datetime64[Y]")
    vins = bulk_vins(rng, _pick([m.wmi for m in MODELS], models), year.astype(np.int64) + 1970)
    cars["vin"], trade["old_vin"], trade["new_vin"] = map(_str, np.split(vins, split))
    regions = np.concatenate([cars["region"], trade["region"], trade["region"]])
    plates = bulk_plates(rng, _pick([r.plate for r in REGIONS], regions))
    cars["plate"], trade["old_plate"], trade["new_plate"] = map(_str, np.split(plates, split))

    # People: each vehicle's first owner, a buyer where it was resold, each claimant and
    # the buyer of a replaced car.
    resold = ~np.isnan(cars["transferred"].to_numpy())
    person_regions = np.concatenate(
        [cars["region"], cars["region"][resold], trade["region"], trade["region"]]
    )
    born = rng.integers(
        day_number(date(1955, 1, 1)), day_number(date(2003, 1, 1)), len(person_regions)
    )
    people = bulk_resident_ids(rng, _pick([r.code for r in REGIONS], person_regions), born)
    owners, buyers, applicants, claim_buyers = np.split(
        people, np.cumsum([vehicles, int(resold.sum()), claims])
    )
    cars["owner"] = _str(owners)
    buyer = np.full(vehicles, None, dtype=object)
    buyer[resold] = buyers
    cars["buyer"] = _str(buyer)
    trade["applicant"] = _str(applicants)
    trade["buyer"] = _str(claim_buyers)
    # Clerks type a VIN in lower case or with a space now and then: cleaning for the hub,
    # never a substitution (RULES.md VIN-001).
    vin = cars["vin"]
    cars["vin_police"] = vin.where(rng.random(vehicles) >= 0.01, vin.str.lower())
    cars["vin_customs"] = vin.where(
        rng.random(vehicles) >= 0.01, vin.str.slice(0, 8) + " " + vin.str.slice(8)
    )
    return Stories(rng, params, dates, cars, exporters, trade)


# --------------------------------------------------------------------------------------
# Planted cases: one small function per rule (or per variant of a rule)
# --------------------------------------------------------------------------------------

#: The feed of each kind of record in a story (``_kind`` of the record frames).
KIND_FEEDS: dict[str, tuple[str, str]] = {
    "register": ("police", "events"),
    "transfer": ("police", "events"),
    "pending": ("police", "events"),
    "dereg": ("police", "events"),
    "old_register": ("police", "events"),
    "old_scrap": ("police", "events"),
    "old_transfer": ("police", "events"),
    "new_register": ("police", "events"),
    "filing": ("commerce", "enterprises"),
    "licence": ("commerce", "licences"),
    "claim": ("commerce", "tradein_claims"),
    "item1": ("customs", "declarations"),
    "item2": ("customs", "declarations"),
    "refund1": ("tax", "refunds"),
    "refund2": ("tax", "refunds"),
}

#: What a plant returns: the records its findings are on, as (story rows, record kind),
#: or (story rows, record kind, rule id) for a finding of another rule the case causes.
Planted = list[tuple[np.ndarray, str] | tuple[np.ndarray, str, str]]


def by_story(rows: np.ndarray, values: Any) -> pd.Series:
    """Values for :meth:`Stories.override`, one per story row."""
    return pd.Series(np.asarray(values), index=np.asarray(rows))


#: Rule id -> the variants that make it fire; each takes ``(stories, count)``.
PLANTS: dict[str, list[Callable[[Stories, int], Planted]]] = {}
#: Rule id -> stories that come close to it and must not fire it.
NEAR_MISSES: dict[str, list[Callable[[Stories, int], None]]] = {}
#: Name -> noise in the stories (see :func:`story_noise`); the trouble at intake is
#: :data:`NOISE`.
STORY_NOISE: dict[str, Callable[[Stories, float], Planted]] = {}


def plant(
    rule_id: str,
) -> Callable[[Callable[[Stories, int], Planted]], Callable[[Stories, int], Planted]]:
    """Register a variant that bends up to ``count`` stories so that ``rule_id`` fires.

    The function returns the records the findings are on, as (rows, kind) pairs: vehicle
    rows for vehicle kinds, claim rows for ``claim`` and the ``old_``/``new_`` events.
    The rule's count is shared among its variants, each getting at least one.
    """

    def register(function: Callable[[Stories, int], Planted]) -> Callable[[Stories, int], Planted]:
        PLANTS.setdefault(rule_id, []).append(function)
        return function

    return register


def story_noise(
    name: str,
) -> Callable[[Callable[[Stories, float], Planted]], Callable[[Stories, float], Planted]]:
    """Register noise planted in the stories before their records are built: trouble whose
    consequences are findings, not rejections, so that the ground truth expects them (a
    VIN typed over in one feed's copy makes EXP-001, LIC-001, ... fire). The function takes
    ``(stories, fraction)`` and returns every finding it causes, each with its rule id."""

    def register(
        function: Callable[[Stories, float], Planted],
    ) -> Callable[[Stories, float], Planted]:
        STORY_NOISE[name] = function
        return function

    return register


def near_miss(
    rule_id: str,
) -> Callable[[Callable[[Stories, int], None]], Callable[[Stories, int], None]]:
    """Register a story that comes close to ``rule_id`` without firing it (nor any rule)."""

    def register(function: Callable[[Stories, int], None]) -> Callable[[Stories, int], None]:
        NEAR_MISSES.setdefault(rule_id, []).append(function)
        return function

    return register


@plant("EXP-001")
def _deregistered_never_cleared(s: Stories, count: int) -> Planted:
    """Deregistered for export, but the customs item never cleared (and no refund)."""
    rows = s.take(count, s.complete())
    s.set(rows, exported=np.nan, refund_applied=np.nan, refund_decided=np.nan)
    return [(rows, "dereg")]


@plant("EXP-002")
def _deregistered_before_export(s: Stories, count: int) -> Planted:
    """Deregistered for export a few days before the vehicle left the country."""
    rows = s.take(count, s.complete())
    s.set(rows, deregistered=s.step("exported")[rows] - s.days(rows, 1, 10))
    return [(rows, "dereg")]


@plant("EXP-003")
def _exported_never_deregistered(s: Stories, count: int) -> Planted:
    """Exported more than the deregistration window ago and never deregistered."""
    window = s.params.dereg_window_days
    rows = s.take(count, s.complete() & (s.step("exported") + window < s.last))
    s.set(rows, deregistered=np.nan)
    return [(rows, "item1")]


@plant("LIC-001")
def _declared_on_mistyped_licence(s: Stories, count: int) -> Planted:
    """The declaration cites the licence number with two digits swapped."""
    rows = s.take(count, s.complete())
    s.override("item1", rows, licence_no=_mistyped)
    return [(rows, "item1")]


@plant("LIC-002")
def _declared_on_licence_not_issued(s: Stories, count: int) -> Planted:
    """Declared on the last date on a licence applied for the day before, not issued yet."""
    applied_by_then = (s.step("applied") <= s.last) & (s.step("declared") > s.last)
    rows = s.take(count, applied_by_then)
    applied = np.full(len(rows), s.last - 1.0)
    s.set(
        rows,
        pending=np.fmin(s.step("pending")[rows], applied),
        applied=applied,
        issued=np.nan,
        valid_to=np.nan,
        declared=float(s.last),
        exported=np.nan,
        deregistered=np.nan,
        refund_applied=np.nan,
        refund_decided=np.nan,
    )
    return [(rows, "item1")]


@plant("LIC-002")
def _declared_after_licence_expired(s: Stories, count: int) -> Planted:
    """The licence ran out the day before the declaration."""
    rows = s.take(count, s.complete() & (s.step("declared") - s.step("issued") >= 2))
    s.set(rows, valid_to=s.step("declared")[rows] - 1)
    return [(rows, "item1")]


@plant("LIC-003")
def _declared_by_another_exporter(s: Stories, count: int) -> Planted:
    """Another exporter declares (and claims the refund on) a vehicle licensed to the first."""
    rows = s.take(count, s.complete())
    other = s.other_exporter(s.step("exporter")[rows])
    s.set(rows, item_exporter=other, refund_exporter=other)
    return [(rows, "item1")]


@plant("LIC-004")
def _licensed_without_active_filing(s: Stories, count: int) -> Planted:
    """The exporter's filing was revoked, or lapsed years ago."""
    rows = s.take(count, s.complete())
    without = np.flatnonzero((s.exporters["standing"] != "active").to_numpy())
    exporter = without[np.arange(len(rows)) % len(without)]
    s.set(rows, exporter=exporter, item_exporter=exporter, refund_exporter=exporter)
    return [(rows, "licence")]


@plant("LIC-005")
def _declared_twice(s: Stories, count: int) -> Planted:
    """An earlier declaration of the same vehicle that never cleared, still on file."""
    issued, declared = s.step("issued"), s.step("declared")
    rows = s.take(count, s.complete() & (declared - issued >= 2))
    s.set(rows, declared2=issued[rows] + np.floor((declared[rows] - issued[rows]) / 2))
    return [(rows, "item1"), (rows, "item2")]


@plant("TAX-001")
def _refund_citing_no_item(s: Stories, count: int) -> Planted:
    """The refund line cites an item number the declaration does not have."""
    rows = s.take(count, s.refunded())
    s.set(rows, refund_cites=0)
    return [(rows, "refund1")]


@plant("TAX-001")
def _refund_on_item_not_cleared(s: Stories, count: int) -> Planted:
    """A refund approved on a declared item that never cleared (nor was deregistered)."""
    declared = s.step("declared")
    rows = s.take(count, s.refunded() & (declared + 13 <= s.last))
    applied = declared[rows] + s.days(rows, 1, 10)
    s.set(
        rows,
        exported=np.nan,
        deregistered=np.nan,
        refund_applied=applied,
        refund_decided=applied + s.days(rows, 0, 3),
    )
    return [(rows, "refund1")]


@plant("TAX-002")
def _refund_on_withdrawn_item(s: Stories, count: int) -> Planted:
    """The item was withdrawn (修撤单) and declared again; the refund cites the withdrawn one."""
    rows = s.take(count, s.refunded())
    declared = s.step("declared")[rows]
    s.set(
        rows,
        declared2=declared,
        exported2=s.step("exported")[rows],
        declared=declared - 2,
        withdrawn=declared - 1,
        exported=np.nan,
        dereg_cites=2,
        refund_cites=1,
    )
    return [(rows, "refund1")]


@plant("TAX-003")
def _refund_claimed_twice(s: Stories, count: int) -> Planted:
    """A second refund line, days later, on the same declaration item."""
    decided = s.step("refund_decided")
    rows = s.take(count, s.refunded() & (decided + 8 <= s.last))
    applied = decided[rows] + s.days(rows, 1, 5)
    s.set(rows, refund2_applied=applied, refund2_decided=applied + s.days(rows, 0, 3))
    return [(rows, "refund1"), (rows, "refund2")]


@plant("TAX-004")
def _refund_claimed_by_another_party(s: Stories, count: int) -> Planted:
    """The refund is claimed by an enterprise that did not declare the export."""
    rows = s.take(count, s.refunded())
    s.set(rows, refund_exporter=s.other_exporter(s.step("item_exporter")[rows]))
    return [(rows, "refund1")]


@near_miss("EXP-002")
def _deregistered_on_export_day(s: Stories, count: int) -> None:
    """Deregistered on the very day of export: verified."""
    rows = s.take(count, s.complete())
    s.set(rows, deregistered=s.step("exported")[rows])


@near_miss("EXP-003")
def _exported_exactly_window_ago(s: Stories, count: int) -> None:
    """Exported exactly the deregistration window before the last date, not deregistered."""
    rows = s.take(count, s.complete())
    s.shift(rows, s.last - s.params.dereg_window_days - s.step("exported")[rows])
    s.set(rows, deregistered=np.nan)


@near_miss("LIC-002")
def _declared_on_licence_last_day(s: Stories, count: int) -> None:
    """Declared on the last day the licence is valid."""
    rows = s.take(count, s.complete())
    s.set(rows, valid_to=s.step("declared")[rows])


@near_miss("TAX-001")
def _rejected_refund_citing_no_item(s: Stories, count: int) -> None:
    """A refund line citing no item, rejected by the tax office: outside the TAX rules."""
    rows = s.take(count, s.refunded())
    s.set(rows, refund_status="rejected", refund_cites=0)


@near_miss("TAX-002")
def _withdrawn_and_declared_again(s: Stories, count: int) -> None:
    """修撤单 across days: item 1 (sent the day before the first date) is withdrawn on the
    second business date and declared again; deregistration and refund cite the new item."""
    rows = s.take(count, s.complete())
    s.shift(rows, s.second - s.step("declared")[rows])
    s.set(
        rows,
        declared2=s.step("declared")[rows],
        exported2=s.step("exported")[rows],
        declared=s.first - 1.0,
        withdrawn=float(s.second),
        exported=np.nan,
        dereg_cites=2,
        refund_cites=2,
    )


@near_miss("TAX-003")
def _rejected_and_claimed_again(s: Stories, count: int) -> None:
    """A refund line rejected, then claimed again under a new refund number."""
    decided = s.step("refund_decided")
    rows = s.take(count, s.refunded() & (decided + 8 <= s.last))
    applied = decided[rows] + s.days(rows, 1, 5)
    s.set(
        rows,
        refund_status="rejected",
        refund2_applied=applied,
        refund2_decided=applied + s.days(rows, 0, 3),
    )


@plant("LIC-006")
def _licence_names_another_model(s: Stories, count: int) -> Planted:
    """The licence names the model otherwise than the police pending-export registration."""
    rows = s.take(count, s.complete())
    s.override("licence", rows, model=lambda models: models + " Pro")
    return [(rows, "licence")]


@plant("LIC-006")
def _licence_gives_another_pending_date(s: Stories, count: int) -> Planted:
    """The licence gives a pending-export date days before the police registered it."""
    rows = s.take(count, s.complete())
    earlier = _iso(s.step("pending")[rows] - s.days(rows, 1, 5))
    s.override("licence", rows, pending_export_date=by_story(rows, earlier))
    return [(rows, "licence")]


@near_miss("LIC-006")
def _licence_model_with_trailing_spaces(s: Stories, count: int) -> None:
    """The licence's model typed with trailing spaces: fields are trimmed, the text agrees."""
    rows = s.take(count, s.complete())
    s.override("licence", rows, model=lambda models: models + "  ")


def _registered_before_application(
    s: Stories, count: int, ages: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Vehicles (never resold) first registered ``ages(rows)`` days before the licence
    application; returns them."""
    rows = s.take(count, s.complete() & np.isnan(s.step("transferred")))
    s.set(rows, registered=s.step("applied")[rows] - ages(rows))
    return rows


@plant("LIC-007")
def _near_new_car_exported(s: Stories, count: int) -> Planted:
    """A car registered at most new_car_days before the licence application (the first
    of them exactly new_car_days)."""
    limit = s.params.new_car_days

    def ages(rows: np.ndarray) -> np.ndarray:
        days = s.days(rows, 30, limit)
        days[:1] = limit
        return days

    return [(_registered_before_application(s, count, ages), "licence")]


@near_miss("LIC-007")
def _car_a_day_older_than_near_new(s: Stories, count: int) -> None:
    """Registered new_car_days + 1 days before the licence application."""
    limit = s.params.new_car_days
    _registered_before_application(s, count, lambda rows: np.full(len(rows), limit + 1.0))


def _never_declared(s: Stories, rows: np.ndarray) -> None:
    """The vehicles are never declared, exported, deregistered nor refunded."""
    s.set(
        rows,
        declared=np.nan,
        exported=np.nan,
        deregistered=np.nan,
        refund_applied=np.nan,
        refund_decided=np.nan,
    )


@plant("POL-001")
def _pending_export_never_declared(s: Stories, count: int) -> Planted:
    """Transferred pending export and licensed, then never declared; the window is over."""
    window = s.params.pending_export_days
    rows = s.take(count, s.complete() & (s.step("pending") + window < s.last))
    _never_declared(s, rows)
    return [(rows, "pending")]


@near_miss("POL-001")
def _pending_export_exactly_window_ago(s: Stories, count: int) -> None:
    """Transferred pending export exactly the window before the last date, not declared yet."""
    rows = s.take(count, s.complete())
    s.shift(rows, s.last - s.params.pending_export_days - s.step("pending")[rows])
    _never_declared(s, rows)


@plant("POL-002")
def _sold_after_pending_export(s: Stories, count: int) -> Planted:
    """Sold to a person again days after the transfer pending export (转让待出口)."""
    pending = s.step("pending")
    resold = ~np.isnan(s.step("transferred"))
    rows = s.take(count, s.complete() & resold & (pending + 10 <= s.last))
    s.set(rows, transferred=pending[rows] + s.days(rows, 1, 10))
    return [(rows, "transfer")]


@near_miss("POL-002")
def _sold_on_pending_export_day(s: Stories, count: int) -> None:
    """A sale registered the same day as the transfer pending export: it does not follow."""
    rows = s.take(count, s.complete() & ~np.isnan(s.step("transferred")))
    s.set(rows, transferred=s.step("pending")[rows])


def _exporter_uscc(s: Stories, exporters: np.ndarray) -> np.ndarray:
    return s.exporters["uscc"].to_numpy()[exporters]


@plant("POL-003")
def _pending_export_to_unlicensed_exporter(s: Stories, count: int) -> Planted:
    """Transferred pending export to an exporter that holds none of the vehicle's licences."""
    rows = s.take(count, s.complete())
    other = _exporter_uscc(s, s.other_exporter(s.step("exporter")[rows]))
    s.override("pending", rows, owner_id=by_story(rows, other))
    return [(rows, "pending")]


@near_miss("POL-003")
def _pending_export_before_any_licence(s: Stories, count: int) -> None:
    """Transferred pending export to another exporter days ago; no licence applied for yet."""
    rows = s.take(count, s.complete())
    s.set(rows, pending=s.last - s.days(rows, 0, 20), applied=np.nan, issued=np.nan)
    s.set(rows, valid_to=np.nan)
    _never_declared(s, rows)
    other = _exporter_uscc(s, s.other_exporter(s.step("exporter")[rows]))
    s.override("pending", rows, owner_id=by_story(rows, other))


@plant("TRD-001")
def _scrap_claim_never_deregistered(s: Stories, count: int) -> Planted:
    """A 报废更新 claim whose old car the police never deregistered."""
    rows = s.take_claims(s.claim_count(count), s.claim_is("scrap"))
    s.set_claims(rows, old_ended=np.nan)
    return [(rows, "claim")]


@plant("TRD-001")
def _scrap_claim_car_deregistered_otherwise(s: Stories, count: int) -> Planted:
    """A 报废更新 claim whose old car was deregistered for another reason, not scrapped."""
    rows = s.take_claims(s.claim_count(count), s.claim_is("scrap"))
    s.set_claims(rows, old_reason="other")
    return [(rows, "claim")]


@near_miss("TRD-001")
def _scrapped_after_the_claim(s: Stories, count: int) -> None:
    """The old car scrapped days after the 报废更新 claim was applied for."""
    applied = s.claims["applied"].to_numpy()
    rows = s.take_claims(s.claim_count(count), s.claim_is("scrap") & (applied + 10 <= s.last))
    s.set_claims(rows, old_ended=applied[rows] + s.days(rows, 1, 10))


def _scrap_claims_on_exports(s: Stories, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Scrap claims whose old car is an export vehicle (complete story): (vehicles, claims)."""
    claims = s.take_claims(s.claim_count(count), s.claim_is("scrap"))
    rows = s.take(len(claims), s.complete())
    claims = claims[: len(rows)]
    v = s.vehicles
    s.set_claims(
        claims,
        old_vin=v["vin"].iloc[rows].to_numpy(),
        old_plate=v["plate"].iloc[rows].to_numpy(),
        old_model=v["model"].iloc[rows].to_numpy(),
    )
    return rows, claims


@plant("TRD-002")
def _scrapped_car_exported(s: Stories, count: int) -> Planted:
    """A car scrapped with a 报废更新 subsidy (and deregistered for scrap), then exported."""
    rows, _ = _scrap_claims_on_exports(s, count)
    return [(rows, "item1")]


@near_miss("TRD-002")
def _scrapped_car_stopped_at_customs(s: Stories, count: int) -> None:
    """A scrapped car declared for export but never cleared (customs stopped it)."""
    rows, _ = _scrap_claims_on_exports(s, count)
    s.set(rows, exported=np.nan, deregistered=np.nan, refund_applied=np.nan)
    s.set(rows, refund_decided=np.nan)


@plant("TRD-003")
def _replaced_car_never_sold(s: Stories, count: int) -> Planted:
    """A 置换更新 claim whose old car's sale was never registered."""
    rows = s.take_claims(s.claim_count(count), s.claim_is("replace"))
    s.set_claims(rows, old_ended=np.nan)
    return [(rows, "claim")]


@plant("TRD-003")
def _replaced_car_of_another_person(s: Stories, count: int) -> Planted:
    """The old car of a 置换更新 claim was registered to, and sold by, someone else."""
    rows = s.take_claims(s.claim_count(count), s.claim_is("replace"))
    buyers = s.claims["buyer"].to_numpy()
    someone_else = buyers[(rows + 1) % len(buyers)]
    s.override("old_register", rows, owner_id=by_story(rows, someone_else))
    return [(rows, "claim")]


@near_miss("TRD-003")
def _replaced_car_sold_after_the_claim(s: Stories, count: int) -> None:
    """The old car's sale registered days after the 置换更新 claim was applied for."""
    applied = s.claims["applied"].to_numpy()
    rows = s.take_claims(s.claim_count(count), s.claim_is("replace") & (applied + 10 <= s.last))
    s.set_claims(rows, old_ended=applied[rows] + s.days(rows, 1, 10))


def _claim_pairs(s: Stories, count: int, first: str, second: str) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of claims not bent yet, of the given types."""
    pairs = min(s.claim_count(count), int(s.claim_is(first).sum()), int(s.claim_is(second).sum()))
    one = s.take_claims(pairs, s.claim_is(first))
    other = s.take_claims(len(one), s.claim_is(second))
    return one[: len(other)], other


def _same_applicant_same_day(s: Stories, one: np.ndarray, other: np.ndarray) -> None:
    """The ``other`` claims are by the ``one`` claims' applicants, applied for the same day."""
    applied = s.claims["applied"].to_numpy()
    s.shift_claims(other, applied[one] - applied[other])
    s.set_claims(other, applicant=s.claims["applicant"].to_numpy()[one])


@plant("TRD-004")
def _old_car_claimed_twice(s: Stories, count: int) -> Planted:
    """Two 报废更新 claims cite the same old car."""
    one, other = _claim_pairs(s, count, "scrap", "scrap")
    s.override("claim", other, old_vin=by_story(other, s.claims["old_vin"].to_numpy()[one]))
    return [(one, "claim"), (other, "claim")]


@plant("TRD-004")
def _two_replace_claims_in_a_year(s: Stories, count: int) -> Planted:
    """One applicant with two 置换更新 claims applied for on the same day."""
    one, other = _claim_pairs(s, count, "replace", "replace")
    _same_applicant_same_day(s, one, other)
    return [(one, "claim"), (other, "claim")]


@near_miss("TRD-004")
def _replace_and_scrap_claim_in_a_year(s: Stories, count: int) -> None:
    """One applicant with a 置换更新 and a 报废更新 claim on the same day: not two replaces."""
    one, other = _claim_pairs(s, count, "replace", "scrap")
    _same_applicant_same_day(s, one, other)


def _new_car_is_export(s: Stories, count: int, waited: tuple[int, int]) -> np.ndarray:
    """Claims whose new car is an export vehicle transferred pending export ``waited`` days
    (low, high; the first exactly low) after the claim; returns the claims."""
    claims = s.take_claims(s.claim_count(count), np.ones(len(s.claims), bool))
    rows = s.take(len(claims), s.complete())
    claims = claims[: len(rows)]
    days = s.days(rows, *waited)
    days[:1] = waited[0]
    applied = s.step("pending")[rows] - days
    s.shift_claims(claims, applied - s.claims["applied"].to_numpy()[claims])
    v = s.vehicles
    s.set_claims(
        claims,
        new_vin=v["vin"].iloc[rows].to_numpy(),
        new_plate=v["plate"].iloc[rows].to_numpy(),
        new_model=v["model"].iloc[rows].to_numpy(),
    )
    return claims


@plant("TRD-005")
def _subsidised_new_car_exported(s: Stories, count: int) -> Planted:
    """The new car bought with a trade-in subsidy is transferred pending export within
    new_car_days after the claim (the same day for the first)."""
    limit = s.params.new_car_days
    claims = _new_car_is_export(s, count, (0, limit))
    return [(claims, "claim")]


@near_miss("TRD-005")
def _subsidised_new_car_exported_later(s: Stories, count: int) -> None:
    """The subsidised new car transferred pending export new_car_days + 1 (the first) or
    more days after the claim."""
    limit = s.params.new_car_days
    _new_car_is_export(s, count, (limit + 1, limit + 30))


@plant("SLA-001")
def _licence_issued_late(s: Stories, count: int) -> Planted:
    """A licence issued one to three working days past the limit after the application."""
    limit = s.params.licence_wd
    applied = s.step("applied")
    latest = s.working_day_after(applied, limit + 3)
    rows = s.take(count, s.complete() & (latest <= s.step("declared")))
    issued = s.working_day_after(applied[rows], limit + s.rng.integers(1, 4, len(rows)))
    s.set(rows, issued=issued, valid_to=issued + LICENCE_VALID_DAYS - 1)
    return [(rows, "licence")]


@plant("SLA-001")
def _licence_still_not_issued(s: Stories, count: int) -> Planted:
    """Applied for one to four working days more than the limit before the last date, and
    not issued."""
    limit = s.params.licence_wd
    rows = s.take(count, s.complete())
    applied = s.working_day_before_last(limit + s.rng.integers(1, 5, len(rows)))
    s.set(rows, pending=applied - s.days(rows, 0, 10), applied=applied, issued=np.nan)
    s.set(rows, valid_to=np.nan)
    _never_declared(s, rows)
    return [(rows, "licence")]


@near_miss("SLA-001")
def _licence_issued_on_the_last_working_day(s: Stories, count: int) -> None:
    """Issued exactly the limit of working days after the application, over a weekend or
    holiday (more calendar days than that)."""
    limit = s.params.licence_wd
    applied = s.step("applied")
    issued = s.working_day_after(applied, limit)
    rows = s.take(count, s.complete() & (issued - applied > limit) & (issued <= s.step("declared")))
    s.set(rows, issued=issued[rows], valid_to=issued[rows] + LICENCE_VALID_DAYS - 1)


def _refund_limit(s: Stories) -> np.ndarray:
    """Each vehicle's refund limit in working days, by the claimant's class."""
    first_classes = s.vehicles["refund_class"].isin(["1", "2"]).to_numpy()
    return np.where(first_classes, s.params.refund_wd_class12, s.params.refund_wd_other)


@plant("SLA-002")
def _refund_approved_late(s: Stories, count: int) -> Planted:
    """A refund approved one to three working days past its class's limit."""
    applied, limit = s.step("refund_applied"), _refund_limit(s)
    rows = s.take(count, s.refunded() & (s.working_day_after(applied, limit + 3) <= s.last))
    extra = s.rng.integers(1, 4, len(rows))
    s.set(rows, refund_decided=s.working_day_after(applied[rows], limit[rows] + extra))
    return [(rows, "refund1")]


@plant("SLA-002")
def _refund_left_pending(s: Stories, count: int) -> Planted:
    """A refund still pending one to three working days past its class's limit."""
    limit = _refund_limit(s)
    earliest = s.working_day_before_last(limit + 3)
    rows = s.take(count, s.refunded() & (s.step("exported") < earliest))
    applied = s.working_day_before_last(limit[rows] + s.rng.integers(1, 4, len(rows)))
    s.set(rows, refund_applied=applied, refund_decided=np.nan)
    return [(rows, "refund1")]


@near_miss("SLA-002")
def _refund_class3_on_its_last_working_day(s: Stories, count: int) -> None:
    """A class 3 refund approved exactly refund_wd_other working days after the application
    (late for classes 1 and 2, in time for 3)."""
    applied, limit = s.step("refund_applied"), s.params.refund_wd_other
    decided = s.working_day_after(applied, limit)
    rows = s.take(count, s.refunded() & (decided <= s.last))
    s.set(rows, refund_class="3", refund_decided=decided[rows])


@near_miss("SLA-002")
def _refund_rejected_late(s: Stories, count: int) -> None:
    """A refund rejected long after the limit: rejected lines are outside SLA-002."""
    applied = s.step("refund_applied")
    decided = s.working_day_after(applied, s.params.refund_wd_other + 5)
    rows = s.take(count, s.refunded() & (decided <= s.last))
    s.set(rows, refund_status="rejected", refund_decided=decided[rows])


@plant("VIN-001")
def _declared_vin_read_from_barcode(s: Stories, count: int) -> Planted:
    """Customs scanned the VIN from a barcode and sent its leading ``I``."""
    rows = s.take(count, s.complete())
    s.override("item1", rows, vin=lambda vins: "I" + vins.str.replace(" ", "", regex=False))
    return [(rows, "item1")]


@plant("VIN-001")
def _licence_vin_with_letter_o(s: Stories, count: int) -> Planted:
    """Commerce typed the letter O for a zero in the licence's VIN."""
    rows = s.take(count, s.complete() & s.vehicles["vin"].str.contains("0").to_numpy())
    s.override("licence", rows, vin=lambda vins: vins.str.replace("0", "O", n=1, regex=False))
    return [(rows, "licence")]


@near_miss("VIN-001")
def _licence_vin_with_dashes(s: Stories, count: int) -> None:
    """The licence's VIN in lower case with dashes: cleaning, not a substitution."""
    rows = s.take(count, s.complete())
    s.override(
        "licence",
        rows,
        vin=lambda vins: (
            vins.str.slice(0, 3).str.lower() + "-" + vins.str.slice(3, 9) + "-" + vins.str.slice(9)
        ),
    )


def _set_vins(s: Stories, rows: np.ndarray, vins: np.ndarray) -> None:
    """Give vehicles another VIN, on every record of theirs."""
    s.set(rows, vin=vins, vin_police=vins, vin_customs=vins)


#: Every record of a complete export story that carries its VIN (``transfer``: if resold).
VEHICLE_VIN_KINDS = ("register", "transfer", "pending", "licence", "item1", "dereg")


@plant("VIN-002")
def _vin_with_wrong_check_digit(s: Stories, count: int) -> Planted:
    """A car whose VIN carries a wrong check digit, the same on every record of it."""
    rows = s.take(count, s.complete())
    codes = _ascii(s.vehicles["vin"].iloc[rows].to_numpy(str), 17)
    right = _CHECK_INDEX[codes[:, 8]]
    codes[:, 8] = _CHECK_CODES[(right + s.rng.integers(1, 11, len(rows))) % 11]
    _set_vins(s, rows, _text(codes))
    resold = ~np.isnan(s.step("transferred")[rows])
    return [(rows[resold] if kind == "transfer" else rows, kind) for kind in VEHICLE_VIN_KINDS]


@near_miss("VIN-002")
def _imported_vin_with_wrong_check_digit(s: Stories, count: int) -> None:
    """A European-made car (WMI starting W: the check digit is advisory) whose check digit
    does not fit."""
    rows = s.take(count, s.complete())
    codes = _ascii(s.vehicles["vin"].iloc[rows].to_numpy(str), 17)
    codes[:, 0] = ord("W")
    right = _CHECK_INDEX[vin_check_codes(codes)]
    codes[:, 8] = _CHECK_CODES[(right + s.rng.integers(1, 11, len(rows))) % 11]
    _set_vins(s, rows, _text(codes))


@near_miss("VIN-003")
def _two_cars_one_character_apart(s: Stories, count: int) -> None:
    """Two cars whose valid VINs differ in one character, each on every feed: neither VIN
    is alone on a feed, so there is no candidate to propose."""
    pairs = s.take(2 * count, s.complete())
    half = len(pairs) // 2
    one, other = pairs[:half], pairs[half : 2 * half]
    codes = _ascii(s.vehicles["vin"].iloc[one].to_numpy(str), 17)
    # A character of the same ISO 3779 value keeps the check digit right.
    places = np.array([3, 4, 5, 6, 7, 10])
    has_sibling = _SIBLINGS[codes[:, places]] != codes[:, places]
    place = places[np.argmax(has_sibling, axis=1)]
    rows = np.arange(len(one))
    codes[rows, place] = _SIBLINGS[codes[rows, place]]
    vins = _text(codes)
    fits = has_sibling.any(axis=1) & ~s.holds(vins) & ~pd.Series(vins).duplicated().to_numpy()
    _set_vins(s, other[fits], vins[fits])


# --------------------------------------------------------------------------------------
# Typed-over VINs: a clerk's typo in one feed's copy of a VIN. The VIN-003 plants and the
# noise of mistyped VINs share it; each typo also causes the findings of the record that
# no longer meets its counterparts (EXP-001, LIC-001, ...), which are expected too.
# --------------------------------------------------------------------------------------

#: How a VIN is typed over: one character substituted, two adjacent ones swapped, or a
#: letter typed for a digit that the hub reads back (I for 1, O or Q for 0: VIN-001 only).
TYPOS = ("substitution", "transposition", "misread")
TYPO_SHARES = (40, 40, 20)
#: The records of an export vehicle whose VIN the noise types over, and the records of
#: the same vehicle on other feeds that agree with each (VIN-003's candidates): the
#: register and resale events name a person as owner, which contradicts an exporter, so
#: a typo on the register event has no candidate to propose.
VEHICLE_TYPO_CANDIDATES: dict[str, tuple[str, ...]] = {
    "licence": ("pending", "dereg", "item1"),
    "item1": ("licence", "pending", "dereg"),
    "pending": ("licence", "item1"),
    "dereg": ("licence", "item1"),
    "register": (),
}
_MANDATORY_CHECK = np.frombuffer(b"L12345", np.uint8)
#: What the ground truth says of each VIN typed over: the story (vehicle or claim row) and
#: the kind of its record typed over (``claim old_vin`` / ``claim new_vin`` for a claim's
#: VINs), the right VIN, what was sent and how the hub reads it, how it was typed, and the
#: case (plant or noise) that typed it.
TYPO_COLUMNS = ["population", "story", "kind", "vin", "sent", "read", "how", "case"]


def _type_over_codes(rng: np.random.Generator, codes: np.ndarray, how: np.ndarray) -> np.ndarray:
    """A copy of the VIN code matrix with each row typed over as ``how`` says (a ``misread``
    row must hold a 0 or a 1)."""
    typed = codes.copy()
    rows = np.arange(len(codes))
    size = len(VIN_ALPHABET)
    place = rng.integers(0, 17, len(codes))
    other = _VIN_CODES[(_VIN_INDEX[codes[rows, place]] + rng.integers(1, size, len(codes))) % size]
    sub = how == "substitution"
    typed[rows[sub], place[sub]] = other[sub]
    differs = codes[:, :-1] != codes[:, 1:]
    first = np.argmax(np.where(differs, rng.random(differs.shape), -1.0), axis=1)
    swap, at = rows[how == "transposition"], first[how == "transposition"]
    typed[swap, at], typed[swap, at + 1] = codes[swap, at + 1], codes[swap, at]
    digit = (codes == ord("0")) | (codes == ord("1"))
    which = np.argmax(np.where(digit, rng.random(digit.shape), -1.0), axis=1)
    misread, at = rows[how == "misread"], which[how == "misread"]
    o_or_q = np.where(rng.random(len(misread)) < 0.5, ord("O"), ord("Q"))
    typed[misread, at] = np.where(codes[misread, at] == ord("0"), o_or_q, ord("I"))
    return typed


def _typed_over(
    s: Stories, vins: pd.Series, how: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each VIN typed over: (what is sent, what the hub reads it as, how it was typed; a
    misread of a VIN without 0 or 1 becomes a substitution). A typo never reads as a VIN
    the world already holds."""
    codes = _ascii(vins.to_numpy(str), 17)
    has_digit = ((codes == ord("0")) | (codes == ord("1"))).any(axis=1)
    how = np.where((how == "misread") & ~has_digit, "substitution", how)
    typed = _type_over_codes(s.rng, codes, how)
    for _ in range(DRAWS):
        read = np.where((how == "misread")[:, None], codes, typed)
        text = _text(read)
        clash = (how != "misread") & (s.holds(text) | pd.Series(text).duplicated().to_numpy())
        if not clash.any():
            return _text(typed), text, how
        typed[clash] = _type_over_codes(s.rng, codes[clash], how[clash])
    raise ValueError("cannot type VINs over without landing on VINs the world holds")


def _fails_check(vins: np.ndarray) -> np.ndarray:
    """VINs whose mandatory check digit (ICD §2) does not fit."""
    codes = _ascii(vins, 17)
    mandatory = np.isin(codes[:, 0], _MANDATORY_CHECK)
    return mandatory & (vin_check_codes(codes) != codes[:, 8])


def _type_over_vehicles(s: Stories, rows: np.ndarray, kind: str, how: np.ndarray) -> Planted:
    """Type over the VIN on the ``kind`` record of complete export stories no plant bent;
    return every finding that causes."""
    sent, read, how = _typed_over(s, s.vehicles["vin"].take(rows), how)
    s.override(kind, rows, vin=by_story(rows, sent), _vin=by_story(rows, read))
    if kind == "item1":  # a refund line's VIN is its item's
        s.override("refund1", rows, _vin=by_story(rows, read))
    s.typos.append(
        pd.DataFrame(
            {
                "population": "vehicle",
                "story": rows,
                "kind": kind,
                "vin": s.vehicles["vin"].iloc[rows].to_numpy(str),
                "sent": sent,
                "read": read,
                "how": how,
            }
        )
    )
    misread = how == "misread"
    typo = rows[~misread]
    found: Planted = [(rows[misread], kind, "VIN-001"), (rows[_fails_check(read)], kind, "VIN-002")]
    if VEHICLE_TYPO_CANDIDATES[kind]:
        found.append((typo, kind, "VIN-003"))
        s.candidates += [
            (typo, kind, candidate, read[~misread]) for candidate in VEHICLE_TYPO_CANDIDATES[kind]
        ]
    overdue = typo[s.step("exported")[typo] + s.params.dereg_window_days < s.last]
    stale = typo[s.step("pending")[typo] + s.params.pending_export_days < s.last]
    if kind in ("licence", "item1"):  # the item's licence row names another VIN
        found.append((typo, "item1", "LIC-001"))
    if kind in ("dereg", "item1"):  # the deregistration's VIN has no cleared item
        found += [(typo, "dereg", "EXP-001"), (overdue, "item1", "EXP-003")]
    if kind in ("pending", "item1"):  # the pending export's VIN is on no item
        found.append((stale, "pending", "POL-001"))
    return found


def _type_over_claims(s: Stories, rows: np.ndarray, column: str, how: np.ndarray) -> Planted:
    """Type over the old or new VIN (``column``) of trade-in claims no plant bent; return
    every finding that causes. The car's own VIN is then on police records only, so its
    records get VIN-003 findings too, with the claim as candidate."""
    sent, read, how = _typed_over(s, s.claims[column].take(rows), how)
    s.override("claim", rows, **{column: by_story(rows, sent)})
    if column == "old_vin":
        s.override("claim", rows, _vin=by_story(rows, read))
    s.typos.append(
        pd.DataFrame(
            {
                "population": "claim",
                "story": rows,
                "kind": f"claim {column}",
                "vin": s.claims[column].iloc[rows].to_numpy(str),
                "sent": sent,
                "read": read,
                "how": how,
            }
        )
    )
    misread = how == "misread"
    typo = rows[~misread]
    found: Planted = [
        (rows[misread], "claim", "VIN-001"),
        (rows[_fails_check(read)], "claim", "VIN-002"),
        (typo, "claim", "VIN-003"),
    ]
    right, typed = s.claims[column], pd.Series(read, index=rows)
    if column == "new_vin":
        events = [(typo, "new_register")]
    else:
        scrap = s.claim_is("scrap")[typo]
        events = [
            (typo, "old_register"),
            (typo[scrap], "old_scrap"),
            (typo[~scrap], "old_transfer"),
        ]
        found += [(typo[scrap], "claim", "TRD-001"), (typo[~scrap], "claim", "TRD-003")]
    for event_rows, event in events:
        found.append((event_rows, event, "VIN-003"))
        s.candidates += [
            (event_rows, "claim", event, typed.loc[event_rows].to_numpy()),
            (event_rows, event, "claim", right.iloc[event_rows].to_numpy()),
        ]
    return found


@plant("VIN-003")
def _deregistration_vin_transposed(s: Stories, count: int) -> Planted:
    """The police typed the VIN of the export deregistration with two characters swapped."""
    rows = s.take(count, s.complete())
    return _type_over_vehicles(s, rows, "dereg", np.full(len(rows), "transposition"))


@plant("VIN-003")
def _licence_vin_mistyped(s: Stories, count: int) -> Planted:
    """Commerce typed one character of the VIN on the licence wrong."""
    rows = s.take(count, s.complete())
    return _type_over_vehicles(s, rows, "licence", np.full(len(rows), "substitution"))


@story_noise("mistyped VINs")
def _mistyped_vins(s: Stories, fraction: float) -> Planted:
    """About ``fraction`` of the export vehicles (complete stories no plant bent) and of the
    trade-in claims have their VIN typed over in one feed's copy: a character substituted,
    two adjacent ones swapped, or I/O/Q typed for 1/0."""
    rows = s.take(round(len(s.vehicles) * fraction), s.complete())
    kinds = list(VEHICLE_TYPO_CANDIDATES)
    kind = s.rng.integers(0, len(kinds), len(rows))
    how = s.rng.choice(TYPOS, len(rows), p=_shares(TYPO_SHARES))
    found = [
        _type_over_vehicles(s, rows[kind == i], name, how[kind == i])
        for i, name in enumerate(kinds)
    ]
    claims = s.take_claims(round(len(s.claims) * fraction), np.ones(len(s.claims), bool))
    new = s.rng.random(len(claims)) < 0.5
    how = s.rng.choice(TYPOS, len(claims), p=_shares(TYPO_SHARES))
    found += [
        _type_over_claims(s, claims[~new], "old_vin", how[~new]),
        _type_over_claims(s, claims[new], "new_vin", how[new]),
    ]
    return [entry for planted in found for entry in planted]


def _expected_frame(rule_id: str, found: Planted) -> pd.DataFrame:
    """The findings a case causes, by story: ``rule_id``'s unless an entry names another."""
    parts = [pd.DataFrame({"rule_id": [], "story": np.array([], np.int64), "kind": []})]
    for entry in found:
        rows, kind = entry[0], entry[1]
        rule = entry[2] if len(entry) == 3 else rule_id
        parts.append(pd.DataFrame({"rule_id": rule, "story": rows, "kind": kind}))
    return pd.concat(parts, ignore_index=True)


def _plant_all(s: Stories, count: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every plant and near miss, each on ``count`` stories (none when 0); return the
    expected findings by story and the planted stories."""
    expected = [pd.DataFrame({"rule_id": [], "story": np.array([], np.int64), "kind": []})]
    planted = [pd.DataFrame({"case": [], "population": [], "story": np.array([], np.int64)})]
    if count == 0:
        return expected[0], planted[0]
    cases: list[tuple[str, str, Callable[[Stories, int], Planted | None], int]] = [
        (rule_id, rule_id, variant, len(variants))
        for rule_id, variants in PLANTS.items()
        for variant in variants
    ] + [
        (rule_id, f"near {rule_id}", variant, len(variants))
        for rule_id, variants in NEAR_MISSES.items()
        for variant in variants
    ]
    for rule_id, case, variant, variants in cases:
        vehicles_before, claims_before = s.used.copy(), s.used_claims.copy()
        typos_before = len(s.typos)
        found = variant(s, max(1, -(-count // variants))) or []
        expected.append(_expected_frame(rule_id, found))
        s.label_typos(typos_before, case)
        for population, now, before in (
            ("vehicle", s.used, vehicles_before),
            ("claim", s.used_claims, claims_before),
        ):
            rows = np.flatnonzero(now & ~before)
            planted.append(pd.DataFrame({"case": case, "population": population, "story": rows}))
    return pd.concat(expected, ignore_index=True), pd.concat(planted, ignore_index=True)


# --------------------------------------------------------------------------------------
# Records: the stories as rows of the feeds, each with the day it is first known
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A record's columns take the ``before`` values until the day in column ``on``."""

    on: str
    before: dict[str, str | None]


#: How records of a feed change after they are first sent.
CHANGES: dict[tuple[str, str], tuple[Change, ...]] = {
    ("commerce", "licences"): (Change("_issued_on", {"issued_at": None, "valid_to": None}),),
    ("customs", "declarations"): (
        Change("_cleared_on", {"status": "declared", "exported_at": None}),
        Change("_cancelled_on", {"record_status": "active"}),
    ),
    ("tax", "refunds"): (Change("_decided_on", {"status": "pending", "approved_at": None}),),
}


def _batches(keys: Sequence[Any], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Number the batches of rows sharing the same ``keys`` (numeric arrays, NaN a value of
    its own), at most ``size`` rows each, in key order; and each row's place in its batch."""
    columns = [np.nan_to_num(np.asarray(k, dtype=np.float64), nan=-1.0) for k in keys]
    order = np.lexsort(columns[::-1])
    ranked = [c[order] for c in columns]
    starts = np.ones(len(order), bool)
    if len(order) > 1:
        starts[1:] = np.any([c[1:] != c[:-1] for c in ranked], axis=0)
    group = np.cumsum(starts) - 1
    place = np.arange(len(order)) - np.flatnonzero(starts)[group]
    batch_of_ranked = np.cumsum(starts | (place % size == 0)) - 1
    batch, where = np.empty(len(order), np.int64), np.empty(len(order), np.int64)
    batch[order], where[order] = batch_of_ranked, place % size
    return batch, where


def _subset(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The given rows, with a fresh index (the frame itself when that is every row)."""
    if len(rows) == len(frame):
        return frame
    return frame.iloc[rows].reset_index(drop=True)


def _lookup(records: pd.DataFrame, kind: str, stories: Any, column: str) -> pd.Series:
    """``column`` of the ``kind`` record of each story (null where it has none)."""
    mine = records.loc[records["_kind"].to_numpy() == kind, ["_story", column]]
    at = pd.Index(mine["_story"].to_numpy()).get_indexer(np.asarray(stories))
    if len(mine) == 0:
        return pd.Series(None, index=range(len(at)), dtype="str")
    values = mine[column].reset_index(drop=True).take(np.maximum(at, 0)).reset_index(drop=True)
    return values.where(at >= 0)


def _mistyped(numbers: pd.Series) -> pd.Series:
    """The last two characters swapped (the last one changed when both are the same digit)."""
    a, b = numbers.str.slice(-2, -1), numbers.str.slice(-1)
    bumped = ((b.astype(np.int64) + 1) % 10).astype("str")
    same = a == b
    return numbers.str.slice(0, -2) + b.where(~same, a) + a.where(~same, bumped)


def _model_columns(models: Any, *names: str) -> dict[str, pd.Series]:
    """Per row, the named fields (brand, model, hs_code, goods) of its :data:`MODELS` entry."""
    return {name: _choose([getattr(m, name) for m in MODELS], models) for name in names}


def _licence_records(s: Stories) -> pd.DataFrame:
    """One licence row per vehicle; a licence covers up to 20 vehicles of one exporter,
    applied for and issued together, per model (so per HS code)."""
    v = s.vehicles
    records = pd.DataFrame(
        {
            "uscc": _choose(s.exporters["uscc"], v["exporter"]),
            "vin": v["vin"],
            **_model_columns(v["model"], "brand", "model", "hs_code"),
            "destination_country": v["country"],
            "port_code": v["port"],
            "registration_date": _iso(v["registered"]),
            "pending_export_date": _iso(v["pending"]),
            "applied_at": _iso(v["applied"]),
            "issued_at": _iso(v["issued"]),
            "valid_to": _iso(v["valid_to"]),
            "record_status": "active",
            "_story": np.arange(len(v)),
            "_kind": "licence",
            "_vin": v["vin"],
            "_known": v["applied"].to_numpy(),
            "_issued_on": v["issued"].to_numpy(),
        }
    )
    batch, _ = _batches([v["applied"], v["exporter"], v["issued"], v["model"]], LICENCE_BATCH)
    records["licence_no"] = "L" + records["applied_at"].str.slice(0, 4) + _padded(batch, 8)
    return records


def _item_records(s: Stories, licences: pd.DataFrame) -> pd.DataFrame:
    """Customs items: item 1 of every declared vehicle, item 2 where there is a second;
    a declaration groups up to 20 items of one exporter, day and port."""
    v = s.vehicles
    parts = []
    for kind, declared, exported, withdrawn in (
        ("item1", "declared", "exported", "withdrawn"),
        ("item2", "declared2", "exported2", None),
    ):
        rows = np.flatnonzero(~np.isnan(v[declared].to_numpy()))
        cars = _subset(v, rows)
        cited = licences["licence_no"].take(rows).reset_index(drop=True)
        cancelled_on = cars[withdrawn].to_numpy() if withdrawn else np.full(len(rows), np.nan)
        models = _model_columns(cars["model"], "brand", "hs_code", "goods")
        parts.append(
            pd.DataFrame(
                {
                    "vin": cars["vin_customs"],
                    "uscc": _choose(s.exporters["uscc"], cars["item_exporter"]),
                    "licence_no": cited,
                    "hs_code": models["hs_code"],
                    "goods_name": "旧" + models["brand"] + models["goods"],
                    "declared_at": _iso(cars[declared]),
                    "exported_at": _iso(cars[exported]),
                    "status": _choose(["declared", "cleared"], cars[exported].notna()),
                    "port_code": cars["port"],
                    "destination_country": cars["country"],
                    "fob_usd": _money(cars["fob_cents"]),
                    "record_status": _choose(["active", "cancelled"], ~np.isnan(cancelled_on)),
                    "_story": rows,
                    "_kind": kind,
                    "_vin": cars["vin"],
                    "_known": cars[declared].to_numpy(),
                    "_cleared_on": cars[exported].to_numpy(),
                    "_cancelled_on": cancelled_on,
                    "_exporter": cars["item_exporter"].to_numpy(),
                    "_region": cars["region"].to_numpy(),
                }
            )
        )
    items = pd.concat(parts, ignore_index=True)
    batch, place = _batches(
        [items["_known"], items["_exporter"], items["_region"]], DECLARATION_BATCH
    )
    year = items["declared_at"].str.slice(0, 4)
    items["decl_no"] = items["port_code"] + year + "0" + _padded(batch, 9)
    items["item_no"] = _padded(place + 1, 1)
    return items


def _events(
    kind: str,
    stories: np.ndarray,
    cars: pd.DataFrame,
    event_type: str,
    day: Any,
    owner: Any,
    **extra: Any,
) -> pd.DataFrame:
    """Police events of one kind; ``cars`` holds the vehicles' ``vin``, ``raw_vin``,
    ``plate``, ``registered`` and ``model``, one row per event."""
    return pd.DataFrame(
        {
            "vin": cars["raw_vin"],
            "plate_no": cars["plate"],
            "event_type": event_type,
            "event_date": _iso(day),
            "owner_id": owner,
            "dereg_reason": extra.get("reason"),
            "decl_no": extra.get("decl_no"),
            "registration_date": _iso(cars["registered"]),
            **_model_columns(cars["model"], "brand", "model"),
            "record_status": "active",
            "_story": stories,
            "_kind": kind,
            "_vin": cars["vin"],
            "_known": np.asarray(day, dtype=np.float64),
        }
    )


def _vehicle_events(s: Stories, items: pd.DataFrame) -> list[pd.DataFrame]:
    """Each export vehicle's register, resale, pending-export and deregistration events."""
    v = s.vehicles.assign(raw_vin=s.vehicles["vin_police"])
    exporter = _choose(s.exporters["uscc"], v["exporter"])
    resold = np.flatnonzero(v["transferred"].notna().to_numpy())
    gone = np.flatnonzero(v["deregistered"].notna().to_numpy())
    leaving = _subset(v, gone)
    cites = leaving["dereg_cites"].to_numpy()
    cited = _lookup(items, "item1", gone, "decl_no").where(
        cites == 1, _lookup(items, "item2", gone, "decl_no")
    )
    everyone = np.arange(len(v))
    return [
        _events("register", everyone, v, "register", v["registered"], v["owner"]),
        _events(
            "transfer",
            resold,
            _subset(v, resold),
            "transfer",
            v["transferred"].to_numpy()[resold],
            v["buyer"].take(resold).reset_index(drop=True),
        ),
        _events("pending", everyone, v, "transfer_pending_export", v["pending"], exporter),
        _events(
            "dereg",
            gone,
            leaving,
            "deregister",
            leaving["deregistered"],
            exporter.take(gone).reset_index(drop=True),
            reason="export",
            decl_no=cited,
        ),
    ]


def _claim_events(s: Stories) -> list[pd.DataFrame]:
    """Each trade-in claim's old vehicle registered, then scrapped or sold; and its new one."""
    c = s.claims
    old = pd.DataFrame(
        {
            "vin": c["old_vin"],
            "raw_vin": c["old_vin"],
            "plate": c["old_plate"],
            "registered": c["old_registered"],
            "model": c["old_model"],
        }
    )
    new = pd.DataFrame(
        {
            "vin": c["new_vin"],
            "raw_vin": c["new_vin"],
            "plate": c["new_plate"],
            "registered": c["new_registered"],
            "model": c["new_model"],
        }
    )
    ended = c["old_ended"].notna().to_numpy()
    scrap = np.flatnonzero((c["claim_type"] == "scrap").to_numpy() & ended)
    sold = np.flatnonzero((c["claim_type"] != "scrap").to_numpy() & ended)
    claims = np.arange(len(c))
    return [
        _events("old_register", claims, old, "register", c["old_registered"], c["applicant"]),
        _events(
            "old_scrap",
            scrap,
            _subset(old, scrap),
            "deregister",
            c["old_ended"].to_numpy()[scrap],
            c["applicant"].take(scrap).reset_index(drop=True),
            reason=c["old_reason"].take(scrap).reset_index(drop=True),
        ),
        _events(
            "old_transfer",
            sold,
            _subset(old, sold),
            "transfer",
            c["old_ended"].to_numpy()[sold],
            c["buyer"].take(sold).reset_index(drop=True),
        ),
        _events("new_register", claims, new, "register", c["new_registered"], c["applicant"]),
    ]


def _event_records(s: Stories, items: pd.DataFrame) -> pd.DataFrame:
    """Police events, numbered per day in the order they happened."""
    events = pd.concat([*_vehicle_events(s, items), *_claim_events(s)], ignore_index=True)
    day = events["_known"].to_numpy()
    order = np.lexsort((events["_story"].to_numpy(), day))
    starts = np.r_[True, day[order][1:] != day[order][:-1]]
    number = np.empty(len(order), np.int64)
    number[order] = np.arange(len(order)) - np.flatnonzero(starts)[np.cumsum(starts) - 1] + 1
    events["event_id"] = "JG" + _compact(day) + _padded(number, 6)
    return events


def _refund_records(s: Stories, items: pd.DataFrame) -> pd.DataFrame:
    """Refund lines: line 1 on the item the story names, line 2 (if any) on the same item."""
    v = s.vehicles
    amount = (v["fob_cents"].to_numpy() * CNY_PER_USD * REFUND_RATE).astype(np.int64)
    parts = []
    for kind, applied, decided, status in (
        ("refund1", "refund_applied", "refund_decided", "refund_status"),
        ("refund2", "refund2_applied", "refund2_decided", "refund2_status"),
    ):
        rows = np.flatnonzero(v[applied].notna().to_numpy())
        cars = _subset(v, rows)
        cites = cars["refund_cites"].to_numpy()
        decl_no, item_no = (
            _lookup(items, "item1", rows, column).where(
                cites != 2, _lookup(items, "item2", rows, column)
            )
            for column in ("decl_no", "item_no")
        )
        # refund_cites 0: an item number the declaration does not have (at most 20 items).
        cited_item = item_no.astype(np.int64).to_numpy() + np.where(cites == 0, 500, 0)
        approved = (cars[status] == "approved").to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "uscc": _choose(s.exporters["uscc"], cars["refund_exporter"]),
                    "enterprise_class": cars["refund_class"],
                    "decl_ref": decl_no + _padded(cited_item, 3),
                    "amount_cny": _money(amount[rows]),
                    "applied_at": _iso(cars[applied]),
                    "approved_at": _iso(np.where(approved, cars[decided], np.nan)),
                    "status": cars[status],
                    "_story": rows,
                    "_kind": kind,
                    "_vin": cars["vin"].where(cites != 0),
                    "_known": cars[applied].to_numpy(),
                    "_decided_on": cars[decided].to_numpy(),
                    "_exporter": cars["refund_exporter"].to_numpy(),
                }
            )
        )
    refunds = pd.concat(parts, ignore_index=True)
    batch, _ = _batches([refunds["_known"], refunds["_exporter"]], len(refunds) + 1)
    first_of_day = pd.Series(batch).groupby(refunds["_known"].to_numpy()).transform("min")
    number = batch - first_of_day.to_numpy() + 1
    refunds["refund_no"] = "R" + _compact(refunds["_known"]) + _padded(number, 5)
    return refunds


def _filing_records(s: Stories) -> pd.DataFrame:
    """Yearly filings from each exporter's first one; the lapsed exporter's ended years ago."""
    ex = s.exporters
    lapsed = (ex["standing"] == "lapsed").to_numpy()
    years = np.where(lapsed, 1, 6)
    owner = np.repeat(np.arange(len(ex)), years)
    year = np.arange(len(owner)) - np.repeat(np.cumsum(years) - years, years)
    start = np.where(lapsed, s.last - 9 * 365.0, ex["filed_from"].to_numpy())[owner]
    valid_from = start + 365 * year
    revoked = (ex["standing"] == "revoked").to_numpy()[owner]
    records = pd.DataFrame(
        {
            "uscc": ex["uscc"].take(owner).reset_index(drop=True),
            "name": ex["name"].take(owner).reset_index(drop=True),
            "region_code": ex["region_code"].take(owner).reset_index(drop=True),
            "valid_from": _iso(valid_from),
            "valid_to": _iso(valid_from + 364),
            "status": _choose(["active", "revoked"], revoked),
            "_story": owner,
            "_kind": "filing",
            "_vin": None,
            "_known": valid_from - 10,
        }
    )
    year_from = records["valid_from"].str.slice(0, 4)
    records["filing_no"] = "BA" + year_from + _padded(np.arange(len(records)) + 1, 6)
    return records


def _claim_records(s: Stories) -> pd.DataFrame:
    c = s.claims
    scrap = (c["claim_type"] == "scrap").to_numpy()
    return pd.DataFrame(
        {
            "claim_no": "YJHX" + _iso(c["applied"]).str.slice(0, 4) + _padded(c.index + 1, 7),
            "claim_type": c["claim_type"],
            "applicant_id": c["applicant"],
            "old_vin": c["old_vin"],
            "new_vin": c["new_vin"],
            "amount_cny": _choose(["15000.00", "20000.00"], scrap),
            "applied_at": _iso(c["applied"]),
            "record_status": "active",
            "_story": c.index.to_numpy(),
            "_kind": "claim",
            "_vin": c["old_vin"],
            "_known": c["applied"].to_numpy(),
        }
    )


def build_records(s: Stories) -> dict[tuple[str, str], pd.DataFrame]:
    """Every feed's records, in the contract's columns plus ``_`` helpers, for all time."""
    licences = _licence_records(s)
    items = _item_records(s, licences)
    records = {
        ("commerce", "enterprises"): _filing_records(s),
        ("commerce", "licences"): licences,
        ("commerce", "tradein_claims"): _claim_records(s),
        ("customs", "declarations"): items,
        ("police", "events"): _event_records(s, items),
        ("tax", "refunds"): _refund_records(s, items),
    }
    missing = set(feeds()) - set(records)
    if missing:
        raise ValueError(f"the generator has no records for feeds {sorted(missing)}")
    places: dict[str, np.ndarray] = {}
    for kind, rows, columns in s.overrides:
        frame = records[KIND_FEEDS[kind]]
        if kind not in places:  # per story, the position of its ``kind`` record (or -1)
            of_kind = np.flatnonzero((frame["_kind"] == kind).to_numpy())
            stories = frame["_story"].to_numpy()[of_kind].astype(np.int64)
            places[kind] = np.full(stories.max(initial=-1) + 1, -1, np.int64)
            places[kind][stories] = of_kind
        rows = np.asarray(rows, np.int64)
        place = np.full(len(rows), -1, np.int64)
        known = rows < len(places[kind])
        place[known] = places[kind][rows[known]]
        rows, place = rows[place >= 0], place[place >= 0]
        for column, value in columns.items():
            at = list(frame.columns).index(column)
            if isinstance(value, pd.Series):
                value = value.reindex(rows).to_numpy()
            elif callable(value):
                value = value(frame[column].iloc[place].reset_index(drop=True)).to_numpy()
            frame.iloc[place, at] = value
    return records


def contract_columns(spec: FeedSpec) -> list[str]:
    """The feed's columns, in contract order."""
    return [c.name for c in spec.columns]


def record_keys(spec: FeedSpec, frame: pd.DataFrame) -> pd.Series:
    """ICD §4 ``record_key``: the key columns joined by ``/`` (values are clean already)."""
    keys = frame[spec.key[0]].astype("str")
    for name in spec.key[1:]:
        keys = keys + "/" + frame[name].astype("str")
    return keys


# --------------------------------------------------------------------------------------
# Emission: what each business date's files carry
# --------------------------------------------------------------------------------------


def snapshot(records: pd.DataFrame, changes: Sequence[Change], day: int) -> pd.DataFrame:
    """The records known on ``day``, as they stand that day."""
    known = records[records["_known"].to_numpy() <= day]
    for change in changes:
        after = known[change.on].to_numpy() <= day
        for column, value in change.before.items():
            known = known.assign(**{column: known[column].where(after, value)})
    return known


def emit(spec: FeedSpec, records: pd.DataFrame, days: Sequence[int]) -> dict[int, pd.DataFrame]:
    """Per business date, the records new or changed since the previous one, versioned,
    in the order the records were built (by story)."""
    changes = CHANGES.get((spec.agency, spec.feed), ())
    content = [c for c in contract_columns(spec) if c != "record_version"]
    digests = np.zeros(len(records), np.uint64)
    versions = np.zeros(len(records), np.int64)
    sent: dict[int, pd.DataFrame] = {}
    for day in days:
        rows = snapshot(records, changes, day)
        position = rows.index.to_numpy()
        if len(days) == 1:
            changed = np.ones(len(rows), bool)
        else:
            digest = pd.util.hash_pandas_object(rows[content], index=False).to_numpy()
            changed = (versions[position] == 0) | (digests[position] != digest)
            digests[position] = digest
        versions[position[changed]] += 1
        out = rows[changed]
        out["record_version"] = _padded(versions[position[changed]], 1).to_numpy()
        sent[day] = out.reset_index(drop=True)
    return sent


# --------------------------------------------------------------------------------------
# Files: what lands in the outboxes, and the noise planted in it
# --------------------------------------------------------------------------------------


@dataclass
class PlannedFile:
    """One agency file as it will be written, and how it is broken if it is."""

    agency: str
    feed: str
    day: int  # the business date in its name
    seq: int
    frame: pd.DataFrame  # rows in file order; ``_reject`` names the column a bad row fails
    columns: list[str]  # the header, in file order
    encoding: str = "utf-8"  # how the bytes are encoded
    bom: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)  # entries overriding the true ones
    manifest_day: int | None = None  # the day its manifest arrives (None: with the data)
    part: bool = False  # left as ``<name>.part``: the upload never finished
    rejected_because: str | None = None  # why the hub must reject the whole file
    copy_of: PlannedFile | None = None  # the same bytes as that file, under this name

    @property
    def name(self) -> str:
        return feed_file_name(self.agency, self.feed, calendar_day(self.day), self.seq)

    @property
    def manifest_on(self) -> int:
        return self.day if self.manifest_day is None else self.manifest_day

    def content(self) -> PlannedFile:
        """The file whose rows, header and encoding this one's bytes are."""
        return self.copy_of.content() if self.copy_of is not None else self

    def rows(self) -> pd.DataFrame:
        """What is written: the header's columns, in file order."""
        source = self.content()
        return source.frame.reindex(columns=source.columns)

    def insert(self, rows: pd.DataFrame, rng: np.random.Generator, after: int = -1) -> None:
        """Put ``rows`` at random places in the file, each after position ``after``."""
        count = len(self.frame)
        places = rng.integers(after + 1, count + 1, len(rows)) - 0.5
        order = np.argsort(np.concatenate([np.arange(count), places]), kind="stable")
        joined = pd.concat([self.frame, rows], ignore_index=True)
        self.frame = joined.iloc[order].reset_index(drop=True)


@dataclass
class FilePlan:
    """Every file of every business date, in the order they are planned."""

    files: list[PlannedFile] = field(default_factory=list)
    skipped: set[tuple[str, str, int, int]] = field(default_factory=set)

    def find(self, agency: str, feed_name: str, day: int, seq: int = 1) -> PlannedFile | None:
        return next(
            (
                f
                for f in self.files
                if (f.agency, f.feed, f.day, f.seq) == (agency, feed_name, day, seq)
            ),
            None,
        )

    def next_seq(self, agency: str, feed_name: str, day: int) -> int:
        used = [f.seq for f in self.files if (f.agency, f.feed, f.day) == (agency, feed_name, day)]
        used += [s for a, f, d, s in self.skipped if (a, f, d) == (agency, feed_name, day)]
        return max(used, default=0) + 1

    def skip_seq(self, agency: str, feed_name: str, day: int) -> int:
        seq = self.next_seq(agency, feed_name, day)
        self.skipped.add((agency, feed_name, day, seq))
        return seq

    def new_file(
        self, agency: str, feed_name: str, day: int, frame: pd.DataFrame, **options: Any
    ) -> PlannedFile:
        """A file with the next sequence number of its feed and date."""
        planned = PlannedFile(
            agency,
            feed_name,
            day,
            self.next_seq(agency, feed_name, day),
            frame.reset_index(drop=True),
            contract_columns(feed(agency, feed_name)),
            **options,
        )
        self.files.append(planned)
        return planned


def plan_files(records: dict[tuple[str, str], pd.DataFrame], days: Sequence[int]) -> FilePlan:
    """One file per feed and business date that has something to send. Takes the records
    out of ``records`` feed by feed, so that a big world is not held twice."""
    plan = FilePlan()
    for agency, feed_name in list(records):
        frame = records.pop((agency, feed_name))
        for day, rows in emit(feed(agency, feed_name), frame, days).items():
            if len(rows):
                plan.new_file(agency, feed_name, day, rows.assign(_reject=None, _picked=False))
    return plan


@dataclass
class Noise:
    """What the noise functions work on, and what they record for the ground truth."""

    rng: np.random.Generator
    plan: FilePlan
    dates: tuple[int, ...]
    duplicates: list[dict[str, str]] = field(default_factory=list)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    _fresh: int = 0

    @property
    def first(self) -> int:
        return self.dates[0]

    @property
    def last(self) -> int:
        return self.dates[-1]

    def main(self, agency: str, feed_name: str, day: int | None = None) -> PlannedFile | None:
        """The ordinary file (seq 1) of a feed on ``day`` (the first date by default)."""
        return self.plan.find(agency, feed_name, self.first if day is None else day)

    def pick(self, planned: PlannedFile, count: int, kind: str | None = None) -> np.ndarray:
        """Positions of ``count`` good rows (of ``kind``) from the file's first half, marked
        as picked so that no other noise touches them."""
        frame = planned.frame
        free = frame["_reject"].isna() & ~frame["_picked"].astype(bool)
        if kind is not None:
            free &= frame["_kind"] == kind
        candidates = np.flatnonzero(free.to_numpy()[: max(1, len(frame) // 2)])
        chosen = np.sort(
            self.rng.choice(candidates, size=min(count, len(candidates)), replace=False)
        )
        planned.frame.loc[chosen, "_picked"] = True
        return chosen

    def split_off(self, planned: PlannedFile | None, count: int) -> pd.DataFrame | None:
        """Take up to ``count`` good rows off the end of a file (always leaving one)."""
        if planned is None:
            return None
        frame = planned.frame
        free = (frame["_reject"].isna() & ~frame["_picked"].astype(bool)).to_numpy()
        if len(frame) < 2:
            return None
        taken = np.flatnonzero(free)[-min(count, len(frame) - 1) :]
        if len(taken) == 0:
            return None
        if taken[0] == len(frame) - len(taken):  # the tail: a slice, not a copy
            planned.frame = frame.iloc[: taken[0]]
        else:
            planned.frame = frame.drop(index=pd.Index(taken)).reset_index(drop=True)
        return frame.iloc[taken].reset_index(drop=True)

    def fresh_key(self, spec: FeedSpec, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows with a key no good row has (a text id prefixed ``X``, or item 9xx)."""
        rows = rows.copy()
        self._fresh += len(rows)
        numbers = np.arange(self._fresh - len(rows), self._fresh) + 1
        for name in spec.key:
            kind = spec.column(name).type
            if kind == "id":
                rows[name] = "X" + _padded(numbers, 6).to_numpy()
                return rows
            if kind == "integer":
                rows[name] = _padded(900 + numbers % 100, 3).to_numpy()
                return rows
        raise ValueError(f"{spec.table} has no key column the generator can vary")

    def add_rows(self, agency: str, feed_name: str, day: int, rows: pd.DataFrame) -> None:
        """Send rows on ``day``: in the day's ordinary file, or a file of their own."""
        planned = self.main(agency, feed_name, day)
        if planned is None:
            self.plan.new_file(agency, feed_name, day, rows)
        else:
            planned.insert(rows, self.rng)


#: Name -> a function planting that kind of trouble in the file plan.
NOISE: dict[str, Callable[[Noise], None]] = {}


def noise(name: str) -> Callable[[Callable[[Noise], None]], Callable[[Noise], None]]:
    """Register a kind of intake trouble (planted in the order registered)."""

    def register(function: Callable[[Noise], None]) -> Callable[[Noise], None]:
        NOISE[name] = function
        return function

    return register


#: Bad values, one row each: (agency, feed, column, value). Each row must be rejected on
#: that column, and only there.
BAD_VALUES: tuple[tuple[str, str, str, str | None], ...] = (
    ("commerce", "licences", "vin", "LSVAM4187C218484"),  # a character short
    ("commerce", "licences", "hs_code", "85171200"),  # chapter 85: telephones
    ("commerce", "licences", "brand", None),  # a required value left empty
    ("commerce", "enterprises", "region_code", "12011"),  # five digits
    ("commerce", "tradein_claims", "applicant_id", "110101198003071234"),  # wrong check char
    ("customs", "declarations", "decl_no", "5.30E+17"),  # an id Excel turned into a number
    ("customs", "declarations", "status", "released"),  # not in the code list
    ("police", "events", "event_date", "2025-02-30"),  # no such day
    ("police", "events", "event_type", "transfer_export"),  # not in the code list
    ("police", "events", "owner_id", "110101800307123"),  # a 15-digit first-generation ID
    ("tax", "refunds", "applied_at", "2025/11/03"),  # not ISO
)


def _other_plate(plates: pd.Series) -> pd.Series:
    """The plate with its last digit changed."""
    last = (plates.str.slice(-1).astype(np.int64) + 1) % 10
    return plates.str.slice(0, -1) + last.astype("str")


@noise("bad values")
def _bad_values(n: Noise) -> None:
    """Copies of good rows with a fresh key and one bad value each (BAD_VALUES)."""
    by_feed: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    for agency, feed_name, column, value in BAD_VALUES:
        by_feed.setdefault((agency, feed_name), []).append((column, value))
    for (agency, feed_name), bad_values in by_feed.items():
        planned = n.main(agency, feed_name)
        if planned is None:
            continue
        templates = planned.frame.loc[n.pick(planned, len(bad_values))]
        bad = n.fresh_key(feed(agency, feed_name), templates).reset_index(drop=True)
        for row, (column, value) in enumerate(bad_values[: len(bad)]):
            bad.loc[row, column] = value
            bad.loc[row, "_reject"] = column
        planned.insert(bad, n.rng)


@noise("a key repeated in a file")
def _repeated_key(n: Noise) -> None:
    """The same filing twice in one file: the second is rejected on its key."""
    planned = n.main("commerce", "enterprises")
    if planned is None:
        return
    position = n.pick(planned, 1)
    spec = feed("commerce", "enterprises")
    again = planned.frame.loc[position].assign(_reject="/".join(spec.key))
    planned.insert(again, n.rng, after=int(position[0]))


@noise("same record_version, other content")
def _version_conflict(n: Noise) -> None:
    """A police event sent again with the same record_version and another plate."""
    planned = n.main("police", "events")
    if planned is None:
        return
    again = planned.frame.loc[n.pick(planned, 1, kind="register")].copy()
    again["plate_no"] = _other_plate(again["plate_no"])
    n.plan.new_file("police", "events", n.last, again.assign(_reject="record_version"))


@noise("a correction")
def _correction(n: Noise) -> None:
    """A plate typed wrong on the first date, corrected with record_version 2 the next."""
    planned = n.main("police", "events")
    if planned is None or len(n.dates) < 2:
        return
    position = n.pick(planned, 1, kind="register")
    right = planned.frame.loc[position].assign(record_version="2")
    planned.frame.loc[position, "plate_no"] = _other_plate(right["plate_no"]).to_numpy()
    n.add_rows("police", "events", n.dates[1], right)
    n.corrections.append(
        {
            "agency": "police",
            "feed": "events",
            "record_key": right["event_id"].iloc[0],
            "record_version": 2,
            "column": "plate_no",
            "value": right["plate_no"].iloc[0],
        }
    )


def _broken_then_resent(
    n: Noise, agency: str, feed_name: str, why: str, **broken: Any
) -> PlannedFile | None:
    """A few rows sent in a file broken as ``broken`` says, then again in a sound one."""
    rows = n.split_off(n.main(agency, feed_name), 3)
    if rows is None:
        return None
    bad = n.plan.new_file(agency, feed_name, n.first, rows, rejected_because=why, **broken)
    n.plan.new_file(agency, feed_name, n.first, rows, encoding=bad.encoding)
    return bad


@noise("checksum mismatch")
def _checksum_mismatch(n: Noise) -> None:
    digest = hashlib.sha256(b"another file").hexdigest()
    _broken_then_resent(
        n, "customs", "declarations", "checksum mismatch", manifest={"sha256": digest}
    )


@noise("row count mismatch")
def _row_count_mismatch(n: Noise) -> None:
    bad = _broken_then_resent(n, "tax", "refunds", "row count mismatch")
    if bad is not None:
        bad.manifest["rows"] = len(bad.frame) + 1


@noise("undecodable")
def _undecodable(n: Noise) -> None:
    """GB18030 bytes under a manifest saying UTF-8 (police rows carry Chinese brands)."""
    _broken_then_resent(
        n,
        "police",
        "events",
        "bytes do not decode as the manifest's encoding",
        encoding="gb18030",
        manifest={"encoding": "utf-8"},
    )


@noise("missing column")
def _missing_column(n: Noise) -> None:
    bad = _broken_then_resent(n, "commerce", "licences", "missing required column hs_code")
    if bad is not None:
        bad.columns = [c for c in bad.columns if c != "hs_code"]


@noise("GB18030")
def _gb18030(n: Noise) -> None:
    """Filings (Chinese enterprise names) sent in GB18030, as the manifest says."""
    planned = n.main("commerce", "enterprises")
    if planned is not None:
        planned.encoding = "gb18030"


@noise("UTF-8 with BOM")
def _bom(n: Noise) -> None:
    planned = n.main("commerce", "licences", n.last) or n.main("commerce", "licences")
    if planned is not None:
        planned.bom = True


@noise("columns reordered, one unknown")
def _columns_reordered(n: Noise) -> None:
    """Columns in reverse order and an unknown ``remark`` column, which is ignored."""
    planned = n.main("tax", "refunds")
    if planned is not None:
        planned.frame["remark"] = "补录"
        planned.columns = [*reversed(planned.columns), "remark"]


@noise("manifest a day late")
def _late_manifest(n: Noise) -> None:
    """A police file of the first date whose manifest arrives on the second."""
    if len(n.dates) < 2:
        return
    rows = n.split_off(n.main("police", "events"), 3)
    if rows is not None:
        n.plan.new_file("police", "events", n.first, rows, manifest_day=n.dates[1])


@noise("a gap in seq")
def _seq_gap(n: Noise) -> None:
    """A customs file number skipped: the next file still loads."""
    rows = n.split_off(n.main("customs", "declarations"), 2)
    if rows is not None:
        n.plan.skip_seq("customs", "declarations", n.first)
        n.plan.new_file("customs", "declarations", n.first, rows)


@noise("the same file again, another name")
def _resent_identical(n: Noise) -> None:
    original = n.main("commerce", "tradein_claims")
    if original is None:
        return
    again = n.plan.new_file(
        "commerce", "tradein_claims", n.last, original.frame.iloc[:0], copy_of=original
    )
    n.duplicates.append({"agency": "commerce", "file": again.name, "same_as": original.name})


@noise("an unfinished upload")
def _unfinished_upload(n: Noise) -> None:
    """A ``.part`` of refund lines repeating others: harmful if it were ever read."""
    planned = n.main("tax", "refunds")
    if planned is None:
        return
    rows = n.fresh_key(feed("tax", "refunds"), planned.frame.loc[n.pick(planned, 2)])
    n.plan.new_file("tax", "refunds", n.last, rows, part=True)


# --------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------

POLICE_VERDICTS = {"EXP-001": "no_export", "EXP-002": "before_export"}
TAX_VERDICTS = {
    "TAX-001": "no_export",
    "TAX-002": "cancelled",
    "TAX-003": "duplicate",
    "TAX-004": "party_mismatch",
}


@dataclass
class GroundTruth:
    """What the hub must conclude from the world, on its last business date.

    ``findings`` holds every finding RULES.md yields (``rule_id``, ``record_key``,
    ``vin``, ``agency`` the record is of): the planted ones; a rule without a planted
    case expects none. The verdicts follow from the findings (RULES.md). ``rejections``
    are (``agency``, ``file``, ``line``, ``column``, ``why``), ``line`` and ``column``
    empty for a file rejected whole.
    """

    findings: pd.DataFrame
    police_verdicts: pd.DataFrame  # event_id (empty when overdue), vin, verdict, decl_no
    tax_verdicts: pd.DataFrame  # refund_no, decl_ref, vin, verdict
    rejections: pd.DataFrame
    duplicates: pd.DataFrame  # agency, file, same_as: already loaded, not a rejection
    waiting: pd.DataFrame  # business_date, agency, file: waiting for a manifest that day
    gaps: pd.DataFrame  # agency, feed, business_date, seq: numbers never sent
    unfinished: list[str]  # ``.part`` files the hub must leave alone
    corrections: pd.DataFrame  # agency, feed, record_key, record_version, column, value
    planted: pd.DataFrame  # case, population, story, vin
    #: VIN-003's candidates: per finding (``agency``, ``record_key``, ``vin``) each record it
    #: must list in ``related`` (``agency:key``).
    candidates: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["agency", "record_key", "vin", "related"])
    )
    #: The VINs typed over (plants and noise): :data:`TYPO_COLUMNS`.
    typos: pd.DataFrame = field(default_factory=pd.DataFrame)

    def expected(self, rule_id: str) -> set[str]:
        """The record keys ``rule_id`` must fire on."""
        return set(self.findings.loc[self.findings["rule_id"] == rule_id, "record_key"])

    def expected_candidates(self) -> set[tuple[str, str]]:
        """(record_key, related record) pairs VIN-003 must propose."""
        return set(zip(self.candidates["record_key"], self.candidates["related"], strict=True))


def _keyed(records: dict[tuple[str, str], pd.DataFrame], kind: str) -> pd.DataFrame:
    """The ``kind`` records as ``_story``, ``record_key``, ``_vin``, ``_known``."""
    agency, feed_name = KIND_FEEDS[kind]
    frame = records[agency, feed_name]
    mine = frame.loc[
        frame["_kind"] == kind, ["_story", "_vin", "_known", *feed(agency, feed_name).key]
    ]
    spec = feed(agency, feed_name)
    # A key holding a VIN holds it normalised: the VIN the record is read as.
    keyed = mine.assign(vin=mine["_vin"]) if "vin" in spec.key else mine
    return mine.assign(record_key=record_keys(spec, keyed))[
        ["_story", "record_key", "_vin", "_known"]
    ]


def _expected_findings(
    records: dict[tuple[str, str], pd.DataFrame], expected: pd.DataFrame, last: int
) -> pd.DataFrame:
    found = []
    for kind, group in expected.groupby("kind"):
        agency, _ = KIND_FEEDS[str(kind)]
        mine = _keyed(records, str(kind))
        hits = group.merge(mine, how="left", left_on="story", right_on="_story")
        if hits["record_key"].isna().any() or (hits["_known"] > last).any():
            raise ValueError(f"a planted finding on a {kind} record that is not on file")
        found.append(
            pd.DataFrame(
                {
                    "rule_id": hits["rule_id"],
                    "record_key": hits["record_key"],
                    "vin": hits["_vin"],
                    "agency": agency,
                }
            )
        )
    if not found:
        return pd.DataFrame(columns=["rule_id", "record_key", "vin", "agency"])
    return pd.concat(found, ignore_index=True).sort_values(
        ["rule_id", "record_key"], ignore_index=True
    )


def _expected_candidates(
    records: dict[tuple[str, str], pd.DataFrame],
    candidates: list[tuple[np.ndarray, str, str, np.ndarray]],
) -> pd.DataFrame:
    """Per VIN-003 finding, each candidate record it must list (``agency:key``)."""
    keyed: dict[str, pd.DataFrame] = {}
    pairs = [pd.DataFrame(columns=["agency", "record_key", "vin", "related"])]
    for rows, kind, candidate, vins in candidates:
        for name in (kind, candidate):
            if name not in keyed:
                keyed[name] = _keyed(records, name).set_index("_story")
        mine, theirs = keyed[kind].reindex(rows), keyed[candidate].reindex(rows)
        pairs.append(
            pd.DataFrame(
                {
                    "agency": KIND_FEEDS[kind][0],
                    "record_key": mine["record_key"].to_numpy(),
                    "vin": vins,
                    "related": KIND_FEEDS[candidate][0] + ":" + theirs["record_key"].to_numpy(),
                }
            )
        )
    return pd.concat(pairs, ignore_index=True).sort_values(
        ["record_key", "related"], ignore_index=True
    )


def _first_rule(keys: pd.Series, findings: pd.DataFrame, verdicts: dict[str, str]) -> pd.Series:
    """Per record key, the verdict of the first of ``verdicts``' rules that fires on it."""
    verdict = pd.Series(None, index=keys.index, dtype="str")
    for rule_id, name in verdicts.items():
        fired = keys.isin(findings.loc[findings["rule_id"] == rule_id, "record_key"])
        verdict = verdict.where(verdict.notna() | ~fired, name)
    return verdict


def _police_verdicts(
    records: dict[tuple[str, str], pd.DataFrame], findings: pd.DataFrame, last: int
) -> pd.DataFrame:
    events = snapshot(records["police", "events"], (), last)
    dereg = events[
        (events["event_type"] == "deregister")
        & (events["dereg_reason"] == "export")
        & (events["record_status"] == "active")
    ]
    verdict = _first_rule(dereg["event_id"], findings, POLICE_VERDICTS).fillna("verified")
    deregs = pd.DataFrame(
        {
            "event_id": dereg["event_id"],
            "vin": dereg["_vin"],
            "verdict": verdict,
            "decl_no": dereg["decl_no"].where(verdict != "no_export"),
        }
    )
    overdue = findings[findings["rule_id"] == "EXP-003"]
    late = pd.DataFrame(
        {
            "event_id": None,
            "vin": overdue["vin"],
            "verdict": "overdue",
            "decl_no": overdue["record_key"].str.split("/").str[0],
        }
    )
    return pd.concat([deregs, late], ignore_index=True)


def _tax_verdicts(
    records: dict[tuple[str, str], pd.DataFrame], findings: pd.DataFrame, last: int
) -> pd.DataFrame:
    lines = snapshot(records["tax", "refunds"], CHANGES["tax", "refunds"], last)
    lines = lines[lines["status"] != "rejected"]
    keys = record_keys(feed("tax", "refunds"), lines)
    return pd.DataFrame(
        {
            "refund_no": lines["refund_no"],
            "decl_ref": lines["decl_ref"],
            "vin": lines["_vin"],
            "verdict": _first_rule(keys, findings, TAX_VERDICTS).fillna("verified"),
        }
    ).reset_index(drop=True)


def _expected_rejections(plan: FilePlan) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for planned in plan.files:
        if planned.part or planned.copy_of is not None:
            continue
        if planned.rejected_because:
            rows.append(
                {
                    "agency": planned.agency,
                    "file": planned.name,
                    "line": None,
                    "column": None,
                    "why": planned.rejected_because,
                }
            )
            continue
        bad = planned.frame["_reject"].notna().to_numpy()
        for position in np.flatnonzero(bad):
            column = planned.frame["_reject"].iloc[position]
            rows.append(
                {
                    "agency": planned.agency,
                    "file": planned.name,
                    "line": int(position) + 2,
                    "column": column,
                    "why": f"bad {column}",
                }
            )
    frame = pd.DataFrame(rows, columns=["agency", "file", "line", "column", "why"])
    frame["line"] = frame["line"].astype("Int64")
    return frame


def _waiting(plan: FilePlan, dates: Sequence[int]) -> pd.DataFrame:
    rows = [
        {"business_date": calendar_day(day), "agency": f.agency, "file": f.name}
        for f in plan.files
        for day in dates
        if not f.part and f.day <= day < f.manifest_on
    ]
    return pd.DataFrame(rows, columns=["business_date", "agency", "file"])


def _gaps(plan: FilePlan, last: int) -> pd.DataFrame:
    """Sequence numbers missing below the highest one that arrives complete."""
    sent: dict[tuple[str, str, int], set[int]] = {}
    for f in plan.files:
        if not f.part and f.manifest_on <= last:
            sent.setdefault((f.agency, f.feed, f.day), set()).add(f.seq)
    rows = [
        {"agency": a, "feed": fd, "business_date": calendar_day(d), "seq": seq}
        for (a, fd, d), seqs in sorted(sent.items())
        for seq in range(1, max(seqs))
        if seq not in seqs
    ]
    return pd.DataFrame(rows, columns=["agency", "feed", "business_date", "seq"])


# --------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------


@dataclass
class World:
    """A generated world: its files per business date and what the hub must make of them."""

    dates: list[date]
    files: list[PlannedFile]
    truth: GroundTruth
    stories: Stories

    def files_of(self, day: date) -> list[PlannedFile]:
        """The files whose data is sent on ``day``."""
        return [f for f in self.files if f.day == day_number(day)]

    def rows_per_feed(self) -> dict[str, int]:
        """Data rows written per feed, over all dates (``.part`` files included)."""
        counts: dict[str, int] = {}
        for f in self.files:
            name = f"{f.agency}/{f.feed}"
            counts[name] = counts.get(name, 0) + len(f.rows())
        return dict(sorted(counts.items()))

    def write_day(self, day: date, exchange: Path) -> list[Path]:
        """Write ``day``'s files into ``exchange/<agency>/outbox`` the way agencies do:
        each data file as ``.part`` renamed when complete, then the manifests (including
        those of earlier files whose manifest arrives today). Returns the data files."""
        number = day_number(day)
        written = [_write_data(f, exchange / f.agency) for f in self.files if f.day == number]
        for f in self.files:
            if not f.part and f.manifest_on == number:
                _write_manifest(f, exchange / f.agency)
        return written


def write_csv(rows: pd.DataFrame, sink: BinaryIO) -> None:
    """RFC 4180 CSV of text columns: a plain header, fields quoted only where they must be."""
    sink.write((",".join(rows.columns) + "\n").encode())
    table = pa.Table.from_pandas(rows, preserve_index=False)
    try:
        body = io.BytesIO()
        pa_csv.write_csv(
            table, body, pa_csv.WriteOptions(include_header=False, quoting_style="none")
        )
    except pa.ArrowInvalid:  # a value holding a comma or a quote
        body = io.BytesIO()
        pa_csv.write_csv(table, body, pa_csv.WriteOptions(include_header=False))
    sink.write(body.getbuffer())


def _write_data(planned: PlannedFile, root: Path) -> Path:
    """Write the data file as ``.part``, then rename it (unless the upload never ends)."""
    outbox = root / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (root / "inbox").mkdir(exist_ok=True)
    target = outbox / planned.name
    part = target.with_name(target.name + ".part")
    source = planned.content()
    with part.open("wb") as sink:
        if source.encoding == "utf-8":
            sink.write(codecs.BOM_UTF8 if source.bom else b"")
            write_csv(planned.rows(), sink)
        else:  # only small files are sent in other encodings
            buffer = io.BytesIO()
            write_csv(planned.rows(), buffer)
            sink.write(buffer.getvalue().decode("utf-8").encode(source.encoding))
    if planned.part:
        return part
    os.replace(part, target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(planned: PlannedFile, root: Path) -> Path:
    outbox = root / "outbox"
    return write_manifest(
        outbox,
        planned.name,
        planned.agency,
        planned.feed,
        calendar_day(planned.day),
        planned.seq,
        rows=len(planned.rows()),
        sha256=_sha256(outbox / planned.name),
        encoding=planned.content().encoding,
        overrides=planned.manifest,
    )


def generate_world(
    vehicles: int,
    dates: Sequence[date],
    *,
    seed: int = 1,
    plant_fraction: float = 0.01,
    noise: bool = True,
    vin_typos: float = 0.02,
    claims: int | None = None,
    params: RuleParameters | None = None,
) -> World:
    """A world of ``vehicles`` export vehicles whose files arrive on the business ``dates``.

    ``plant_fraction`` of the vehicles (at least one per case, none when 0) carry each
    planted rule case and each near miss; ``noise`` plants the intake trouble of
    :data:`NOISE` and the noise of :data:`STORY_NOISE`, each in ``vin_typos`` of the
    vehicles and claims (a VIN typed over in one feed's copy). ``claims`` trade-in claims
    (default one per hundred vehicles, at least 40 so that every trade-in case has claims
    to bend).
    ``params`` are the rule parameters the plants aim at (RULES.md defaults).
    """
    if vehicles < 1 or not dates:
        raise ValueError("a world needs at least one vehicle and one business date")
    days = tuple(sorted({day_number(d) for d in dates}))
    rng = np.random.default_rng(seed)
    stories = _populate(
        rng,
        vehicles,
        max(40, vehicles // 100) if claims is None else claims,
        days,
        params or RuleParameters(),
    )
    count = max(1, round(vehicles * plant_fraction)) if plant_fraction > 0 else 0
    expected, planted = _plant_all(stories, count)
    if noise and vin_typos > 0:
        for name, bend in STORY_NOISE.items():
            typos_before = len(stories.typos)
            expected = pd.concat(
                [expected, _expected_frame("", bend(stories, vin_typos))], ignore_index=True
            )
            stories.label_typos(typos_before, name)
    records = build_records(stories)
    findings = _expected_findings(records, expected, days[-1])
    candidates = _expected_candidates(records, stories.candidates)
    police_verdicts = _police_verdicts(records, findings, days[-1])
    tax_verdicts = _tax_verdicts(records, findings, days[-1])
    plan = plan_files(records, days)
    trouble = Noise(rng, plan, days)
    if noise:
        for plant_noise in NOISE.values():
            plant_noise(trouble)
    planted = planted.assign(
        vin=np.where(
            planted["population"] == "vehicle",
            stories.vehicles["vin"].reindex(planted["story"]).to_numpy(),
            stories.claims["old_vin"].reindex(planted["story"]).to_numpy(),
        )
    )
    truth = GroundTruth(
        findings=findings,
        police_verdicts=police_verdicts,
        tax_verdicts=tax_verdicts,
        rejections=_expected_rejections(plan),
        duplicates=pd.DataFrame(trouble.duplicates, columns=["agency", "file", "same_as"]),
        waiting=_waiting(plan, days),
        gaps=_gaps(plan, days[-1]),
        unfinished=[f.name + ".part" for f in plan.files if f.part],
        corrections=pd.DataFrame(
            trouble.corrections,
            columns=["agency", "feed", "record_key", "record_version", "column", "value"],
        ),
        planted=planted,
        candidates=candidates,
        typos=pd.concat(
            stories.typos or [pd.DataFrame(columns=TYPO_COLUMNS)],
            ignore_index=True,
        ),
    )
    return World([calendar_day(d) for d in days], plan.files, truth, stories)
