"""Zeek logs: the TSV container (``#fields`` header) and the conn/http/dns adapters.

The adapters read Zeek field names from any container: TSV, JSON lines, or CSV/Parquet
conversions such as IoT-23's. Stratosphere ``*.log.labeled`` files add ``label`` and
``detailedlabel`` (CTU) or ``detailed-label`` (IoT-23) columns; IoT-23's originals separate
those last columns with spaces instead of tabs, which is handled here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import schema
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


def read_tsv(
    text: Text, kind: str, wanted: set, numeric: set, *, lenient: bool
) -> tuple[RawTable, dict]:
    """Parse the ``wanted`` columns of a Zeek TSV log (``numeric`` ones as numbers); returns
    the table and header facts (``set_separator``)."""
    header, fields_line = _header(text)
    if not header.get("fields"):
        raise DataFormatError(text.path, None, "#fields", "Zeek log without a '#fields' line")
    log = (header.get("path") or [""])[0]
    if log and not log.startswith(LOG_PATH[kind]):
        raise DataFormatError(
            text.path, header["path_line"], "#path", f"a Zeek {log!r} log cannot be read as {kind}"
        )
    columns = header["fields"]
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


def labels(f: Fields) -> dict:
    """The per-record ``label`` and ``detailed_label`` columns, where the log has them."""
    out = {}
    if f.has("label"):
        out["label"] = f.labels("label")
    detail = f.first(*DETAIL)
    if detail:
        out["detailed_label"] = f.text(detail)
    return out


def conn(f: Fields, meta: dict) -> tuple[dict, int]:
    """conn.log -> one-way flows (orig->resp and resp->orig; server = responder).

    bytes are IP-level (``orig_ip_bytes``/``resp_ip_bytes``), falling back to payload
    bytes where a log lacks them; flags are the history letters of each direction.
    """
    f.require("ts", "id.orig_h", "id.resp_h", "orig_pkts", "resp_pkts")
    ob, rb = (
        ("orig_ip_bytes", "resp_ip_bytes")
        if f.has("orig_ip_bytes")
        else ("orig_bytes", "resp_bytes")
    )
    default = None if ob == "orig_ip_bytes" else 0
    history = f.text("history")
    cols = f.commit(
        {
            "ts": f.time("ts"),
            "proto": f.text("proto", required=True).str.lower(),
            "orig": f.text("id.orig_h", required=True),
            "resp": f.text("id.resp_h", required=True),
            "oport": f.number("id.orig_p", lo=0, hi=65535),
            "rport": f.number("id.resp_p", lo=0, hi=65535),
            "opkts": f.number("orig_pkts", lo=0),
            "rpkts": f.number("resp_pkts", lo=0),
            "obytes": f.number(ob, lo=0, default=default),
            "rbytes": f.number(rb, lo=0, default=default),
            "oflags": history.str.replace(r"[^A-Z]", "", regex=True),
            "rflags": history.str.replace(r"[^a-z]", "", regex=True).str.upper(),
            "duration": f.number("duration", integer=False, default=np.nan),
            **labels(f),
        }
    )
    common = {k: cols[k] for k in ("ts", "proto", "duration", *schema.LABELS) if k in cols}
    common["server"] = cols["resp"]
    return schema.one_way(
        common,
        dict(
            src=cols["orig"],
            dst=cols["resp"],
            sport=cols["oport"],
            dport=cols["rport"],
            pkts=cols["opkts"],
            bytes=cols["obytes"],
            flags=cols["oflags"],
        ),
        dict(
            src=cols["resp"],
            dst=cols["orig"],
            sport=cols["rport"],
            dport=cols["oport"],
            pkts=cols["rpkts"],
            bytes=cols["rbytes"],
            flags=cols["rflags"],
        ),
        keep_empty=meta["keep_empty"],
    )


def http(f: Fields, meta: dict) -> tuple[dict, int]:
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
            "bytes_out": f.number("request_body_len", lo=0, default=0),
            "bytes_in": f.number("response_body_len", lo=0, default=0),
            "status": f.number("status_code", lo=0, default=0),
            **labels(f),
        }
    )
    cols["path"], cols["query"] = schema.split_uri(cols.pop("uri"))
    return cols, 0


def dns(f: Fields, meta: dict) -> tuple[dict, int]:
    """dns.log -> queries (query lower-cased; answers and TTLs as per-record lists)."""
    f.require("ts", "id.orig_h", "query")
    sep = meta.get("set_separator", ",")
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
            **labels(f),
        }
    )
    return cols, 0


def _named(f: Fields, name: str, code: str) -> pd.Series:
    """The ``*_name`` field, or the numeric code as text where the name is unset."""
    names = f.text(name)
    codes = f.text(code).str.replace(r"\.0$", "", regex=True)
    return names.where(names != "", codes)


ADAPTERS = {"flows": conn, "http": http, "dns": dns}
