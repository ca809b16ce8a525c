"""The public readers: a file (plain or gzip) -> a canonical DataFrame of one kind.

Reading is four steps: detect the format from the content; parse the container (delimited
text, Zeek TSV, JSON lines, Suricata EVE, Parquet) into a raw table whose columns carry the
format's field names (the file's own spellings resolved, see :func:`field_names`); validate and
convert the fields a kind needs (:class:`~.fields.Fields`, one adapter per format and kind);
build the canonical frame and its report (``df.attrs``).
"""

from __future__ import annotations

import gzip
import ipaddress
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import argus, cicflowmeter, eve, schema, squid, tables, unsw, zeek
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

FORMATS = (
    "zeek",
    "zeek-json",
    "zeek-csv",
    "argus",
    "nfdump",
    "csv",
    "parquet",
    "eve",
    "cicflowmeter",
    "unsw-nb15",
    "squid",
)
_SNIFF_BYTES = 1 << 16
#: format -> {kind: record columns its files never give (unknown, counted in attrs["filled"])}
NOT_LOGGED = {"eve": eve.NOT_LOGGED, "squid": squid.NOT_LOGGED}


def not_logged(kind: str) -> dict:
    """{record column of ``kind``: formats whose files never give it}, e.g. for http
    ``{"bytes_out": ("eve", "squid"), ...}`` (what ``describe()`` of the features names)."""
    out: dict = {}
    for fmt, columns in NOT_LOGGED.items():
        for column in columns.get(kind, ()):
            out[column] = (*out.get(column, ()), fmt)
    return out


#: formats with a published column layout, for files without a header line (``header=None``)
LAYOUTS = {"argus": argus.COLUMNS, "unsw-nb15": unsw.COLUMNS}
LAYOUT_NAMES = {"argus": "Argus binetflow (CTU-13)", "unsw-nb15": "UNSW-NB15"}
HEADERS = ("infer", None)


@dataclass(frozen=True)
class Fieldset:
    """A family of field names (one or more formats) and the adapters that turn them into
    canonical records (:mod:`.schema`).

    ``fields(kind)``: the fields read for a kind; ``numeric``: those parsed as numbers;
    ``adapters``: kind -> adapter(Fields, options) -> (columns, report); ``unset``: tokens that
    mean no value; ``spelling``: a file column -> the field it spells (alternative spellings).
    """

    name: str
    fields: Callable[[str], frozenset]
    numeric: frozenset
    adapters: dict
    unset: tuple = ()
    spelling: Callable[[str], str] = field(default=lambda column: column)


FIELDSETS = {
    "zeek": Fieldset("zeek", zeek.fields, zeek.NUMERIC, zeek.ADAPTERS, zeek.UNSET, zeek.spelling),
    "argus": Fieldset("argus", lambda kind: argus.FIELDS, argus.NUMERIC, argus.ADAPTERS),
    "nfdump": Fieldset(
        "nfdump", lambda kind: tables.NFDUMP_FIELDS, tables.NFDUMP_NUMERIC, tables.NFDUMP
    ),
    "table": Fieldset("table", tables.fields, tables.NUMERIC, tables.ADAPTERS),
    "eve": Fieldset("eve", eve.fields, frozenset(), eve.ADAPTERS),
    "cicflowmeter": Fieldset(
        "cicflowmeter",
        lambda kind: cicflowmeter.FIELDS,
        cicflowmeter.NUMERIC,
        cicflowmeter.ADAPTERS,
        spelling=cicflowmeter.spelling,
    ),
    "squid": Fieldset("squid", lambda kind: squid.FIELDS, squid.NUMERIC, squid.ADAPTERS),
    "unsw-nb15": Fieldset(
        "unsw-nb15",
        lambda kind: unsw.FIELDS,
        unsw.NUMERIC,
        unsw.ADAPTERS,
        unsw.UNSET,
        spelling=unsw.spelling,
    ),
}
FIELDSET_OF = {  # format -> fieldset (Parquet: sniffed from its column names)
    "zeek": "zeek",
    "zeek-json": "zeek",
    "zeek-csv": "zeek",
    "argus": "argus",
    "nfdump": "nfdump",
    "csv": "table",
    "eve": "eve",
    "cicflowmeter": "cicflowmeter",
    "unsw-nb15": "unsw-nb15",
    "squid": "squid",
}


