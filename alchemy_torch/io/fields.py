"""Typed, validated access to a raw table's columns, shared by every format adapter.

Each accessor returns a full-length column -- a numpy array for numbers, a pandas ``str``
Series (RangeIndex, '' when unset) for text, an object array of lists for list fields --
with placeholders in bad rows, and notes the bad rows; :meth:`Fields.commit` then raises
:class:`DataFormatError` for the earliest bad line (strict) or drops every bad row and counts
it (lenient). All checks are vectorized (arrow, numpy and pandas kernels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api import types as pdt

from .errors import DataFormatError
from .source import RawTable

_TICKS_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}

# Per-record label vocabularies: (regex, code) tried in order, case-insensitive.
ZEEK_LABELS = (
    (r"^malicious", 1),
    (r"^(?:benign|normal)", 0),
    (r"^(?:background|unknown|-|\(empty\)|)$", -1),
)
ARGUS_LABELS = ((r"botnet", 1), (r"normal", 0), (r"background", -1))


def _is_number(s: pd.Series) -> bool:
    return pdt.is_numeric_dtype(s) and not pdt.is_bool_dtype(s)


_NUMBER = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"


def _to_float(s: pd.Series) -> np.ndarray:
    """float64 copy of a column; NaN where unset or not a number (vectorized in arrow)."""
    if _is_number(s):
        return s.to_numpy(np.float64, na_value=np.nan, copy=True)
    try:
        arr = pc.utf8_trim_whitespace(pa.array(s.astype("str"), from_pandas=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return np.full(len(s), np.nan)
    arr = pc.if_else(pc.match_substring_regex(arr, _NUMBER), arr, pa.scalar(None, arr.type))
    return np.array(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), np.float64)


class Fields:
    """Column accessors over ``table.frame`` with deferred, vectorized validation.

    ``unset``: tokens that mean "no value" in this source (Zeek: '-' and '(empty)').
    """

    def __init__(self, table: RawTable, *, lenient: bool, unset=()):
        self.table, self.lenient, self.unset = table, lenient, tuple(unset)
        self.frame = table.frame
        self.absent: list[str] = []  # optional fields the file lacks (read as unset)
        self._bad: list[tuple[np.ndarray, str, str]] = []

    # -- presence ---------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.frame.columns

    def first(self, *names: str) -> str | None:
        """The first of ``names`` present in the table, or None."""
        return next((n for n in names if self.has(n)), None)

    def require(self, *names: str) -> None:
        for name in names:
            if not self.has(name):
                raise DataFormatError(
                    self.table.path,
                    self.table.header_line,
                    name,
                    f"missing field (found: {', '.join(map(str, self.frame.columns))})",
                )

    def _raw(self, name: str, required: bool) -> pd.Series:
        """The column, unset tokens as NaN; an absent column is all-unset unless required."""
        if not self.has(name):
            if required:
                self.require(name)
            self.absent.append(name)
            return pd.Series(np.full(len(self.frame), np.nan, object))
        s = self.frame[name].reset_index(drop=True)
        if self.unset and not _is_number(s):
            s = s.mask(s.isin(self.unset))
        return s

    # -- typed columns ----------------------------------------------------------------------
    def text(self, name: str, *, required: bool = False) -> pd.Series:
        """Strings (a ``str`` Series); unset -> '' (an error if ``required``)."""
        s = self._raw(name, required)
        missing = s.isna().to_numpy()
        if required:
            self.flag(missing, name, "missing value", s)
        return s.where(~missing, "").astype("str")

    def number(
        self, name: str, *, default=None, integer: bool = True, lo=None, hi=None, hex: bool = False
    ) -> np.ndarray:
        """int64 (or float64 if not ``integer``); unset -> ``default`` (an error if None)."""
        s = self._raw(name, default is None)
        present = s.notna().to_numpy()
        if integer and pdt.is_integer_dtype(s) and not pdt.is_bool_dtype(s) and present.all():
            v = s.to_numpy(np.int64)
        else:
            v = _to_float(s)
            if hex and (present & np.isnan(v)).any():
                hexes = (present & np.isnan(v)) & s.astype("str").str.startswith("0x").to_numpy(
                    bool, na_value=False
                )
                v[hexes] = s[hexes].map(_parse_hex).to_numpy(np.float64)
            self.flag(present & np.isnan(v), name, "not a number", s)
            if integer:
                self.flag(present & (v != np.floor(v)) & ~np.isnan(v), name, "not an integer", s)
        if default is None:
            self.flag(~present, name, "missing value", s)
        if lo is not None:
            self.flag(present & (v < lo), name, f"below {lo}", s)
        if hi is not None:
            self.flag(present & (v > hi), name, f"above {hi}", s)
        fill = 0 if default is None else default
        if integer:
            if v.dtype != np.int64:
                v = np.where(present & np.isfinite(v), v, fill).astype(np.int64)
            return v
        return np.where(present & ~np.isnan(v), v, np.nan if default is None else default)

    def time(self, name: str, *, fmt: str | None = None) -> np.ndarray:
        """Seconds since the epoch (float64) from epoch numbers or date strings: ``fmt``
        (default ISO 8601), then any format pandas recognises. Naive times are UTC."""
        s = self._raw(name, True)
        present = s.notna().to_numpy()
        if pdt.is_datetime64_any_dtype(s):  # Parquet timestamps
            v = _epoch_seconds(s)
        else:
            v = _to_float(s)
        for how in (fmt or "ISO8601", "mixed"):
            todo = present & np.isnan(v)
            if todo.any():
                dt = pd.to_datetime(s[todo], format=how, errors="coerce", utc=True)
                v[todo] = _epoch_seconds(dt)
        self.flag(~present, name, "missing value", s)
        self.flag(present & ~np.isfinite(v), name, "unparseable timestamp", s)
        return np.where(np.isfinite(v), v, 0.0)

    def lists(self, name: str, *, sep: str = ",", integer: bool = False):
        """Per-record lists (python lists of str, or of int if ``integer``) and their lengths.

        Accepts ``sep``-joined strings (Zeek TSV/CSV) or list/array values (JSON, Parquet);
        unset -> [].
        """
        s = self._raw(name, False)
        present = s.notna().to_numpy()
        if present.any() and not isinstance(s[present].iloc[0], str):
            parts = s[present]
        else:
            text = s.astype(object).fillna("")
            present = present & (text != "").to_numpy()
            parts = text[present].str.split(sep, regex=False)
        lengths = np.zeros(len(s), np.int64)
        lengths[present] = parts.map(len).to_numpy(np.int64)
        flat = parts[parts.map(len) > 0].explode()
        if integer:
            num = _to_float(flat.reset_index(drop=True))
            bad = np.zeros(len(s), bool)
            bad[np.repeat(np.arange(len(s)), lengths)[np.isnan(num)]] = True
            self.flag(bad, name, "not a list of numbers", s)
            values = pa.array(np.rint(np.nan_to_num(num)).astype(np.int64))
        else:
            values = pa.array(flat.astype(str).to_numpy(dtype=object), pa.string())
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int64())
        lists = np.empty(len(s), object)
        lists[:] = pa.LargeListArray.from_arrays(offsets, values).to_pylist()
        return lists, lengths

    def labels(self, name: str, vocabulary=ZEEK_LABELS) -> np.ndarray:
        """Per-record label codes (int8): 1 malicious, 0 benign, -1 unknown/background."""
        s = self.frame[name].reset_index(drop=True)
        if _is_number(s):
            v = s.to_numpy(np.float64, na_value=np.nan)
            bad = ~np.isin(v, (-1.0, 0.0, 1.0))
            self.flag(bad, name, "label not in {-1, 0, 1}", s)
            return np.where(bad, -1, v).astype(np.int8)
        text = s.astype("str").fillna("").str.strip()
        codes = np.full(len(s), 2, np.int8)  # 2 = no rule matched yet
        for pattern, code in vocabulary:
            hit = text.str.contains(pattern, case=False, regex=True).to_numpy(bool)
            codes[(codes == 2) & hit] = code
        self.flag(codes == 2, name, "unknown label", s)
        codes[codes == 2] = -1
        return codes

    # -- validation -------------------------------------------------------------------------
    def flag(self, bad: np.ndarray, name: str, message: str, values: pd.Series) -> None:
        """Note rows where ``bad`` holds: ``message`` about field ``name``."""
        if bad.any():
            i = int(np.argmax(bad))
            self._bad.append((bad, name, f"{message}: {values.iloc[i]!r}"))

    def commit(self, columns: dict) -> dict:
        """Raise for the earliest bad line, or (lenient) drop bad rows from ``columns``."""
        if not self._bad:
            return columns
        line = self.table.line
        firsts = [(int(line[np.argmax(bad)]), name, msg) for bad, name, msg in self._bad]
        first = min(firsts, key=lambda t: t[0])
        if not self.lenient:
            raise DataFormatError(self.table.path, *first, unit=self.table.unit)
        keep = ~np.logical_or.reduce([bad for bad, _, _ in self._bad])
        self.table.skip(keep, [first])
        self._bad = []
        return {
            k: v[keep].reset_index(drop=True) if isinstance(v, pd.Series) else v[keep]
            for k, v in columns.items()
        }


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    """Seconds since the epoch of datetimes (naive ones are UTC) in any unit; NaT -> NaN."""
    ticks = times.dt.tz_localize(None) if times.dt.tz is None else times.dt.tz_convert(None)
    seconds = ticks.array.asi8 / _TICKS_PER_SECOND[ticks.dt.unit]
    return np.where(ticks.isna().to_numpy(), np.nan, seconds)


def _parse_hex(value: str) -> float:
    try:
        return float(int(value, 16))
    except ValueError:
        return np.nan
