"""Containers: a file's bytes -> a raw table (source columns + the physical line of every row).

Plain or gzip-compressed text (delimited with or without quoting, '#' comment headers,
JSON lines) and Parquet. Structure is validated vectorized on the raw bytes: records are
found with numpy (newlines outside quotes), fields are counted per record, and only then
is pandas' C parser run on the records that passed. Nothing is ever dropped silently:
strict mode raises :class:`DataFormatError`, lenient mode counts what it skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = b"\xef\xbb\xbf"


def read_bytes(path) -> bytes:
    """The whole (decompressed) content of ``path``, without a leading UTF-8 byte order mark."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == GZIP_MAGIC else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:  # missing file, truncated or corrupt gzip
        raise DataFormatError(path, None, None, f"cannot read file: {exc}") from exc
    return data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data


@dataclass
class RawTable:
    """Rows of one file as source columns; ``line[i]`` is the 1-based line of row i."""

    path: str
    frame: pd.DataFrame
    line: np.ndarray
    header_line: int | None = None
    unit: str = "line"
    skipped: int = 0
    problems: list = field(default_factory=list)  # (line, field, message) of skipped rows
    names: dict = field(default_factory=dict)  # field name -> file column, where they differ
    ignored: dict = field(default_factory=dict)  # what -> count of lines that are no records
    columns: list | None = None  # the file's own column names (all, not just those read)

    @property
    def header(self) -> list:
        """The file's column names, in file order (those read where the file's are unknown)."""
        if self.columns is not None:
            return list(self.columns)
        return [self.source_name(c) for c in self.frame.columns]

    def source_name(self, name: str) -> str:
        """The file's own name of field ``name``."""
        return self.names.get(name, name)

    def rename(self, fields: list[str]) -> None:
        """Give the frame's columns (file order) the field names ``fields``."""
        self.names.update({f: c for f, c in zip(fields, self.frame.columns) if f != c})
        self.frame.columns = fields

    def skip(self, keep: np.ndarray, problems: list) -> None:
        """Drop rows where ``keep`` is False, counting them (lenient mode)."""
        self.frame = self.frame.loc[keep].reset_index(drop=True)
        self.line = self.line[keep]
        self.skipped += int((~keep).sum())
        self.problems.extend(problems)