def detect_format(path) -> str:
    """The format of ``path`` (one of FORMATS), from its content, not its name."""
    head = _head(path)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    first = text.split(b"\n", 1)[0]
    if text.startswith(b"#"):
        return "zeek"
    if text.startswith(b"{"):
        return "eve" if b'"event_type"' in first else "zeek-json"
    if squid.is_squid(first):
        return "squid"
    return _format_of(split_header(first.decode("utf-8", "replace")))


def _format_of(columns) -> str:
    """The format a table's column names (or, headerless, first row) reveal ('csv': none)."""
    cols = {str(c).strip() for c in columns}
    spelled = {zeek.spelling(c) for c in cols}
    if {"StartTime", "SrcAddr", "DstAddr", "TotPkts"} <= cols:
        return "argus"
    if {"id.orig_h", "id.resp_h"} <= spelled:
        return "zeek-csv"
    if {"ts", "te", "sa", "da"} <= cols:
        return "nfdump"
    if {"Flow Duration", "Tot Fwd Pkts"} <= {cicflowmeter.spelling(c) for c in cols}:
        return "cicflowmeter"
    if {"sbytes", "dbytes", "spkts", "dpkts"} <= {unsw.spelling(c) for c in cols}:
        return "unsw-nb15"
    if _is_unsw_row(list(columns)):
        return "unsw-nb15"
    return "csv"


def _is_unsw_row(values: list) -> bool:
    """A headerless UNSW-NB15 row: the published 49 columns, an address and epoch times."""
    if len(values) != len(unsw.COLUMNS):
        return False
    try:
        ipaddress.ip_address(str(values[0]).strip())
    except ValueError:
        return False
    stime, ltime = (str(values[unsw.COLUMNS.index(c)]).strip() for c in ("stime", "ltime"))
    return stime.isdigit() and ltime.isdigit()


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
    estimate_packets: bool = False,
    attempted: str = "malicious",
    header: str | None = "infer",
) -> pd.DataFrame:
    """One-way flow records (:mod:`.schema`) from Zeek conn, Argus, nfdump, Suricata EVE
    ``flow`` events, CICFlowMeter (CIC-IDS2017/2018) or UNSW-NB15 CSV, or a plain table.

    ``path``: a file (plain or gzip), or a folder: its log files (:func:`log_files`) read one
    by one, with a ``source`` column (the file name), ``attrs`` summed over the files and each
    file's own in ``attrs["files"]``.
    ``format``: one of FORMATS, detected from the content when None. ``columns``: {field the
    format's reader expects: column in the file}, for files whose columns are named
    differently: canonical names (:mod:`.schema`) for plain CSV/Parquet tables, the format's
    own names otherwise (Zeek: ``id.orig_h``, ...). ``lenient``: skip bad lines instead of
    raising :class:`DataFormatError`, with a warning. ``keep_empty``: keep the empty direction
    of bidirectional rows (with 0 packets). ``estimate_packets``: estimate packet counts that
    the file leaves unset (Zeek conn.log without the conn size analyzer) instead of raising.
    ``attempted``: the label of CICFlowMeter flows marked ``" - Attempted"`` (the corrected
    CIC-IDS2017/2018), ``"malicious"`` or ``"benign"`` (:mod:`.cicflowmeter`). ``header``:
    ``"infer"`` (a CSV's first line names its columns), or None for a CSV without a header
    line in a published layout (``format="argus"``: CTU-13's 15 binetflow columns,
    ``format="unsw-nb15"``: the 49 columns of UNSW-NB15_1..4.csv).

    ``df.attrs``: ``format``; ``skipped_lines`` (bad lines skipped, lenient only);
    ``dropped_halves`` (empty directions dropped); ``absent_fields`` (optional fields the file
    lacks); ``ignored`` ({what: count} of lines that are no records: other EVE event types,
    repeated header lines, ...); ``filled`` ({column: count} of records whose value was
    estimated or unknown: packets, durations, TTLs; see each format's module).
    """
    if attempted not in cicflowmeter.ATTEMPTED_READINGS:
        raise ValueError(
            f"attempted must be one of {cicflowmeter.ATTEMPTED_READINGS}, got {attempted!r}"
        )
    if header not in HEADERS:
        raise ValueError(f"header must be one of {HEADERS}, got {header!r}")
    if header is None and format not in LAYOUTS:
        raise ValueError(
            f"header=None reads a published column layout: pass format= one of "
            f"{tuple(LAYOUTS)}, got format={format!r}"
        )
    options = dict(keep_empty=keep_empty, estimate_packets=estimate_packets, attempted=attempted)
    return _read("flows", path, format, columns, lenient, options, header)


