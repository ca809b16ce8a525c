"""Bidirectional flow rows -> one-way records: the last step of every flow adapter whose
format reports both directions of a flow in one row (Zeek conn, Argus, CICFlowMeter,
UNSW-NB15, Suricata EVE ``flow``)."""

from __future__ import annotations

import pandas as pd

from . import schema


def one_way(c: dict, halves: dict, *, keep_empty: bool, shared=()) -> tuple[dict, int]:
    """Rows of ``c`` (committed columns: ``src`` the originator, ``dst`` the responder =
    server, ``sport``, ``dport``, ``ts``, ``proto``, ``duration``, labels) as one-way records,
    row i forward then row i backward; returns (columns, empty halves dropped).

    ``halves``: {record column: (column of c forward, column of c backward)}, e.g.
    ``{"pkts": ("spkts", "dpkts"), ...}``; ``flags`` is '' where not given. ``shared``: more
    columns of c both halves carry.
    """
    common = {k: c[k] for k in ("ts", "proto", "duration", *schema.LABELS, *shared) if k in c}
    common["server"] = c["dst"]
    if "flags" not in halves:
        c = {**c, "_no_flags": pd.Series("", index=range(len(c["dst"])), dtype="str")}
        halves = {**halves, "flags": ("_no_flags", "_no_flags")}
    forward = dict(src=c["src"], dst=c["dst"], sport=c["sport"], dport=c["dport"])
    backward = dict(src=c["dst"], dst=c["src"], sport=c["dport"], dport=c["sport"])
    for column, (fwd, bwd) in halves.items():
        forward[column], backward[column] = c[fwd], c[bwd]
    return schema.one_way(common, forward, backward, keep_empty=keep_empty)
