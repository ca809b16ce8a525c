"""The canonical record schemas (DESIGN.md) and the builders every format adapter shares.

:data:`SCHEMAS` is the one table of the kinds, their columns, dtypes, vocabularies, valid
ranges and targets; ``KINDS``, ``COLUMNS`` and ``TARGET`` are read from it (as are
:class:`~alchemy_torch.Bags`' encodings and checks). In short:

=====  ====================================================================================
kind   columns (one row = one record), target column marked *
=====  ====================================================================================
flows  ts f8, proto str, src str, dst str, sport i8, dport i8, pkts i8, bytes i8, flags str,
       server* str, duration f8 (NaN = unknown) -- ONE-WAY records
http   ts f8, client str, server* str, host str, path str, query str, method str,
       user_agent str, bytes_out i8, bytes_in i8, referrer str, status i8 (0 = unset)
dns    ts f8, client str, query* str (lower-case, no trailing dot), qtype str, rcode str,
       answers list[str], ttls list[int] (one per answer)
=====  ====================================================================================

Optional extra columns: ``label`` int8 (1 malicious, 0 benign, -1 unknown/background) and
``detailed_label`` str, where the file carries labels; ``source`` str, the file (capture) a
record was read from (added by :mod:`alchemy_torch.datasets`). Strings are '' when unset.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Column:
    """One canonical column.

    ``dtype``: ``float64``, ``int64``, ``str``, ``list[str]`` or ``list[int]``. ``vocab``: for
    ``str`` and ``list[str]`` columns, the vocabulary whose codes the column shares (``src``,
    ``dst`` and ``server`` share ``address``, so ``src == server`` is a code comparison).
    ``optional``: records may lack it (read as unset: NaN). ``lo``/``hi``: the valid range of a
    number (every number must also be finite, NaN standing for unset where ``optional``).
    """

    name: str
    dtype: str
    vocab: str | None = None
    optional: bool = False
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class Schema:
    """The canonical columns of one kind and its target column."""

    target: str
    columns: tuple

    def of(self, *dtypes: str) -> tuple:
        """The columns of the given dtypes, in schema order."""
        return tuple(c for c in self.columns if c.dtype in dtypes)


_PORT = dict(lo=0, hi=65535)
SCHEMAS = {
    "flows": Schema(
        "server",
        (
            Column("ts", "float64"),
            Column("proto", "str", "proto"),
            Column("src", "str", "address"),
            Column("dst", "str", "address"),
            Column("sport", "int64", **_PORT),
            Column("dport", "int64", **_PORT),
            Column("pkts", "int64", lo=0),
            Column("bytes", "int64", lo=0),
            Column("flags", "str", "flags"),
            Column("server", "str", "address"),
            Column("duration", "float64", optional=True),
        ),
    ),
    "http": Schema(
        "server",
        (
            Column("ts", "float64"),
            Column("client", "str", "address"),
            Column("server", "str", "address"),
            Column("host", "str", "host"),
            Column("path", "str", "path"),
            Column("query", "str", "query"),
            Column("method", "str", "method"),
            Column("user_agent", "str", "user_agent"),
            Column("bytes_out", "int64", lo=0),
            Column("bytes_in", "int64", lo=0),
            Column("referrer", "str", "referrer"),
            Column("status", "int64", lo=0),
        ),
    ),
    "dns": Schema(
        "query",
        (
            Column("ts", "float64"),
            Column("client", "str", "address"),
            Column("query", "str", "domain"),
            Column("qtype", "str", "qtype"),
            Column("rcode", "str", "rcode"),
            Column("answers", "list[str]", "answer"),
            Column("ttls", "list[int]"),
        ),
    ),
}
KINDS = tuple(SCHEMAS)


def valid_range(kind: str, column: str) -> dict:
    """``{"lo": ..., "hi": ...}`` of a number column of ``kind``: what the readers pass to
    :meth:`~.fields.Fields.number` (``f.number(name, **PORT)``)."""
    found = next(c for c in SCHEMAS[kind].columns if c.name == column)
    return {"lo": found.lo, "hi": found.hi}


#: the valid ranges of a port, a count (packets, bytes) and an HTTP status (readers check them)
PORT = valid_range("flows", "sport")
COUNT = valid_range("flows", "pkts")
STATUS = valid_range("http", "status")
COLUMNS = {kind: tuple(c.name for c in s.columns) for kind, s in SCHEMAS.items()}
TARGET = {kind: s.target for kind, s in SCHEMAS.items()}
LABELS = ("label", "detailed_label")
#: Added by :mod:`alchemy_torch.datasets`: the file (capture) a record was read from.
SOURCE = "source"
_EXTRA_DTYPES = {"label": "int8", "detailed_label": "str", SOURCE: "str"}
_PANDAS_DTYPES = {"float64": "float64", "int64": "int64", "str": "str"}  # lists: object


def check_kind(kind: str) -> Schema:
    """The schema of ``kind``; a ValueError naming the kinds otherwise."""
    if kind not in SCHEMAS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return SCHEMAS[kind]


def frame(kind: str, columns: dict) -> pd.DataFrame:
    """A canonical DataFrame of ``kind`` from columns (canonical names; label columns optional).

    Text columns may be ``str`` Series, arrow or object arrays; the others numpy arrays.
    """
    dtypes = {c.name: _PANDAS_DTYPES.get(c.dtype, object) for c in SCHEMAS[kind].columns}
    dtypes.update((c, t) for c, t in _EXTRA_DTYPES.items() if c in columns)
    data = {}
    for name, dtype in dtypes.items():
        values = columns[name]
        if isinstance(values, pd.Series):
            values = values.reset_index(drop=True)
        data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(dtypes))


def server_by_port(src: pd.Series, dst: pd.Series, sport, dport) -> pd.Series:
    """The server of a one-way record without a responder: the lower port's end (ties: dst)."""
    return src.where(sport < dport, dst)


def split_uri(uri: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(path, query) of request URIs, split at the first '?' (query without the '?')."""
    return (
        uri.str.replace(r"(?s)\?.*$", "", regex=True),
        uri.str.replace(r"(?s)^[^?]*\??", "", regex=True),
    )


def domain(names: pd.Series) -> pd.Series:
    """DNS names lower-cased, without the trailing dot."""
    return names.str.lower().str.rstrip(".")
