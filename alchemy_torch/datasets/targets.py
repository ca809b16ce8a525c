"""Per-target labels from per-record labels, and the bag filters (minimum size, "valid").

All vectorized over targets (factorize + bincount); every removal is counted per class in
the :class:`~alchemy_torch.datasets.report.Report`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import labels as label_rules
from ..io.addresses import is_address
from ..io.schema import TARGET
from .report import Report

UNKNOWN = ("drop", "keep")
MIN_VALID_BAG = 30  # METHOD.md 2.3: the proposed "valid" minimum bag size


def label_targets(
    records: pd.DataFrame, kind: str, rule: str, report: Report, unknown: str = "drop"
) -> tuple[pd.DataFrame, pd.Series]:
    """Per-target labels of ``records`` (with a ``label`` column) under ``rule``
    (:mod:`alchemy_torch.labels`).

    Targets the rule leaves unknown are removed with their records, counted per reason
    (``unknown="drop"``), or kept with label -1 for prediction-only use (``"keep"``).
    Returns (records, labels): labels is an int8 Series target -> 1/0(/-1) over exactly the
    targets left in records, sorted.
    """
    if unknown not in UNKNOWN:
        raise ValueError(f"unknown must be one of {UNKNOWN}, got {unknown!r}")
    target = TARGET[kind]
    codes, names = pd.factorize(records[target], sort=True)
    outcome = label_rules.vote(
        codes, records["label"].to_numpy(), len(names), rule, records.get("detailed_label")
    )
    size = np.bincount(codes, minlength=len(names))
    for reason, mask in outcome.unknown.items():
        if unknown == "drop":
            report.remove("label", reason, "unknown", mask.sum(), size[mask].sum())
        elif mask.any():
            report.notes.append(f"kept {int(mask.sum())} unknown target(s) as -1: {reason}")
    if outcome.mixed:
        report.notes.append(f"{outcome.mixed} malicious target(s) also have benign records")
    keep = outcome.labels >= 0 if unknown == "drop" else np.ones(len(names), bool)
    records = records.loc[keep[codes]].reset_index(drop=True)
    labels = pd.Series(outcome.labels[keep], index=pd.Index(names[keep], name=target), name="label")
    return records, labels


CLASS_CODES = ((1, "malicious"), (0, "benign"), (-1, "unknown"))


def count(report: Report, records: pd.DataFrame, labels: pd.Series, kind: str) -> None:
    """Fill ``report.kept`` with (targets, records) per class ('unknown' only if kept)."""
    per_record = labels.reindex(records[TARGET[kind]]).to_numpy()
    report.kept = {
        name: (int((labels == c).sum()), int((per_record == c).sum()))
        for c, name in CLASS_CODES
        if c >= 0 or (labels == c).any()
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
    ('unknown' for targets labelled -1 or absent from ``labels``)."""
    target = TARGET[kind]
    cls = labels.reindex(records[target]).fillna(-1).to_numpy()
    kept = records.loc[~bad].reset_index(drop=True)
    lost = ~pd.Index(records[target].unique()).isin(kept[target].unique())
    lost_cls = labels.reindex(pd.Index(records[target].unique())[lost]).fillna(-1).to_numpy()
    for c, name in CLASS_CODES:
        report.remove(step, reason, name, int((lost_cls == c).sum()), int((bad & (cls == c)).sum()))
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
    flat = records["answers"].explode().dropna()
    has_address = (
        pd.Series(is_address(flat), index=flat.index)
        .groupby(level=0)
        .any()
        .reindex(records.index, fill_value=False)
    )
    return ~(records["qtype"].isin(["A", "AAAA"]) & has_address).to_numpy(bool)
