"""Zeek logs: the TSV container (``#fields`` header) and the conn/http/dns adapters.

The adapters read Zeek field names from any container: TSV, JSON lines, or CSV/Parquet
conversions such as IoT-23's. Stratosphere ``*.log.labeled`` files add ``label`` and
``detailedlabel`` (CTU) or ``detailed-label`` (IoT-23) columns; IoT-23's originals separate
those last columns with spaces instead of tabs, which is handled here.

Logs written with ``redef Log::default_scope_sep = "_"`` (``id_orig_h`` for ``id.orig_h``)
are read as they are; other renamings (``Log::default_field_name_map``) take the readers'
``columns={"id.orig_h": "src", ...}``.

conn.log packet counts (``orig_pkts``, ``resp_pkts``) and IP bytes come from Zeek's conn size
analyzer; where a log has them unset ('-'), strict reading stops with an error saying so,
``lenient=True`` skips those lines, and ``estimate_packets=True`` estimates them instead: a
direction's packets are at least one per history letter of that direction and one per
1460 payload bytes (``max(len(letters), ceil(bytes / 1460))``, a lower bound), its bytes are
the payload bytes (``orig_bytes``, 0 if unset); ``df.attrs["filled"]["pkts"]`` counts the
records estimated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import directions, schema
from .errors import DataFormatError
from .fields import Fields
from .source import RawTable, Text, parse_delimited

UNSET = ("-", "(empty)")
NUMERIC = frozenset(
    {
        "ts",
        "id.orig_p",
        "id.resp_p",
        "duration",
        "orig_bytes",
        "resp_bytes",
        "missed_bytes",
        "orig_pkts",
        "orig_ip_bytes",
        "resp_pkts",
        "resp_ip_bytes",
        "request_body_len",
        "response_body_len",
        "status_code",
        "trans_depth",
        "qtype",
        "rcode",
        "qclass",
        "trans_id",
        "rtt",
    }
)
DETAIL = ("detailed-label", "detailedlabel", "detailed_label")
FIELDS = {  # the Zeek fields each kind reads (others are not parsed)
    "flows": (
        "ts",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "duration",
        "orig_pkts",
        "resp_pkts",
        "orig_ip_bytes",
        "resp_ip_bytes",
        "orig_bytes",
        "resp_bytes",
        "history",
    ),
    "http": (
        "ts",
        "id.orig_h",
        "id.resp_h",
        "method",
        "host",
        "uri",
        "referrer",
        "user_agent",
        "request_body_len",
        "response_body_len",
        "status_code",
    ),
    "dns": (
        "ts",
        "id.orig_h",
        "query",
        "qtype",
        "qtype_name",
        "rcode",
        "rcode_name",
        "answers",
        "TTLs",
    ),
}
LOG_PATH = {"flows": "conn", "http": "http", "dns": "dns"}
MSS = 1460  # payload bytes per packet assumed by estimate_packets
UNSET_PACKETS = (
    "unset: this conn.log has no packet counts (Zeek's conn size analyzer was off); "
    "lenient=True skips such lines, estimate_packets=True estimates them from bytes"
)
_SCOPED = {f.replace(".", "_"): f for names in FIELDS.values() for f in names if "." in f}


def fields(kind: str) -> tuple:
    """The Zeek fields read for ``kind`` (labels included)."""
    return FIELDS[kind] + ("label", *DETAIL)


def spelling(column: str) -> str:
    """The Zeek field a column spells: ``id_orig_h`` (scope separator '_') is ``id.orig_h``."""
    return _SCOPED.get(column, column)


def read_tsv(
    text: Text, kind: str, field_names, wanted: set, numeric: set, *, lenient: bool
) -> tuple[RawTable, dict]:
    """Parse the ``wanted`` fields of a Zeek TSV log (``numeric`` ones as numbers); returns
    the table and header facts (``set_separator``). ``field_names(columns, header line)``
    gives the field name of each column."""
    header, fields_line = _header(text)
    if not header.get("fields"):
        raise DataFormatError(text.path, None, "#fields", "Zeek log without a '#fields' line")
    log = (header.get("path") or [""])[0]
    if log and not log.startswith(LOG_PATH[kind]):
        raise DataFormatError(
            text.path, header["path_line"], "#path", f"a Zeek {log!r} log cannot be read as {kind}"
        )
    columns = field_names(header["fields"], fields_line)
    # IoT-23 originals: 'tunnel_parents   label   detailed-label' is one tab-field.
    compound = {c: c.split() for c in columns if len(c.split()) > 1}
    usecols = [c for c in columns if c in wanted or set(compound.get(c, ())) & wanted]
    records = np.flatnonzero(~text.comment & ~text.empty)
    table = parse_delimited(
        text,
        records,
        columns,
        sep=header["separator"],
        lenient=lenient,
        header_line=fields_line,
        usecols=usecols,
        dtype={c: str for c in usecols if c not in numeric},
        na_values=(header.get("unset_field") or ["-"])[:1],
    )
    table.names.update({f: c for f, c in zip(columns, header["fields"]) if f != c})
    table.columns = list(header["fields"])
    for col, parts in compound.items():
        if col in table.frame.columns:
            _split_compound(table, col, parts, lenient)
    return table, {"set_separator": (header.get("set_separator") or [","])[0]}


def _header(text: Text) -> tuple[dict, int | None]:
    """Header directives of the '#' lines; a second, different '#fields' line is an error."""
    header: dict = {"separator": "\t"}
    fields_line = None
    for i in np.flatnonzero(text.comment):
        line = text.record(i)
        if line.startswith("#separator"):
            try:
                value = line.partition(" ")[2].encode().decode("unicode_escape")
            except UnicodeDecodeError:  # a broken escape such as '\x0'
                value = line.partition(" ")[2]
            if len(value) != 1:
                raise DataFormatError(
                    text.path,
                    int(text.number[i]),
                    "#separator",
                    f"not a one-character separator: {value!r}",
                )
            header["separator"] = value
            continue
        key, *values = line[1:].split(header["separator"])
        if key == "fields":
            if fields_line is not None and values != header["fields"]:
                raise DataFormatError(
                    text.path, int(text.number[i]), "#fields", "the header changes in mid-file"
                )
            fields_line = fields_line or int(text.number[i])
        elif key == "path":
            header["path_line"] = int(text.number[i])
        header.setdefault(key, values)
    return header, fields_line


def _split_compound(table: RawTable, col: str, parts: list[str], lenient: bool) -> None:
    """Split a whitespace-joined field (IoT-23 label columns) into its named parts."""
    unset = " ".join(["-"] * len(parts))  # an unset compound field: every part unset
    split = (
        table.frame[col]
        .astype(object)
        .fillna(unset)
        .str.split(r"\s+", n=len(parts) - 1, regex=True, expand=True)
    )
    bad = (split.shape[1] < len(parts)) | split.isna().any(axis=1).to_numpy()
    if np.any(bad):
        line = int(table.line[np.argmax(bad)])
        msg = f"expected {len(parts)} space-separated values"
        if not lenient:
            raise DataFormatError(table.path, line, col, msg)
        keep = ~np.broadcast_to(bad, (len(split),))
        split = split.loc[keep]
        table.skip(keep, [(line, col, msg)])
    frame = table.frame.drop(columns=col)
    for j, name in enumerate(parts):
        frame[name] = split[j].to_numpy(object) if j < split.shape[1] else np.nan
    table.frame = frame


def conn(f: Fields, options: dict) -> tuple[dict, dict]:
    """conn.log -> one-way flows (orig->resp and resp->orig; server = responder).

    bytes are IP-level (``orig_ip_bytes``/``resp_ip_bytes``), falling back to payload
    bytes where a log lacks them; flags are the history letters of each direction.
    """
    f.require("ts", "id.orig_h", "id.resp_h", "orig_pkts", "resp_pkts")
    history = f.text("history")
    oflags = history.str.replace(r"[^A-Z]", "", regex=True)
    rflags = history.str.replace(r"[^a-z]", "", regex=True).str.upper()
    estimate = options.get("estimate_packets", False)
    opkts, obytes, oguess = _direction(f, "orig", oflags, estimate)
    rpkts, rbytes, rguess = _direction(f, "resp", rflags, estimate)
    cols = f.commit(
        {
            "ts": f.time("ts"),
            "proto": f.text("proto", required=True).str.lower(),
            "src": f.text("id.orig_h", required=True),
            "dst": f.text("id.resp_h", required=True),
            "sport": f.number("id.orig_p", **schema.PORT),
            "dport": f.number("id.resp_p", **schema.PORT),
            "opkts": opkts,
            "rpkts": rpkts,
            "obytes": obytes,
            "rbytes": rbytes,
            "oguess": oguess,
            "rguess": rguess,
            "oflags": oflags,
            "rflags": rflags,
            "duration": f.number("duration", integer=False, default=np.nan),
            **f.label_columns(DETAIL),
        }
    )
    out, dropped = directions.one_way(
        cols,
        {
            "pkts": ("opkts", "rpkts"),
            "bytes": ("obytes", "rbytes"),
            "flags": ("oflags", "rflags"),
            "guessed": ("oguess", "rguess"),
        },
        keep_empty=options.get("keep_empty", False),
    )
    guessed = int(out.pop("guessed").sum())
    return out, {"dropped_halves": dropped, "filled": {"pkts": guessed} if guessed else {}}


def _direction(f: Fields, end: str, flags: pd.Series, estimate: bool):
    """(packets, bytes, estimated?) of one direction (``end`` 'orig' or 'resp'), arrays of
    the table's length; unset counts are an error unless ``estimate`` (module docstring)."""
    pkts_name, ip_name, payload_name = f"{end}_pkts", f"{end}_ip_bytes", f"{end}_bytes"
    unset = f.is_unset(pkts_name)
    pkts = f.number(pkts_name, **schema.COUNT, default=0)
    if not f.has(ip_name):  # logs without IP bytes: payload bytes
        return pkts, f.number(payload_name, **schema.COUNT, default=0), np.zeros(len(pkts), bool)
    ip_unset = f.is_unset(ip_name)
    ip_bytes = f.number(ip_name, **schema.COUNT, default=0)
    if not estimate:
        raw = f.frame[pkts_name].reset_index(drop=True)
        f.flag(unset, f"{end}_pkts", UNSET_PACKETS, raw)
        f.flag(ip_unset & ~unset, ip_name, UNSET_PACKETS, f.frame[ip_name].reset_index(drop=True))
        return pkts, ip_bytes, np.zeros(len(pkts), bool)
    payload = f.number(payload_name, **schema.COUNT, default=0)
    guess = np.maximum(flags.str.len().to_numpy(np.int64), -(-payload // MSS))
    return np.where(unset, guess, pkts), np.where(ip_unset, payload, ip_bytes), unset


def http(f: Fields, options: dict) -> tuple[dict, dict]:
    """http.log -> requests (client = orig_h, server = resp_h, uri split at '?')."""
    f.require("ts", "id.orig_h", "id.resp_h", "uri")
    cols = f.commit(
        {
            "ts": f.time("ts"),
            "client": f.text("id.orig_h", required=True),
            "server": f.text("id.resp_h", required=True),
            "host": f.text("host"),
            "uri": f.text("uri"),
            "method": f.text("method"),
            "user_agent": f.text("user_agent"),
            "referrer": f.text("referrer"),
            "bytes_out": f.number("request_body_len", **schema.COUNT, default=0),
            "bytes_in": f.number("response_body_len", **schema.COUNT, default=0),
            "status": f.number("status_code", **schema.STATUS, default=0),
            **f.label_columns(DETAIL),
        }
    )
    cols["path"], cols["query"] = schema.split_uri(cols.pop("uri"))
    return cols, {}


def dns(f: Fields, options: dict) -> tuple[dict, dict]:
    """dns.log -> queries (query lower-cased; answers and TTLs as per-record lists)."""
    f.require("ts", "id.orig_h", "query")
    sep = options.get("set_separator", ",")
    answers, n_answers = f.lists("answers", sep=sep)
    ttls, n_ttls = f.lists("TTLs", sep=sep, integer=True)
    f.flag(
        n_answers != n_ttls, "TTLs", "one TTL per answer expected", pd.Series(ttls, dtype=object)
    )
    cols = f.commit(
        {
            "ts": f.time("ts"),
            "client": f.text("id.orig_h", required=True),
            "query": schema.domain(f.text("query")),
            "qtype": _named(f, "qtype_name", "qtype"),
            "rcode": _named(f, "rcode_name", "rcode"),
            "answers": answers,
            "ttls": ttls,
            **f.label_columns(DETAIL),
        }
    )
    return cols, {}


def _named(f: Fields, name: str, code: str) -> pd.Series:
    """The ``*_name`` field, or the numeric code as text where the name is unset."""
    names = f.text(name)
    codes = f.text(code).str.replace(r"\.0$", "", regex=True)
    return names.where(names != "", codes)


ADAPTERS = {"flows": conn, "http": http, "dns": dns}