def read_http(
    path, format: str | None = None, *, columns: dict | None = None, lenient: bool = False
) -> pd.DataFrame:
    """HTTP request records (:mod:`.schema`) from Zeek http.log, Suricata EVE ``http``
    events, Squid's native access.log or a plain table. Arguments and ``attrs`` as
    :func:`read_flows`."""
    return _read("http", path, format, columns, lenient, {})


def read_dns(
    path, format: str | None = None, *, columns: dict | None = None, lenient: bool = False
) -> pd.DataFrame:
    """DNS records (:mod:`.schema`) from Zeek dns.log, Suricata EVE ``dns`` events or a plain
    table. Arguments and ``attrs`` as :func:`read_flows`."""
    return _read("dns", path, format, columns, lenient, {})


#: the names of log files in a folder (each also gzip-compressed, '.gz')
LOG_SUFFIXES = (".log", ".labeled", ".binetflow", ".csv", ".json", ".jsonl", ".parquet")
SKIPPED_LOG = "file of another Zeek log"


def log_files(path, kind: str | None = None) -> tuple[list[Path], int]:
    """The files a path stands for: itself, or for a folder its log files (names ending in
    :data:`LOG_SUFFIXES`, plain or '.gz'; hidden files skipped; sorted by name; sub-folders
    not read). Given ``kind``, Zeek TSV logs of another log (a folder's ``http.log`` when
    reading flows) are left out; returns (files, how many were left out)."""
    path = Path(path)
    if not path.is_dir():
        return [path], 0
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.name.removesuffix(".gz").endswith(LOG_SUFFIXES)
    )
    if not files:
        raise DataFormatError(
            path,
            None,
            None,
            f"a folder without log files (names ending {', '.join(LOG_SUFFIXES)}, plain or .gz)",
        )
    if kind is None:
        return files, 0
    logs = {p: _zeek_log(p) for p in files}
    mine = [p for p in files if not logs[p] or logs[p].startswith(zeek.LOG_PATH[kind])]
    return mine, len(files) - len(mine)


def _zeek_log(path: Path) -> str:
    """The ``#path`` of a Zeek TSV log ('conn', 'http', ...); '' for other files."""
    head = _head(path)
    if not head.startswith(b"#"):
        return ""
    for line in head.decode("utf-8", "replace").splitlines():
        if line.startswith("#path"):
            return line[len("#path") :].strip()
    return ""


def _read(kind: str, path, format, columns, lenient, options, header="infer") -> pd.DataFrame:
    if Path(path).is_dir():
        return _read_folder(kind, path, format, columns, lenient, options, header)
    path = str(Path(path))
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    table, spec, facts = _container(path, fmt, kind, columns, lenient, header)
    adapter = spec.adapters.get(kind)
    if adapter is None:
        raise DataFormatError(
            path, None, None, f"a {fmt} file holds {', '.join(spec.adapters)}, not {kind}"
        )
    f = Fields(table, lenient=lenient, unset=spec.unset, format=fmt)
    cols, report = adapter(f, {**facts, **options})
    out = schema.frame(kind, cols)
    out.attrs.update(
        format=fmt,
        skipped_lines=table.skipped,
        dropped_halves=report.get("dropped_halves", 0),
        absent_fields=sorted({table.source_name(n) for n in f.absent}),
        ignored={**table.ignored, **report.get("ignored", {})},
        filled=report.get("filled", {}),
    )
    if table.skipped:
        line, fld, msg = table.problems[0]
        warnings.warn(
            f"{path}: skipped {table.skipped} malformed {table.unit}(s); first at "
            f"{table.unit} {line}, field {fld!r}: {msg}",
            stacklevel=3,
        )
    return out


