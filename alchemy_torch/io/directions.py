"""Bidirectional flow rows -> one-way records: the last step of every flow adapter whose
format reports both directions of a flow in one row (Zeek conn, Argus, CICFlowMeter,
UNSW-NB15, Suricata EVE ``flow``, nfdump's bidirectional exports) and of the synthetic flows
(:mod:`alchemy_torch.datasets.synthetic`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import schema


def one_way(
    c: dict,
    halves: dict,
    *,
    keep_empty: bool,
    shared=(),
    server=None,
    backward: np.ndarray | None = None,
) -> tuple[dict, int]:
    """Rows of ``c`` (committed columns: ``src`` the originator, ``dst`` the responder,
    ``sport``, ``dport``, ``ts``, ``proto``, ``duration``, labels) as one-way records, row i
    forward then row i backward; returns (columns, empty halves dropped).

    ``halves``: {record column: (column of c forward, column of c backward)}, e.g.
    ``{"pkts": ("spkts", "dpkts"), ...}``; ``flags`` is '' where not given. ``shared``: more
    columns of c both halves carry. ``server``: the server of each row (default ``dst``).
    ``backward``: (rows,) bool, the rows that have a backward direction at all (default
    every row); the others give their forward record only, and nothing is counted for them.
    ``keep_empty`` keeps halves with 0 packets (for callers that count them per class).
    """
    n = len(c["dst"])
    common = {k: c[k] for k in ("ts", "proto", "duration", *schema.LABELS, *shared) if k in c}
    common["server"] = c["dst"] if server is None else server
    if "flags" not in halves:
        c = {**c, "_no_flags": pd.Series("", index=range(n), dtype="str")}
        halves = {**halves, "flags": ("_no_flags", "_no_flags")}
    forward = dict(src=c["src"], dst=c["dst"], sport=c["sport"], dport=c["dport"])
    reverse = dict(src=c["dst"], dst=c["src"], sport=c["dport"], dport=c["sport"])
    for column, (fwd, bwd) in halves.items():
        forward[column], reverse[column] = c[fwd], c[bwd]
    out = interleave(common, forward, reverse)
    exists = np.ones(2 * n, bool)
    if backward is not None:
        exists[1::2] = backward
    empty = exists & (np.asarray(out["pkts"]) == 0) if not keep_empty else np.zeros(2 * n, bool)
    keep = np.flatnonzero(exists & ~empty)
    return {k: take(v, keep) for k, v in out.items()}, int(empty.sum())


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


def take(values, index: np.ndarray):
    """``values[index]`` for numpy arrays and (positionally) for Series."""
    if isinstance(values, pd.Series):
        return values.take(index).reset_index(drop=True)
    return values[index]
