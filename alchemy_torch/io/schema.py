"""The canonical record schemas (DESIGN.md) and the builders every format adapter shares.

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
``detailed_label`` str, where the file carries labels. Strings are '' when unset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KINDS = ("flows", "http", "dns")
COLUMNS = {
    "flows": (
        "ts",
        "proto",
        "src",
        "dst",
        "sport",
        "dport",
        "pkts",
        "bytes",
        "flags",
        "server",
        "duration",
    ),
    "http": (
        "ts",
        "client",
        "server",
        "host",
        "path",
        "query",
        "method",
        "user_agent",
        "bytes_out",
        "bytes_in",
        "referrer",
        "status",
    ),
    "dns": ("ts", "client", "query", "qtype", "rcode", "answers", "ttls"),
}
TARGET = {"flows": "server", "http": "server", "dns": "query"}
LABELS = ("label", "detailed_label")
_DTYPES = {
    "ts": "float64",
    "duration": "float64",
    "label": "int8",
    "sport": "int64",
    "dport": "int64",
    "pkts": "int64",
    "bytes": "int64",
    "bytes_out": "int64",
    "bytes_in": "int64",
    "status": "int64",
    "answers": object,
    "ttls": object,
}


def frame(kind: str, columns: dict) -> pd.DataFrame:
    """A canonical DataFrame of ``kind`` from columns (canonical names; label columns optional).

    Text columns may be ``str`` Series, arrow or object arrays; the others numpy arrays.
    """
    names = COLUMNS[kind] + tuple(c for c in LABELS if c in columns)
    data = {}
    for name in names:
        dtype = _DTYPES.get(name, "str")
        values = columns[name]
        if isinstance(values, pd.Series):
            values = values.reset_index(drop=True)
        data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(names))


def take(values, index: np.ndarray):
    """``values[index]`` for numpy arrays and (positionally) for Series."""
    if isinstance(values, pd.Series):
        return values.take(index).reset_index(drop=True)
    return values[index]


def interleave(common: dict, forward: dict, reverse: dict) -> dict:
    """Both directions of every row, in file order (row i forward, row i reverse).

    ``forward`` and ``reverse`` hold the per-direction columns (src, dst, sport, dport, pkts,
    bytes, flags), ``common`` those both halves share (ts, proto, server, duration, labels).
    """
    n = len(common["ts"])
    order = np.stack([np.arange(n), np.arange(n, 2 * n)], axis=1).ravel()
    out = {}
    for k in forward:
        a, b = forward[k], reverse[k]
        both = (
            pd.concat([a, b], ignore_index=True)
            if isinstance(a, pd.Series)
            else np.concatenate([a, b])
        )
        out[k] = take(both, order)
    twice = np.repeat(np.arange(n), 2)
    out.update({k: take(v, twice) for k, v in common.items()})
    return out


def one_way(
    common: dict, forward: dict, reverse: dict, keep_empty: bool = False
) -> tuple[dict, int]:
    """Bidirectional rows -> one-way records; returns (columns, halves with 0 packets dropped).

    ``keep_empty`` keeps those halves (for callers that count them per class themselves).
    """
    out = interleave(common, forward, reverse)
    if keep_empty:
        return out, 0
    keep = np.flatnonzero(out["pkts"] > 0)
    return {k: take(v, keep) for k, v in out.items()}, len(out["pkts"]) - len(keep)


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