def _read_folder(kind: str, folder, format, columns, lenient, options, header) -> pd.DataFrame:
    """The log files of a folder (:func:`log_files`), one capture each: their records in file
    order with a ``source`` column (the file name); ``attrs`` summed over the files, each
    file's own under ``attrs["files"]``."""
    files, left_out = log_files(folder, kind)
    frames = [_read(kind, p, format, columns, lenient, options, header) for p in files]
    out = pd.concat(
        [df.assign(**{schema.SOURCE: p.name}) for p, df in zip(files, frames)], ignore_index=True
    )
    ignored = _summed(df.attrs["ignored"] for df in frames)
    if left_out:
        ignored[SKIPPED_LOG] = left_out
    out.attrs = dict(
        format=",".join(dict.fromkeys(df.attrs["format"] for df in frames)),
        skipped_lines=sum(df.attrs["skipped_lines"] for df in frames),
        dropped_halves=sum(df.attrs["dropped_halves"] for df in frames),
        absent_fields=sorted({f for df in frames for f in df.attrs["absent_fields"]}),
        ignored=ignored,
        filled=_summed(df.attrs["filled"] for df in frames),
        files={p.name: dict(df.attrs) for p, df in zip(files, frames)},
    )
    return out


def _summed(counts) -> dict:
    """{what: count} dictionaries added up."""
    return dict(sum(map(Counter, counts), Counter()))


def _container(path, fmt, kind, columns, lenient, header) -> tuple[RawTable, Fieldset, dict]:
    """Parse the container; returns (raw table with field names, fieldset, header facts)."""
    if fmt == "parquet":
        table = parse_parquet(path)
        names = list(table.frame.columns)
        sniffed = set(names) - set((columns or {}).values()) | set(columns or {})
        spec = FIELDSETS[FIELDSET_OF[_format_of(sniffed)]]
        table.rename(field_names(path, names, None, spec, kind, columns))
        return table, spec, {}
    spec = FIELDSETS[FIELDSET_OF[fmt]]
    text = Text(path, read_bytes(path), quote=fmt not in ("zeek", "zeek-json", "eve", "squid"))
    if fmt == "squid":
        if columns:
            raise ValueError("columns= does not apply to Squid logs (fixed layout, see io.squid)")
        return squid.read(text, lenient=lenient), spec, {}
    if fmt == "eve":
        if columns:
            raise ValueError("columns= does not apply to EVE files (nested JSON, see io.eve)")
        return eve.read(text, kind, lenient=lenient), spec, {}
    if fmt == "zeek-json":
        table = parse_json_lines(text, lenient=lenient)
        table.rename(field_names(path, list(table.frame.columns), None, spec, kind, columns))
        return table, spec, {}
    if fmt == "zeek":
        table, facts = zeek.read_tsv(
            text,
            kind,
            lambda names, line: field_names(path, names, line, spec, kind, columns),
            wanted(spec, kind),
            spec.numeric,
            lenient=lenient,
        )
        return table, spec, facts
    return _delimited(text, fmt, kind, spec, columns, lenient, header), spec, {}


def _delimited(text: Text, fmt, kind, spec: Fieldset, columns, lenient, header) -> RawTable:
    """A comma-separated table: header (or a published layout, :data:`LAYOUTS`), records,
    fields.

    Lines that are no records are dropped and counted: repeated header lines (concatenated
    exports), rows of separators only, nfdump's trailing summary. A first line that looks
    like data (:func:`no_header`) is an error that says how to read the file.
    """
    records, ignored = np.flatnonzero(~text.empty), {}
    first = split_header(text.record(records[0])) if len(records) else []
    if header is None or (fmt == "unsw-nb15" and _is_unsw_row(first)):
        names, header_line = list(LAYOUTS[fmt]), None
    else:
        line = text.data[text.starts[records[0]] : text.ends[records[0]]] if len(records) else b""
        names, header_line, records = csv_header(text, records)
        if not columns and no_header(names):
            raise DataFormatError(text.path, header_line, None, no_header_message(fmt, names))
        records = _drop(records, text.same_as(records, line), "repeated header", ignored)
    if fmt == "nfdump":
        summary = np.flatnonzero(text.same_as(records, tables.SUMMARY))
        tail = np.arange(len(records)) >= (summary[0] if len(summary) else len(records))
        records = _drop(records, tail, "nfdump summary", ignored)
    counts = text.field_counts(",", records)
    separators_only = counts - 1 == text.ends[records] - text.starts[records]
    records = _drop(records, separators_only, "row of separators only", ignored)
    fields = field_names(text.path, names, header_line, spec, kind, columns)
    usecols = [c for c in fields if c in wanted(spec, kind)]
    table = parse_delimited(
        text,
        records,
        fields,
        sep=",",
        lenient=lenient,
        header_line=header_line,
        usecols=usecols,
        dtype={c: str for c in usecols if c not in spec.numeric},
        na_values=[""],
        counts=counts[~separators_only],
    )
    table.names.update({f: n for f, n in zip(fields, names) if f != n})
    table.columns = names
    table.ignored.update(ignored)
    return table