class Text:
    """Record index of a text buffer: byte span and physical line of every record."""

    def __init__(self, path, data: bytes, *, quote: bool):
        self.path, self.data, self.quote = str(path), data, quote
        b = np.frombuffer(data, np.uint8)
        self._bytes = b
        newlines = np.flatnonzero(b == 10)
        quotes = np.flatnonzero(b == 34) if quote else np.empty(0, np.int64)
        self._quotes = quotes
        breaks = newlines[np.searchsorted(quotes, newlines) % 2 == 0] if len(quotes) else newlines
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [len(b)]])
        real = starts < len(b)  # nothing after a final newline (or in an empty file)
        starts, ends = starts[real], ends[real]
        cr = (ends > starts) & (b[np.maximum(ends - 1, 0)] == 13)
        self.starts, self.ends = starts, ends - cr
        crs = np.flatnonzero(b[:-1] == 13) if b"\r" in data else np.zeros(0, np.int64)
        self.lone_cr = bool((b[crs + 1] != 10).any())  # a CR inside a record, not a line end
        self.number = np.searchsorted(newlines, starts) + 1  # physical line of each record
        self.empty = self.ends == self.starts
        self.comment = ~self.empty & (b[starts] == ord("#"))

    def record(self, i: int) -> str:
        return self.data[self.starts[i] : self.ends[i]].decode("utf-8", "replace")

    def field_counts(self, sep: str, records: np.ndarray) -> np.ndarray:
        """Number of fields of each of ``records`` (separators outside quotes + 1)."""
        if len(records) == 0:
            return np.zeros(0, np.int64)
        if not len(self._quotes):  # every separator counts: a sum per record, in chunks
            return self._separators_per_line(ord(sep))[records] + 1
        seps = np.flatnonzero(self._bytes == ord(sep))
        seps = seps[np.searchsorted(self._quotes, seps) % 2 == 0]
        owner = np.searchsorted(self.starts, seps, side="right") - 1
        counts = np.bincount(owner, minlength=len(self.starts))
        return counts[records] + 1

    def _separators_per_line(self, sep: int, lines_per_chunk: int = 1 << 14) -> np.ndarray:
        """(lines,) count of byte ``sep`` from each line's start to the next one's, summed over
        chunks of lines so that no temporary is larger than a chunk of the file."""
        counts = np.empty(len(self.starts), np.int64)
        bounds = np.append(self.starts, len(self._bytes))
        for lo in range(0, len(self.starts), lines_per_chunk):
            hi = min(lo + lines_per_chunk, len(self.starts))
            chunk = (self._bytes[bounds[lo] : bounds[hi]] == sep).view(np.uint8)
            counts[lo:hi] = np.add.reduceat(chunk, self.starts[lo:hi] - bounds[lo], dtype=np.int64)
        return counts

    def same_as(self, records: np.ndarray, content: bytes) -> np.ndarray:
        """Which of ``records`` are exactly ``content`` (compared in bounded chunks)."""
        same = self.ends[records] - self.starts[records] == len(content)
        candidates = np.flatnonzero(same)
        want = np.frombuffer(content, np.uint8)
        step = max(1, (1 << 24) // max(len(want), 1))
        for lo in range(0, len(candidates), step):
            chunk = candidates[lo : lo + step]
            spans = self.starts[records[chunk]][:, None] + np.arange(len(want))
            same[chunk] = (self._bytes[spans] == want).all(axis=1)
        return same

    def buffer(self, records: np.ndarray) -> bytes:
        """The bytes of ``records`` (sorted indices), one per line (ended by a bare '\\n'
        where the file has CRs inside records, which stay data)."""
        if len(records) == 0:
            return b""
        if records[-1] - records[0] + 1 == len(records) and not self.lone_cr:  # one slice
            return self.data[self.starts[records[0]] : self.ends[records[-1]]]
        starts, ends = self.starts[records], self.ends[records]
        # keep each record and the byte after it (its line end, made '\n' below): runs of
        # kept and skipped bytes, alternating
        runs = np.empty(2 * len(records) + 1, np.int64)
        runs[0:-1:2] = starts - np.concatenate([[0], ends[:-1] + 1])
        runs[1::2] = ends + 1 - starts
        runs[-1] = len(self._bytes) - ends[-1] - 1
        last_open = runs[-1] < 0  # the file ends inside the last record: no byte after it
        runs[-2] += runs[-1] if last_open else 0
        runs[-1] = max(runs[-1], 0)
        keep = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
        out = self._bytes[keep]
        if last_open:
            out = np.concatenate([out, [10]]).astype(np.uint8)
        out[np.cumsum(ends - starts + 1) - 1] = 10
        return out.tobytes()


def parse_delimited(
    text: Text,
    records: np.ndarray,
    names: list[str],
    *,
    sep: str,
    lenient: bool,
    header_line: int | None,
    usecols: list[str] | None = None,
    dtype: dict | None = None,
    na_values=(),
    counts: np.ndarray | None = None,
) -> RawTable:
    """Parse ``records`` of ``text`` as rows of ``len(names)`` fields (``counts``: their
    field counts, where the caller has them)."""
    counts = text.field_counts(sep, records) if counts is None else counts
    wrong = counts != len(names)
    problems = []
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        n = int(counts[i])
        if n < len(names):
            fld, msg = names[n], f"missing: the line has {n} fields, the header {len(names)}"
        else:
            fld, msg = names[-1], f"{n} fields where the header has {len(names)}"
        line = int(text.number[records[i]])
        if not lenient:
            raise DataFormatError(text.path, line, fld, msg)
        problems.append((line, fld, msg))
        records = records[~wrong]
    buf = text.buffer(records)
    if usecols is not None and not usecols:  # no column to read: the adapter names what lacks
        frame = pd.DataFrame(index=pd.RangeIndex(len(records)))
    elif not buf:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in (usecols or names)})
    else:
        try:
            frame = pd.read_csv(
                io.BytesIO(buf),
                sep=sep,
                header=None,
                names=names,
                usecols=usecols,
                dtype=dtype,
                na_values=list(na_values),
                keep_default_na=False,
                quoting=csv.QUOTE_MINIMAL if text.quote else csv.QUOTE_NONE,
                skip_blank_lines=False,
                lineterminator="\n" if text.lone_cr else None,  # as the record index
                engine="c",
                low_memory=False,
                encoding_errors="replace",  # stray non-UTF-8 bytes in a string become U+FFFD
            )
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
            raise DataFormatError(text.path, None, None, f"unparseable content: {exc}") from exc
    if len(frame) != len(records):  # the parser split records differently (stray quotes)
        raise DataFormatError(
            text.path, None, None, f"{len(frame)} rows parsed from {len(records)} lines"
        )
    return RawTable(
        text.path,
        frame,
        text.number[records],
        header_line,
        skipped=int(wrong.sum()),
        problems=problems,
    )


def csv_header(text: Text, records: np.ndarray) -> tuple[list[str], int, np.ndarray]:
    """Column names from the first record; returns (names, header line, data records)."""
    if len(records) == 0:
        raise DataFormatError(text.path, None, None, "empty file: no header line")
    return split_header(text.record(records[0])), int(text.number[records[0]]), records[1:]


def split_header(line: str) -> list[str]:
    """The comma-separated (optionally quoted) names of a header line, stripped (split at
    every comma where the csv module refuses the line)."""
    try:
        names = next(csv.reader([line]), [])
    except csv.Error:  # e.g. a CR inside: not a header anyone wrote
        names = line.split(",")
    return [name.strip() for name in names]


def parse_json_lines(text: Text, *, lenient: bool) -> RawTable:
    """One JSON object per non-empty line (Zeek's JSON logs)."""
    records = np.flatnonzero(~text.empty)
    problems, skipped = [], 0

    def parse(recs):
        buf = text.buffer(recs)
        if not buf:
            return pd.DataFrame()
        return pd.read_json(io.BytesIO(buf), lines=True, dtype=False, precise_float=True)

    try:
        frame = parse(records)
    except ValueError as exc:
        bad = [i for i in records if not _is_json_object(text.data[text.starts[i] : text.ends[i]])]
        if not bad:
            raise DataFormatError(text.path, None, None, f"unreadable JSON lines: {exc}") from exc
        line = int(text.number[bad[0]])
        if not lenient:
            raise DataFormatError(text.path, line, None, "not a JSON object") from None
        problems.append((line, None, "not a JSON object"))
        skipped = len(bad)
        records = np.setdiff1d(records, bad)
        frame = parse(records)
    return RawTable(text.path, frame, text.number[records], skipped=skipped, problems=problems)


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def parse_parquet(path) -> RawTable:
    """A Parquet file; rows are numbered from 1 (``unit='row'``)."""
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise DataFormatError(path, None, None, f"unreadable Parquet: {exc}") from exc
    return RawTable(
        str(path), frame.reset_index(drop=True), np.arange(1, len(frame) + 1), unit="row"
    )
