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


_NUMBER = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?(?i:nan|inf|infinity)$"


def _to_float(s: pd.Series) -> np.ndarray:
    """float64 copy of a column; NaN where unset or not a number (vectorized in arrow).

    'NaN', 'inf' and 'Infinity' (any case, signed) are numbers: callers decide about them.
    """
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

    def __init__(self, table: RawTable, *, lenient: bool, unset=(), format: str = ""):
        self.table, self.lenient, self.unset = table, lenient, tuple(unset)
        self.format = format  # the format the file is read as, for messages
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
        """Raise :class:`DataFormatError` naming every one of ``names`` the table lacks, the
        format it is read as and the first :data:`SHOWN` names of the header it has."""
        missing = [name for name in names if not self.has(name)]
        if missing:
            raise DataFormatError(
                self.table.path,
                self.table.header_line,
                missing[0],
                missing_message(self.format, missing, self.table.header),
            )

    def is_unset(self, name: str) -> np.ndarray:
        """Rows where field ``name`` (which must be present) has no value."""
        return self._raw(name, True).isna().to_numpy()

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
                whole = np.isfinite(v) & (v == np.floor(v))
                self.flag(present & ~np.isnan(v) & ~whole, name, "not an integer", s)
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

    def time(
        self, name: str, *, formats=("ISO8601",), guess: bool = True, required: bool = True
    ) -> np.ndarray:
        """Seconds since the epoch (float64) from epoch numbers or date strings in the first
        of ``formats`` (strptime patterns or 'ISO8601') that fits, then (``guess``) any format
        pandas recognises. Naive times are UTC. Unset: an error if ``required``, else NaN."""
        s = self._raw(name, required)
        present = s.notna().to_numpy()
        v = _epoch_seconds(s) if pdt.is_datetime64_any_dtype(s) else _to_float(s)
        for how in (*formats, "mixed") if guess else formats:
            todo = present & np.isnan(v)
            if todo.any():
                v[todo] = _parse_times(s[todo].astype("str"), how)
        if required:
            self.flag(~present, name, "missing value", s)
        self.flag(present & ~np.isfinite(v), name, "unparseable timestamp", s)
        return np.where(np.isfinite(v), v, 0.0 if required else np.nan)

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
        flat = parts[parts.map(len) > 0].explode().reset_index(drop=True)
        owner = np.repeat(np.arange(len(s)), lengths)
        if integer:
            num = _to_float(flat)
            self.flag(
                np.isin(np.arange(len(s)), owner[np.isnan(num)]), name, "not a list of numbers", s
            )
            values = pa.array(np.rint(np.nan_to_num(num)).astype(np.int64))
        else:
            missing = flat.isna().to_numpy()
            self.flag(
                np.isin(np.arange(len(s)), owner[missing]), name, "an item without a value", s
            )
            values = pa.array(flat.where(~missing, "").astype(str).to_numpy(object), pa.string())
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int64())
        lists = np.empty(len(s), object)
        lists[:] = pa.LargeListArray.from_arrays(offsets, values).to_pylist()
        return lists, lengths

    def labels(self, name: str, vocabulary=ZEEK_LABELS) -> np.ndarray:
        """Per-record label codes (int8): 1 malicious, 0 benign, -1 unknown/background.

        Numbers must be -1, 0 or 1; text is matched against ``vocabulary`` ((regex, code)
        pairs tried in order, case-insensitive); anything else is an unknown label.
        """
        s = self.frame[name].reset_index(drop=True)
        v = _to_float(s)
        number = ~np.isnan(v)
        codes = np.full(len(s), 2, np.int8)  # 2 = no rule matched yet
        codes[number] = np.where(np.isin(v[number], (-1.0, 0.0, 1.0)), v[number], 3)
        self.flag(codes == 3, name, "label not in {-1, 0, 1}", s)
        text = s.astype("str").fillna("").str.strip()
        for pattern, code in vocabulary:
            hit = text.str.contains(pattern, case=False, regex=True).to_numpy(bool)
            codes[(codes == 2) & hit] = code
        self.flag(codes == 2, name, "unknown label", s)
        codes[codes >= 2] = -1
        return codes

    def label_columns(self, details=("detailed_label",)) -> dict:
        """``label`` (:meth:`labels`) and ``detailed_label`` (the first of ``details``
        present), where the table has them."""
        out = {}
        if self.has("label"):
            out["label"] = self.labels("label")
        detail = self.first(*details)
        if detail:
            out["detailed_label"] = self.text(detail)
        return out

    # -- validation -------------------------------------------------------------------------
    def flag(self, bad: np.ndarray, name: str, message: str, values: pd.Series) -> None:
        """Note rows where ``bad`` holds: ``message`` about field ``name``."""
        if bad.any():
            value = values.iloc[int(np.argmax(bad))]
            unset = (
                value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
            )
            shown = "unset" if unset else repr(value)
            self._bad.append((bad, self.table.source_name(name), f"{message}: {shown}"))

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


SHOWN = 8  # header names an error message quotes


def missing_message(format: str, missing: list, header: list) -> str:
    """The message for required fields a file lacks: the format it was read as, the fields,
    the first :data:`SHOWN` names of its header."""
    shown = ", ".join(repr(name) for name in header[:SHOWN])
    more = f", ... ({len(header)} in all)" if len(header) > SHOWN else ""
    return (
        f"missing field(s) {', '.join(map(repr, missing))} of a {format} file; "
        f"its header: {shown or 'no columns'}{more}"
    )


def _parse_times(strings: pd.Series, how: str) -> np.ndarray:
    """Seconds since the epoch of date strings in format ``how`` (NaN where they do not fit):
    arrow's parsers where they apply (ISO 8601 with one kind of zone; strptime patterns
    without %f), pandas for the rest."""
    values = pa.array(strings.to_numpy(object), pa.string())
    seconds = np.full(len(values), np.nan)
    if how == "ISO8601":
        for unit in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):  # zoned, or naive
            try:
                seconds = _arrow_seconds(values.cast(unit))
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
    elif how != "mixed" and "%f" not in how:
        seconds = _arrow_seconds(pc.strptime(values, format=how, unit="us", error_is_null=True))
    rest = np.isnan(seconds)
    if rest.any():
        dt = pd.to_datetime(strings[rest], format=how, errors="coerce", utc=True)
        seconds[rest] = _epoch_seconds(dt)
    return seconds


def _arrow_seconds(times: pa.Array) -> np.ndarray:
    """Seconds since the epoch of an arrow microsecond timestamp array; null -> NaN."""
    micros = pc.cast(times, pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(micros, np.float64) / 1e6


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
