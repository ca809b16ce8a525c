"""CICFlowMeter CSV (CIC-IDS2017 ``TrafficLabelling``, CSE-CIC-IDS2018, the corrected
CIC-IDS2017 and CSE-CIC-IDS2018 of Engelen, Rimmer and Joosen (2021), the Python
``cicflowmeter``) -> one-way flows with labels.

Columns are matched whatever their spelling: case, spaces, '_' and '/' do not count
(' Source IP' = 'Src IP' = 'src_ip'), and CIC-IDS2017's long names are the short ones
('Total Fwd Packets' = 'Tot Fwd Pkts', 'Total Length of Bwd Packets' = 'TotLen Bwd Pkts'), as
are the corrected releases' CICFlowMeter-v3 ones ('Total Fwd Packet', 'Total Bwd packets',
'Total Length of Fwd Packet'); their leading ``id`` and trailing columns (``ICMP Code``, ...,
``Attempted Category``) are not read.
A row is a bidirectional flow: Src (the first packet's sender) -> Dst, the responder (=
server). Forward and backward packets and bytes (payload lengths, as CICFlowMeter counts them)
become two one-way records; an empty backward half is dropped. ``Flow Duration`` is in
microseconds; negative, NaN or infinite durations (CIC-IDS2017 has them) read as unknown (NaN)
and are counted in ``df.attrs["filled"]["duration"]``. ``Timestamp`` is day-first
(``03/07/2017 08:55:58``, ``7/7/2017 3:30``, ``02/03/2018 08:47:38 PM``) or ISO 8601 (the
corrected releases: ``2017-07-07 11:59:50.315195``); times are
read as UTC as written (CIC-IDS2017's ``h:mm`` times may be on a 12-hour clock without AM/PM:
check afternoon attacks against the published schedule). ``Protocol`` numbers become names
(6 -> 'tcp', 17 -> 'udp', 1 -> 'icmp'; others stay numbers). ``Label``: BENIGN (any case)
-> 0, any other label -> 1, kept as ``detailed_label``; an empty label is an error. The
corrected releases mark flows of an attack that did not reach its target (a connection
attempt without the attack's payload) with a ``" - Attempted"`` suffix (``Botnet -
Attempted``): malicious by default, benign (0) with ``attempted="benign"`` (the reading
Engelen et al. recommend); ``detailed_label`` keeps the suffix either way.
Exports without addresses (CIC-IDS2017 ``MachineLearningCVE``, most CSE-CIC-IDS2018 files)
cannot give per-server records: reading them fails on the missing ``Src IP``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import directions, schema
from .fields import Fields

FIELDS = (
    "Src IP",
    "Src Port",
    "Dst IP",
    "Dst Port",
    "Protocol",
    "Timestamp",
    "Flow Duration",
    "Tot Fwd Pkts",
    "Tot Bwd Pkts",
    "TotLen Fwd Pkts",
    "TotLen Bwd Pkts",
    "Label",
)
NUMERIC = frozenset(
    {"Src Port", "Dst Port", "Protocol", "Flow Duration"}
    | {"Tot Fwd Pkts", "Tot Bwd Pkts", "TotLen Fwd Pkts", "TotLen Bwd Pkts"}
)
_LONG = {  # CIC-IDS2017's spellings, squeezed
    "sourceip": "Src IP",
    "sourceport": "Src Port",
    "destinationip": "Dst IP",
    "destinationport": "Dst Port",
    "totalfwdpackets": "Tot Fwd Pkts",
    "totalbackwardpackets": "Tot Bwd Pkts",
    "totallengthoffwdpackets": "TotLen Fwd Pkts",
    "totallengthofbwdpackets": "TotLen Bwd Pkts",
    # the corrected releases' CICFlowMeter-v3 spellings
    "totalfwdpacket": "Tot Fwd Pkts",
    "totalbwdpackets": "Tot Bwd Pkts",
    "totallengthoffwdpacket": "TotLen Fwd Pkts",
    "totallengthofbwdpacket": "TotLen Bwd Pkts",
}
TIME_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %I:%M:%S %p", "ISO8601")
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp"}
LABELS = ((r"^benign$", 0), (r".", 1))
ATTEMPTED = r"\s-\s*attempted\s*$"  # the corrected releases' suffix, any case
#: how attack attempts are labelled: the ``attempted`` option of ``read_flows``
ATTEMPTED_READINGS = ("malicious", "benign")


def _squeeze(column: str) -> str:
    return re.sub(r"[\s_/]", "", column).lower()


_SPELLINGS = {**{_squeeze(f): f for f in FIELDS}, **_LONG}


def spelling(column: str) -> str:
    """The field a column spells (module docstring), or the column itself."""
    return _SPELLINGS.get(_squeeze(column), column)


def flows(f: Fields, options: dict) -> tuple[dict, dict]:
    """CICFlowMeter rows -> one-way flow columns and the report."""
    f.require("Src IP", "Dst IP", "Protocol", "Timestamp", "Tot Fwd Pkts", "Tot Bwd Pkts")
    micros = f.number("Flow Duration", integer=False, default=np.nan)
    invalid = f.has("Flow Duration") & (~np.isfinite(micros) | (micros < 0))
    out = {
        "ts": f.time("Timestamp", formats=TIME_FORMATS, guess=False),
        "proto": _protocol_names(f.number("Protocol", lo=0, hi=255)),
        "src": f.text("Src IP", required=True),
        "dst": f.text("Dst IP", required=True),
        "sport": f.number("Src Port", **schema.PORT),
        "dport": f.number("Dst Port", **schema.PORT),
        "fwd_pkts": f.number("Tot Fwd Pkts", **schema.COUNT),
        "bwd_pkts": f.number("Tot Bwd Pkts", **schema.COUNT),
        "fwd_bytes": f.number("TotLen Fwd Pkts", **schema.COUNT, default=0),
        "bwd_bytes": f.number("TotLen Bwd Pkts", **schema.COUNT, default=0),
        "duration": np.where(invalid, np.nan, micros / 1e6),
        "invalid_duration": invalid,
    }
    if f.has("Label"):
        detail = f.text("Label").str.strip()
        out["label"] = f.labels("Label", LABELS)
        if options.get("attempted", "malicious") == "benign":
            tried = detail.str.contains(ATTEMPTED, case=False, regex=True).to_numpy(bool)
            out["label"][tried] = 0
        out["detailed_label"] = detail
    records, dropped = directions.one_way(
        f.commit(out),
        {"pkts": ("fwd_pkts", "bwd_pkts"), "bytes": ("fwd_bytes", "bwd_bytes")},
        keep_empty=options.get("keep_empty", False),
        shared=("invalid_duration",),
    )
    invalid = int(records.pop("invalid_duration").sum())
    return records, {"dropped_halves": dropped, "filled": {"duration": invalid} if invalid else {}}


def _protocol_names(numbers: np.ndarray) -> pd.Series:
    """IANA protocol numbers -> the names the other formats use ('tcp', ...), else digits."""
    names = pd.Series(numbers).map(PROTOCOLS)
    return names.fillna(pd.Series(numbers).astype("str")).astype("str")


ADAPTERS = {"flows": flows}
