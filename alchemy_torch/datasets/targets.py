"""Per-target labels from per-record labels, and the bag filters (minimum size, "valid").

All vectorized over targets (factorize + bincount); every removal is counted per class in
the :class:`~alchemy_torch.datasets.report.Report`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io.schema import TARGET
from .report import Report

RULES = ("any", "majority", "ctu13")
CC = r"(?i)botnet.*-CC"  # CTU-13 C&C flow labels, e.g. From-Botnet-V47-TCP-CC73-Not-Encrypted
MIN_VALID_BAG = 30  # METHOD.md 2.3: the proposed "valid" minimum bag size
_ADDRESS = r"^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$"  # IPv4 / IPv6


def label_targets(records: pd.DataFrame, kind: str, rule: str, report: Report):
    """Split ``records`` (with a ``label`` column) into kept records and target labels.

    Rules ('unknown' targets are removed with their records and counted):
      any       malicious if any record is malicious, else benign if any is benign;
      majority  malicious if malicious records outnumber benign ones, benign if fewer;
                ties are removed;
      ctu13     malicious if any flow is C&C-labeled (server of the bot's C&C traffic);
                targets of other botnet flows (spam victims, ...) are removed; benign if any
                Normal flow; Background-only targets are unknown.
    Returns (records, labels): labels is an int8 Series target -> 0/1 over exactly the targets
    left in records.
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")
    target = TARGET[kind]
    codes, names = pd.factorize(records[target], sort=True)
    label = records["label"].to_numpy()
    n_bags = len(names)
    mal = np.bincount(codes, weights=label == 1, minlength=n_bags)
    ben = np.bincount(codes, weights=label == 0, minlength=n_bags)
    size = np.bincount(codes, minlength=n_bags)
    cls = np.full(n_bags, -1, np.int8)  # -1: removed
    if rule == "any":
        cls[mal > 0] = 1
        cls[(mal == 0) & (ben > 0)] = 0
    elif rule == "majority":
        cls[mal > ben] = 1
        cls[ben > mal] = 0
        _remove(
            report,
            "label",
            "tie between malicious and benign records",
            (mal == ben) & (mal > 0),
            size,
        )
    else:
        cc = records["detailed_label"].str.contains(CC, regex=True).to_numpy(bool) & (label == 1)
        cls[np.bincount(codes, weights=cc, minlength=n_bags) > 0] = 1
        cls[(mal == 0) & (ben > 0)] = 0
        _remove(report, "label", "botnet flows but no C&C (victims)", (cls == -1) & (mal > 0), size)
    _remove(report, "label", "no malicious or benign record", (mal == 0) & (ben == 0), size)
    if rule != "majority":
        mixed = int(((cls == 1) & (ben > 0)).sum())
        if mixed:
            report.notes.append(f"{mixed} malicious target(s) also have benign records")
    kept = cls[codes] >= 0
    records = records.loc[kept].reset_index(drop=True)
    labels = pd.Series(cls[cls >= 0], index=pd.Index(names[cls >= 0], name=target), name="label")
    return records, labels


def _remove(report: Report, step: str, reason: str, targets: np.ndarray, size: np.ndarray):
    report.remove(step, reason, "unknown", targets.sum(), size[targets].sum())


def count(report: Report, records: pd.DataFrame, labels: pd.Series, kind: str) -> None:
    """Fill ``report.kept`` with (targets, records) per class."""
    per_record = labels.reindex(records[TARGET[kind]]).to_numpy()
    report.kept = {
        name: (int((labels == c).sum()), int((per_record == c).sum()))
        for c, name in ((1, "malicious"), (0, "benign"))
    }


def filter_bags(
    records: pd.DataFrame,
    labels: pd.Series,
    kind: str,
    report: Report,
    *,
    min_bag_size: int | None = None,
    valid: bool = False,
):
    """Apply the explicit bag filters, counting what each removes per class.

    ``valid`` (METHOD.md 2.3): first drop records that cannot be used -- flows with 0 packets,
    HTTP requests whose URL cannot be parsed, DNS records that are not A/AAAA or have no
    address answer -- then keep bags of at least ``min_bag_size`` (default 30) records.
    ``min_bag_size`` alone keeps bags of at least that many records.
    """
    if valid:
        records, labels = drop_records(
            records, labels, kind, report, "valid", _invalid_reason(kind), _invalid(records, kind)
        )
        if min_bag_size is None:
            min_bag_size = MIN_VALID_BAG
    if min_bag_size:
        target = TARGET[kind]
        size = records.groupby(target, sort=False)[target].transform("size").to_numpy()
        records, labels = drop_records(
            records,
            labels,
            kind,
            report,
            "min_bag_size",
            f"bags under {min_bag_size} records",
            size < min_bag_size,
        )
    return records, labels


def drop_records(records, labels, kind, report, step, reason, bad: np.ndarray):
    """Drop records where ``bad``, and targets left without records; count per class
    ('unknown' for targets without a label)."""
    target = TARGET[kind]
    cls = labels.reindex(records[target]).to_numpy()
    kept = records.loc[~bad].reset_index(drop=True)
    lost = ~pd.Index(records[target].unique()).isin(kept[target].unique())
    lost_cls = labels.reindex(pd.Index(records[target].unique())[lost]).to_numpy()
    for c, name in ((1, "malicious"), (0, "benign"), (np.nan, "unknown")):
        same = np.isnan(cls) if name == "unknown" else cls == c
        same_lost = np.isnan(lost_cls) if name == "unknown" else lost_cls == c
        report.remove(step, reason, name, int(same_lost.sum()), int((bad & same).sum()))
    return kept, labels[labels.index.isin(kept[target].unique())]


def _invalid_reason(kind: str) -> str:
    return {
        "flows": "records with 0 packets",
        "http": "requests with an unparseable URL",
        "dns": "not A/AAAA or no address answer",
    }[kind]


def _invalid(records: pd.DataFrame, kind: str) -> np.ndarray:
    """Records the "valid" filter drops (see :func:`filter_bags`)."""
    if kind == "flows":
        return (records["pkts"] <= 0).to_numpy()
    if kind == "http":
        ok = records["path"].str.match(r"^(?:/|[A-Za-z][A-Za-z0-9+.-]*://|\*$)\S*$")
        ok |= (records["method"] == "CONNECT") & records["path"].str.match(r"^\S+$")
        return ~ok.to_numpy(bool)
    flat = records["answers"].explode()
    address = flat.astype("str").str.match(_ADDRESS)
    has_address = (
        address.fillna(False).groupby(level=0).any().reindex(records.index, fill_value=False)
    )
    return ~(records["qtype"].isin(["A", "AAAA"]) & has_address).to_numpy(bool)