def no_header(names: list) -> bool:
    """Whether a CSV's first line is data rather than column names: at least half of its
    values are numbers, IP addresses or empty (no header any format writes)."""
    return len(names) > 1 and 2 * sum(map(_is_value, names)) >= len(names)


def _is_value(name: str) -> bool:
    if name == "":
        return True
    try:
        float(name)
        return True
    except ValueError:
        pass
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def no_header_message(fmt: str, first: list) -> str:
    """Says a CSV has no header line and, where its column count is that of a published
    layout (:data:`LAYOUTS`), how to read it."""
    shown = ", ".join(repr(v) for v in first[:4])
    message = f"no header line: the first line is data ({shown}, ...; {len(first)} columns)"
    layouts = [f for f, names in LAYOUTS.items() if len(names) == len(first)]
    if layouts:
        layout = layouts[0]
        return (
            f"{message}; {len(first)} columns is the layout of {LAYOUT_NAMES[layout]}: read it "
            f"with io.read_flows(path, format={layout!r}, header=None)"
        )
    known = ", ".join(f"{LAYOUT_NAMES[f]} {len(n)}" for f, n in LAYOUTS.items())
    return (
        f"{message}, read as {fmt}; add the line of column names, or pass header=None with "
        f"the format of a published layout ({known} columns)"
    )


def _drop(records: np.ndarray, drop: np.ndarray, what: str, ignored: dict) -> np.ndarray:
    """``records`` without those marked ``drop``, counted in ``ignored[what]``."""
    if drop.any():
        ignored[what] = ignored.get(what, 0) + int(drop.sum())
    return records[~drop]


def wanted(spec: Fieldset, kind: str) -> set:
    """The fields read for ``kind``."""
    return set(spec.fields(kind))


def field_names(path, names, header_line, spec: Fieldset, kind: str, columns) -> list[str]:
    """The field name of each file column: ``columns`` ({field: file column}) first, then the
    format's alternative spellings where one column alone spells a field.

    Duplicate column names get pandas' '.1', '.2' suffixes. A field spelled by two columns,
    neither of which has the field's exact name, is ambiguous (an error naming both).
    """
    names = _deduplicated(names)
    mapping = dict(columns or {})
    known = wanted(spec, kind)
    for name, column in mapping.items():
        if name not in known:
            raise DataFormatError(
                path,
                None,
                name,
                f"not a {spec.name} {kind} field; known: {', '.join(sorted(known))}"
                + (
                    " (canonical names need format='csv' or 'parquet')"
                    if spec.name != "table"
                    else ""
                ),
            )
        if column not in names:
            raise DataFormatError(
                path, header_line, column, f"missing field (found: {', '.join(names)})"
            )
    by_column = {column: name for name, column in mapping.items()}
    claimed = set(mapping) | {n for n in names if n not in by_column}
    spelled: dict[str, list[str]] = {}
    for n in names:
        if n not in by_column and spec.spelling(n) != n and spec.spelling(n) not in claimed:
            spelled.setdefault(spec.spelling(n), []).append(n)
    for name, variants in spelled.items():
        if len(variants) > 1 and name in known:
            raise DataFormatError(
                path,
                header_line,
                variants[1],
                f"{variants[0]!r} and {variants[1]!r} both mean {name!r}; "
                f"choose one with columns={{{name!r}: ...}}",
            )
        by_column.setdefault(variants[0], name)
    return [by_column.get(n, n) for n in names]


def _deduplicated(names) -> list[str]:
    out, seen = [], {}
    for n in map(str, names):
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}.{k}")
    return out
