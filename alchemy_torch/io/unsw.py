"""UNSW-NB15 CSV (the four raw files ``UNSW-NB15_1..4.csv``, headerless, with the 49 columns
published in ``NUSW-NB15_features.csv``; or the same columns under a header) -> one-way flows
with labels.

Column names are matched without case or spaces (``Stime`` = ``stime``, ``ct_src_ ltm``).
A row is a bidirectional Argus flow: srcip -> dstip, the responder (= server); source and
destination packets (``spkts``/``dpkts``) and bytes (``sbytes``/``dbytes``) become two one-way
records (an empty half is dropped). ``ts`` is ``stime`` (epoch seconds), ``duration`` is
``dur``; flags are '' (``state`` is a per-flow summary, not per direction). Ports may be hex
(``0x000b``, ICMP) and '-' (none) reads as 0. ``label`` 0/1 is the label, ``attack_cat``
(stripped; '' for normal traffic) the ``detailed_label``.
The training and testing sets (``UNSW_NB15_training-set.csv``) have no addresses or times and
cannot give per-server records: reading them fails on the missing ``srcip``.
"""

from __future__ import annotations

import numpy as np

from . import directions, schema
from .fields import Fields

COLUMNS = (  # NUSW-NB15_features.csv, in order, lower-cased
    "srcip",
    "sport",
    "dstip",
    "dsport",
    "proto",
    "state",
    "dur",
    "sbytes",
    "dbytes",
    "sttl",
    "dttl",
    "sloss",
    "dloss",
    "service",
    "sload",
    "dload",
    "spkts",
    "dpkts",
    "swin",
    "dwin",
    "stcpb",
    "dtcpb",
    "smeansz",
    "dmeansz",
    "trans_depth",
    "res_bdy_len",
    "sjit",
    "djit",
    "stime",
    "ltime",
    "sintpkt",
    "dintpkt",
    "tcprtt",
    "synack",
    "ackdat",
    "is_sm_ips_ports",
    "ct_state_ttl",
    "ct_flw_http_mthd",
    "is_ftp_login",
    "ct_ftp_cmd",
    "ct_srv_src",
    "ct_srv_dst",
    "ct_dst_ltm",
    "ct_src_ltm",
    "ct_src_dport_ltm",
    "ct_dst_sport_ltm",
    "ct_dst_src_ltm",
    "attack_cat",
    "label",
)
FIELDS = (
    "srcip",
    "sport",
    "dstip",
    "dsport",
    "proto",
    "dur",
    "sbytes",
    "dbytes",
    "spkts",
    "dpkts",
    "stime",
    "attack_cat",
    "label",
)
NUMERIC = frozenset({"dur", "sbytes", "dbytes", "spkts", "dpkts", "stime", "label"})
UNSET = ("-",)


def spelling(column: str) -> str:
    """The field a column spells: ``Stime`` is ``stime``, ``ct_src_ ltm`` is ``ct_src_ltm``."""
    return column.replace(" ", "").lower()


def flows(f: Fields, options: dict) -> tuple[dict, dict]:
    """UNSW-NB15 rows -> one-way flow columns and the report."""
    f.require("srcip", "dstip", "proto", "stime", "spkts", "dpkts", "sbytes", "dbytes")
    out = {
        "ts": f.time("stime"),
        "duration": f.number("dur", integer=False, default=np.nan),
        "proto": f.text("proto", required=True).str.lower(),
        "src": f.text("srcip", required=True),
        "dst": f.text("dstip", required=True),
        "sport": f.number("sport", **schema.PORT, hex=True, default=0),
        "dport": f.number("dsport", **schema.PORT, hex=True, default=0),
        "spkts": f.number("spkts", **schema.COUNT),
        "dpkts": f.number("dpkts", **schema.COUNT),
        "sbytes": f.number("sbytes", **schema.COUNT),
        "dbytes": f.number("dbytes", **schema.COUNT),
    }
    if f.has("label"):
        out["label"] = f.labels("label", vocabulary=())  # 0 or 1
    if f.has("attack_cat"):
        out["detailed_label"] = f.text("attack_cat").str.strip()
    records, dropped = directions.one_way(
        f.commit(out),
        {"pkts": ("spkts", "dpkts"), "bytes": ("sbytes", "dbytes")},
        keep_empty=options.get("keep_empty", False),
    )
    return records, {"dropped_halves": dropped}


ADAPTERS = {"flows": flows}
