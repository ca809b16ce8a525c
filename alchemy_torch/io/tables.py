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

from . import directions, schema
from .fields import Fields

NFDUMP_NUMERIC = frozenset({"td", "sp", "dp", "ipkt", "ibyt", "opkt", "obyt"})
NFDUMP_FIELDS = ("ts", "td", "sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt", "opkt", "obyt")
SUMMARY = b"Summary"

#: what a plain table of each kind may leave out (with the default the module docstring
#: names); every other canonical column (:mod:`.schema`) is required
OMITTABLE = {
    "flows": ("flags", "duration", "server"),
    "http": ("path", "query", "user_agent", "referrer", "bytes_out", "bytes_in", "status"),
    "dns": ("qtype", "rcode", "answers", "ttls"),
}
REQUIRED = {
    kind: tuple(name for name in schema.COLUMNS[kind] if name not in OMITTABLE[kind])
    for kind in schema.KINDS
}
OPTIONAL = {kind: OMITTABLE[kind] + (("uri",) if kind == "http" else ()) for kind in schema.KINDS}
NUMERIC = frozenset(c.name for s in schema.SCHEMAS.values() for c in s.of("float64", "int64")) | {
    "label"
}


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
            "sport": f.number("sp", **schema.PORT),
            "dport": f.number("dp", **schema.PORT),
            "ipkt": f.number("ipkt", **schema.COUNT),
            "ibyt": f.number("ibyt", **schema.COUNT),
            "opkt": f.number("opkt", **schema.COUNT, default=0),
            "obyt": f.number("obyt", **schema.COUNT, default=0),
            "flags": f.text("flg").str.replace(".", "", regex=False),
        }
    )
    out, _ = directions.one_way(
        c,
        {"pkts": ("ipkt", "opkt"), "bytes": ("ibyt", "obyt"), "flags": ("flags", "flags")},
        keep_empty=True,  # rows are one-way: a reverse record only where opkt > 0
        server=schema.server_by_port(c["src"], c["dst"], c["sport"], c["dport"]),
        backward=c["opkt"] > 0,
    )
    return out, {}


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
        sport=f.number("sport", **schema.PORT),
        dport=f.number("dport", **schema.PORT),
        pkts=f.number("pkts", **schema.COUNT),
        bytes=f.number("bytes", **schema.COUNT),
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
        bytes_out=f.number("bytes_out", **schema.COUNT, default=0),
        bytes_in=f.number("bytes_in", **schema.COUNT, default=0),
        status=f.number("status", **schema.STATUS, default=0),
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
