"""The public readers: a file (plain or gzip) -> a canonical DataFrame of one kind."""

from __future__ import annotations

import csv
import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import argus, schema, tables, zeek
from .errors import DataFormatError
from .fields import Fields
from .source import (
    GZIP_MAGIC,
    PARQUET_MAGIC,
    RawTable,
    Text,
    csv_header,
    parse_delimited,
    parse_json_lines,
    parse_parquet,
    read_bytes,
    split_header,
)

FORMATS = ("zeek", "zeek-json", "zeek-csv", "argus", "nfdump", "csv", "parquet")
_SNIFF_BYTES = 1 << 16
_SCHEMA = {
    "zeek": "zeek",
    "zeek-json": "zeek",
    "zeek-csv": "zeek",
    "argus": "argus",
    "nfdump": "nfdump",
    "csv": "table",
}  # format -> field schema (Parquet: sniffed)
# field schema -> (fields to parse for a kind, numeric fields, adapter per kind)
_ADAPTERS = {
    "zeek": (
        lambda kind: set(zeek.FIELDS[kind]) | {"label", *zeek.DETAIL},
        zeek.NUMERIC,
        zeek.ADAPTERS,
    ),
    "argus": (lambda kind: set(argus.FIELDS), argus.NUMERIC, {"flows": argus.binetflow}),
    "nfdump": (
        lambda kind: set(tables.NFDUMP_FIELDS),
        tables.NFDUMP_NUMERIC,
        {"flows": tables.nfdump},
    ),
}


def detect_format(path) -> str:
    """The format of ``path`` (one of FORMATS), from its content, not its name."""
    head = _head(path)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#"):
        return "zeek"
    if text.startswith(b"{"):
        return "zeek-json"
    first = text.split(b"\n", 1)[0].decode("utf-8", "replace")
    try:
        return _format_of(split_header(first))
    except csv.Error:  # not a header: read as a plain table, whose reader says what is wrong
        return "csv"


def _format_of(columns) -> str:
    """The format a table's column names reveal ('csv' when none)."""
    cols = {str(c).strip() for c in columns}
    if {"StartTime", "SrcAddr", "DstAddr", "TotPkts"} <= cols:
        return "argus"
    if {"id.orig_h", "id.resp_h"} <= cols:
        return "zeek-csv"
    if {"ts", "te", "sa", "da"} <= cols:
        return "nfdump"
    return "csv"


def _head(path) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
        if head.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise DataFormatError(path, None, None, f"cannot read file: {exc}") from exc
    return head


def read_flows(
    path,
    format: str | None = None,
    *,
    columns: dict | None = None,
    lenient: bool = False,
    keep_empty: bool = False,
) -> pd.DataFrame:
    """One-way flow records (:mod:`.schema`) from Zeek conn, Argus, nfdump or a plain table.

    ``format``: one of FORMATS, detected from the content when None. ``columns``: for plain
    CSV/Parquet, {canonical name: file column}. ``lenient``: skip bad lines instead of raising
    :class:`DataFormatError`, with a warning; ``df.attrs`` reports ``skipped_lines``,
    ``dropped_halves`` (empty directions of bidirectional rows; kept with 0 packets if
    ``keep_empty``), ``absent_fields`` and ``format``.
    """
    return _read("flows", path, format, columns, lenient, keep_empty)


def read_http(
    path, format: str | None = None, *, columns: dict | None = None, lenient: bool = False
) -> pd.DataFrame:
    """HTTP request records (:mod:`.schema`) from Zeek http.log or a plain table.

    Arguments and ``attrs`` as :func:`read_flows`.
    """
    return _read("http", path, format, columns, lenient)


def read_dns(
    path, format: str | None = None, *, columns: dict | None = None, lenient: bool = False
) -> pd.DataFrame:
    """DNS records (:mod:`.schema`) from Zeek dns.log or a plain table.

    Arguments and ``attrs`` as :func:`read_flows`.
    """
    return _read("dns", path, format, columns, lenient)


def _read(kind: str, path, format, columns, lenient, keep_empty=False) -> pd.DataFrame:
    path = str(Path(path))
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    table, schema_name, meta = _container(path, fmt, kind, columns, lenient)
    f = Fields(table, lenient=lenient, unset=zeek.UNSET if schema_name == "zeek" else ())
    if schema_name == "table":
        adapter = tables.table(kind)
        tables.rename(f, kind, columns)
    else:
        adapter = _ADAPTERS[schema_name][2].get(kind)
        if adapter is None:
            raise DataFormatError(path, None, None, f"a {schema_name} file holds flows, not {kind}")
    cols, dropped = adapter(f, {**meta, "keep_empty": keep_empty})
    out = schema.frame(kind, cols)
    out.attrs.update(
        format=fmt,
        skipped_lines=table.skipped,
        dropped_halves=dropped,
        absent_fields=sorted(set(f.absent)),
    )
    if table.skipped:
        line, fld, msg = table.problems[0]
        warnings.warn(
            f"{path}: skipped {table.skipped} malformed {table.unit}(s); first at "
            f"{table.unit} {line}, field {fld!r}: {msg}",
            stacklevel=3,
        )
    return out


def _container(path, fmt, kind, columns, lenient) -> tuple[RawTable, str, dict]:
    """Parse the container; returns (raw table, field schema, schema metadata).

    The field schema follows the format, except that a ``columns`` mapping always means a
    plain table; Parquet files are sniffed by their column names.
    """
    name = "table" if columns is not None else _SCHEMA.get(fmt)
    if fmt == "parquet":
        table = parse_parquet(path)
        return table, name or _SCHEMA[_format_of(table.frame.columns)], {}
    wanted, numeric = _fields(name, kind, columns)
    data = read_bytes(path)
    if fmt == "zeek":
        table, meta = zeek.read_tsv(
            Text(path, data, quote=False), kind, wanted, numeric, lenient=lenient
        )
        return table, name, meta
    if fmt == "zeek-json":
        return parse_json_lines(Text(path, data, quote=False), lenient=lenient), name, {}
    text = Text(path, data, quote=True)
    names, header_line, records = csv_header(text, np.flatnonzero(~text.empty))
    if name == "nfdump":
        records = _before(text, records, tables.SUMMARY)
    usecols = [c for c in names if c in wanted]
    table = parse_delimited(
        text,
        records,
        names,
        sep=",",
        lenient=lenient,
        header_line=header_line,
        usecols=usecols,
        dtype={c: str for c in usecols if c not in numeric},
        na_values=[""],
    )
    return table, name, {}


def _fields(name: str, kind: str, columns: dict | None) -> tuple[set, set]:
    """(file columns to parse, those to parse as numbers) for a field schema and kind."""
    if name == "table":
        mapping = columns or {}
        canonical = set(tables.REQUIRED[kind]) | set(tables.OPTIONAL[kind]) | set(schema.LABELS)
        return (
            {mapping.get(c, c) for c in canonical} | set(mapping.values()),
            {mapping.get(c, c) for c in tables.NUMERIC},
        )
    return _ADAPTERS[name][0](kind), _ADAPTERS[name][1]


def _before(text: Text, records: np.ndarray, marker: bytes) -> np.ndarray:
    """``records`` up to (not including) the first one that is exactly ``marker``."""
    same_length = records[text.ends[records] - text.starts[records] == len(marker)]
    hits = [i for i in same_length if text.data[text.starts[i] : text.ends[i]] == marker]
    return records[records < hits[0]] if hits else records
