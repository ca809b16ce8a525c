"""Argus bidirectional NetFlow (``*.binetflow``, as published with CTU-13) -> one-way flows.

Header ``StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,
TotBytes,SrcBytes,Label``. SrcAddr is the originator, DstAddr the responder (= server).
Per direction: bytes are SrcBytes and TotBytes - SrcBytes (or DstBytes); packets are SrcPkts
and DstPkts where the export has them, else **estimated**: a direction without bytes has no
packets, and otherwise TotPkts is split in proportion to bytes, at least one packet per
direction (``df.attrs["filled"]["pkts"]`` counts the records estimated). Flags are the two
halves of ``State`` ('SPA_SA' -> 'SPA', 'SA'); '' for non-TCP states. Ports may be hex
(ICMP type/code '0x0303'; ESP puts its 32-bit SPI there); an empty port reads as 0.
Labels (``flow=From-Botnet-V47-TCP-CC73-...``): Botnet -> 1, Normal -> 0, Background -> -1;
``detailed_label`` keeps the text after 'flow='.
"""

from __future__ import annotations

import numpy as np

from . import directions, schema
from .fields import ARGUS_LABELS, Fields

TIME_FORMAT = "%Y/%m/%d %H:%M:%S.%f"
NUMERIC = frozenset(
    {"Dur", "TotPkts", "TotBytes", "SrcBytes", "DstBytes", "SrcPkts", "DstPkts", "sTos", "dTos"}
)
#: the header of the binetflow files published with CTU-13, in order (files split into parts
#: keep it in the first part only: read the others with ``header=None``)
COLUMNS = (
    "StartTime",
    "Dur",
    "Proto",
    "SrcAddr",
    "Sport",
    "Dir",
    "DstAddr",
    "Dport",
    "State",
    "sTos",
    "dTos",
    "TotPkts",
    "TotBytes",
    "SrcBytes",
    "Label",
)
FIELDS = (
    "StartTime",
    "Dur",
    "Proto",
    "SrcAddr",
    "Sport",
    "DstAddr",
    "Dport",
    "State",
    "TotPkts",
    "TotBytes",
    "SrcBytes",
    "DstBytes",
    "SrcPkts",
    "DstPkts",
    "Label",
)


def binetflow(f: Fields, options: dict) -> tuple[dict, dict]:
    """binetflow rows -> one-way flow columns and the report (halves dropped, packets
    estimated)."""
    f.require("StartTime", "Proto", "SrcAddr", "DstAddr", "TotPkts", "TotBytes", "SrcBytes")
    total_pkts = f.number("TotPkts", **schema.COUNT)
    total_bytes = f.number("TotBytes", **schema.COUNT)
    src_bytes = f.number("SrcBytes", **schema.COUNT)
    dst_bytes = (
        f.number("DstBytes", **schema.COUNT) if f.has("DstBytes") else total_bytes - src_bytes
    )
    f.flag(dst_bytes < 0, "SrcBytes", "more than TotBytes", f.frame["SrcBytes"])
    if f.has("SrcPkts"):
        src_pkts = f.number("SrcPkts", **schema.COUNT)
        dst_pkts = (
            f.number("DstPkts", **schema.COUNT) if f.has("DstPkts") else total_pkts - src_pkts
        )
    else:
        src_pkts, dst_pkts = _split_packets(total_pkts, src_bytes, dst_bytes)
    state = f.text("State")
    two_sided = state.str.contains("_", regex=False).to_numpy(bool)
    out = {
        "ts": f.time("StartTime", formats=(TIME_FORMAT,)),
        "duration": f.number("Dur", integer=False, default=np.nan),
        "proto": f.text("Proto", required=True).str.lower(),
        "src": f.text("SrcAddr", required=True),
        "dst": f.text("DstAddr", required=True),
        "sport": f.number("Sport", lo=0, hex=True, default=0),
        "dport": f.number("Dport", lo=0, hex=True, default=0),
        "spkts": src_pkts,
        "dpkts": dst_pkts,
        "sbytes": src_bytes,
        "dbytes": dst_bytes,
        "sflags": state.str.replace(r"_.*$", "", regex=True).where(two_sided, ""),
        "dflags": state.str.replace(r"^[^_]*_", "", regex=True).where(two_sided, ""),
    }
    if f.has("Label"):
        out["label"] = f.labels("Label", ARGUS_LABELS)
        out["detailed_label"] = f.text("Label").str.replace(r"^flow=", "", regex=True)
    out, dropped = directions.one_way(
        f.commit(out),
        {"pkts": ("spkts", "dpkts"), "bytes": ("sbytes", "dbytes"), "flags": ("sflags", "dflags")},
        keep_empty=options.get("keep_empty", False),
    )
    estimated = {} if f.has("SrcPkts") else {"pkts": len(out["pkts"])}
    return out, {"dropped_halves": dropped, "filled": estimated}


def _split_packets(total, src_bytes, dst_bytes) -> tuple[np.ndarray, np.ndarray]:
    """Packets per direction from the total, in proportion to bytes (see module docstring)."""
    both = (src_bytes > 0) & (dst_bytes > 0) & (total > 1)
    share = np.divide(src_bytes, src_bytes + dst_bytes, out=np.zeros(len(total)), where=both)
    src = np.clip(np.rint(total * share), 1, np.maximum(total - 1, 1)).astype(np.int64)
    src = np.where(both, src, np.where(src_bytes > 0, total, 0))
    return src, total - src


ADAPTERS = {"flows": binetflow}
