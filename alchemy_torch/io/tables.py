"""nfdump CSV exports and plain CSV/Parquet tables with a column mapping.

nfdump (``nfdump -o csv``: ts,te,td,sa,da,sp,dp,pr,flg,...,ipkt,ibyt,opkt,obyt,...): every
row is a one-way flow sa->da; where ``opkt`` > 0 (bidirectional exporters) the reverse
direction becomes a second record. No responder is recorded, so the server is the endpoint
with the lower port (ties: da). The trailing 'Summary' block is ignored.

Plain tables use the canonical column names of :mod:`.schema`, or ``columns``, a mapping
{canonical name: column in the file}. Optional canonical columns may be left out: flows
``flags`` ('') ``duration`` (NaN) ``server`` (lower-port rule); http ``query`` (''; or give
``uri`` instead of ``path``/``query``) ``user_agent`` ``referrer`` ('') ``bytes_out``
``bytes_in`` ``status`` (0); dns ``qtype`` ``rcode`` ('') ``answers`` ``ttls`` ([]; lists, or
strings joined by ','); any kind ``label`` (0/1/-1 or Malicious/Benign/...) and
``detailed_label``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import schema
from .fields import Fields

NFDUMP_NUMERIC = frozenset({"td", "sp", "dp", "ipkt", "ibyt", "opkt", "obyt"})
NFDUMP_FIELDS = ("ts", "td", "sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt", "opkt", "obyt")
SUMMARY = b"Summary"

REQUIRED = {
    "flows": ("ts", "proto", "src", "dst", "sport", "dport", "pkts", "bytes"),
    "http": ("ts", "client", "server", "host", "method"),
    "dns": ("ts", "client", "query"),
}
OPTIONAL = {
    "flows": ("flags", "duration", "server"),
    "http": ("path", "query", "uri", "user_agent", "referrer", "bytes_out", "bytes_in", "status"),
    "dns": ("qtype", "rcode", "answers", "ttls"),
}
NUMERIC = frozenset(
    {
        "ts",
        "sport",
        "dport",
        "pkts",
        "bytes",
        "duration",
        "bytes_out",
        "bytes_in",
        "status",
        "label",
    }
)


def nfdump(f: Fields, options: dict) -> tuple[dict, dict]:
    """nfdump CSV rows -> one-way flow columns (no halves are dropped: rows are one-way)."""
    f.require("ts", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")
    c = f.commit(
        {
            "ts": f.time("ts"),
            "duration": f.number("td", integer=False, default=np.nan),
            "proto": f.text("pr", required=True).str.lower(),
            "src": f.text("sa", required=True),
            "dst": f.text("da", required=True),
            "sport": f.number("sp", lo=0, hi=65535),
            "dport": f.number("dp", lo=0, hi=65535),
            "ipkt": f.number("ipkt", lo=0),
            "ibyt": f.number("ibyt", lo=0),
            "opkt": f.number("opkt", lo=0, default=0),
            "obyt": f.number("obyt", lo=0, default=0),
            "flags": f.text("flg").str.replace(".", "", regex=False),
        }
    )
    server = schema.server_by_port(c["src"], c["dst"], c["sport"], c["dport"])
    forward = dict(
        src=c["src"],
        dst=c["dst"],
        sport=c["sport"],
        dport=c["dport"],
        pkts=c["ipkt"],
        bytes=c["ibyt"],
        flags=c["flags"],
    )
    reverse = dict(
        src=c["dst"],
        dst=c["src"],
        sport=c["dport"],
        dport=c["sport"],
        pkts=c["opkt"],
        bytes=c["obyt"],
        flags=c["flags"],
    )
    out = schema.interleave(
        dict(ts=c["ts"], proto=c["proto"], duration=c["duration"], server=server), forward, reverse
    )
    keep = np.stack([np.ones(len(server), bool), c["opkt"] > 0], axis=1).ravel()
    return {k: v[keep] for k, v in out.items()}, {}


NFDUMP = {"flows": nfdump}


def fields(kind: str) -> tuple:
    """The canonical fields a plain table of ``kind`` may have."""
    return REQUIRED[kind] + OPTIONAL[kind] + schema.LABELS


def table(kind: str):
    """The adapter for plain tables of ``kind``: typed columns, labels, derived columns."""

    def adapt(f: Fields, options: dict) -> tuple[dict, dict]:
        f.require(*REQUIRED[kind])
        out = f.commit({"ts": f.time("ts"), **_COLUMNS[kind](f), **f.label_columns()})
        return _DERIVED.get(kind, dict)(out), {}

    return adapt


def _flow_columns(f: Fields) -> dict:
    return dict(
        proto=f.text("proto", required=True).str.lower(),
        src=f.text("src", required=True),
        dst=f.text("dst", required=True),
        sport=f.number("sport", lo=0, hi=65535),
        dport=f.number("dport", lo=0, hi=65535),
        pkts=f.number("pkts", lo=0),
        bytes=f.number("bytes", lo=0),
        flags=f.text("flags"),
        duration=f.number("duration", integer=False, default=np.nan),
        server=f.text("server"),
    )


def _http_columns(f: Fields) -> dict:
    """HTTP columns; the request target as ``path`` and ``query``, or as one ``uri``."""
    target = (
        dict(path=f.text("path"), query=f.text("query"))
        if f.has("path")
        else dict(uri=f.text("uri", required=True))
    )
    return dict(
        **target,
        client=f.text("client", required=True),
        server=f.text("server", required=True),
        host=f.text("host"),
        method=f.text("method"),
        user_agent=f.text("user_agent"),
        referrer=f.text("referrer"),
        bytes_out=f.number("bytes_out", lo=0, default=0),
        bytes_in=f.number("bytes_in", lo=0, default=0),
        status=f.number("status", lo=0, default=0),
    )


def _dns_columns(f: Fields) -> dict:
    answers, n_answers = f.lists("answers")
    ttls, n_ttls = f.lists("ttls", integer=True)
    f.flag(
        n_answers != n_ttls, "ttls", "one TTL per answer expected", pd.Series(ttls, dtype=object)
    )
    return dict(
        client=f.text("client", required=True),
        query=schema.domain(f.text("query")),
        qtype=f.text("qtype"),
        rcode=f.text("rcode"),
        answers=answers,
        ttls=ttls,
    )


def _servers_by_port(out: dict) -> dict:
    """Flows without a ``server``: the lower port's end (:func:`.schema.server_by_port`)."""
    by_port = schema.server_by_port(out["src"], out["dst"], out["sport"], out["dport"])
    return {**out, "server": out["server"].where(out["server"] != "", by_port)}


def _split_uri(out: dict) -> dict:
    """HTTP records given one ``uri``: split into ``path`` and ``query``."""
    if "uri" not in out:
        return out
    out = dict(out)
    out["path"], out["query"] = schema.split_uri(out.pop("uri"))
    return out


_COLUMNS = {"flows": _flow_columns, "http": _http_columns, "dns": _dns_columns}
_DERIVED = {"flows": _servers_by_port, "http": _split_uri}
ADAPTERS = {kind: table(kind) for kind in _COLUMNS}
