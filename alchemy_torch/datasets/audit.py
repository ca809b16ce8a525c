"""Confound audit: what separates a data set's classes before any model is trained.

``audit(ds, extractor)`` reports, per class, the sources (captures) the targets come from,
their record counts and time ranges, and the ROC-AUC of every single feature on the
original bags (extractor fitted on all of them: a diagnostic, not an evaluation). A feature
whose AUC alone is above ``threshold`` (or below 1 - ``threshold``) gets a one-line warning:
the classes differ in it so much that a table of results may measure that difference (a
capture, a clock, an OS) rather than maliciousness. Two probes join the features: the
absolute time of each target's first and last record (``time_first_seen``,
``time_last_seen``), what any feature reading absolute time could learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import features
from ..io.schema import SOURCE
from ..ops import segment as seg
from .dataset import Dataset
from .report import format_time

PROBES = ("time_first_seen", "time_last_seen")
FEW_TARGETS = 10  # fewer targets in a class: note that its AUCs are ranks of a few targets


@dataclass
class Audit:
    """The findings of :func:`audit`.

    ``sources``: one row per (class, source): targets, records, first and last ts, clock.
    ``auc``: one row per feature (probes last): ``auc`` (malicious scored by the feature;
    NaN without both classes), ``separation`` = max(auc, 1 - auc), ``flagged``.
    """

    name: str
    kind: str
    sources: pd.DataFrame
    auc: pd.DataFrame
    threshold: float
    notes: list = field(default_factory=list)

    @property
    def flagged(self) -> pd.DataFrame:
        """The features that separate the classes alone, most separating first."""
        return self.auc[self.auc["flagged"]].sort_values("separation", ascending=False)

    @property
    def warnings(self) -> list[str]:
        """One line per flagged feature."""
        return [
            f"WARNING {row.feature}: ROC-AUC {row.auc:.3f} on its own (higher for "
            f"{'malicious' if row.auc > 0.5 else 'benign'} targets): it separates the classes"
            for row in self.flagged.itertuples()
        ]

    def __str__(self) -> str:
        sources = self.sources.copy()
        for end in ("first_ts", "last_ts"):
            sources[end] = [format_time(t, c) for t, c in zip(sources[end], sources["clock"])]
        n_features = int((~self.auc["feature"].isin(PROBES)).sum())
        out = [
            f"Confound audit of {self.name!r} ({self.kind})",
            "  sources per class:",
            *(f"    {line}" for line in sources.to_string(index=False).splitlines()),
            f"  single-feature ROC-AUC on the originals ({n_features} features + "
            f"{len(PROBES)} time probes): {len(self.flagged)} beyond {self.threshold:g}",
            *(f"    {w}" for w in self.warnings),
        ]
        out += [f"  - {n}" for n in self.notes]
        return "\n".join(out)


def audit(ds: Dataset, extractor=None, *, threshold: float = 0.95) -> Audit:
    """The confound audit of ``ds`` (see the module docstring).

    ``extractor``: a feature extractor of ``ds.kind`` (default ``features.make(ds.kind)``),
    fitted here on all of ``ds``'s bags.
    """
    bags = ds.to_bags()
    extractor = features.make(ds.kind) if extractor is None else extractor
    X = extractor.fit(bags)(bags).cpu().numpy()
    ts = bags.columns["ts"]
    probes = [seg.segment_min(ts, bags.offsets), seg.segment_max(ts, bags.offsets)]
    X = np.column_stack([X] + [p.cpu().numpy() for p in probes])
    auc = single_feature_auc(X, bags.labels.cpu().numpy())
    table = pd.DataFrame({"feature": [*extractor.feature_names, *PROBES], "auc": auc}).assign(
        separation=lambda t: np.maximum(t["auc"], 1 - t["auc"])
    )
    table["flagged"] = table["separation"] > threshold
    sources = _sources_per_class(ds)
    return Audit(
        ds.report.name, ds.kind, sources, table, threshold, _notes(sources, ds.labels, auc)
    )


def single_feature_auc(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(D,) ROC-AUC of every column of (B, D) ``X`` as a score for ``labels == 1`` against
    ``labels == 0`` (other labels ignored; ties count one half); NaN without both classes."""
    positive, negative = labels == 1, labels == 0
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    if not (n_pos and n_neg):
        return np.full(X.shape[1], np.nan)
    both = positive | negative
    ranks = pd.DataFrame(X[both]).rank(axis=0).to_numpy()  # average ranks for ties
    rank_sum = ranks[positive[both]].sum(axis=0)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _sources_per_class(ds: Dataset) -> pd.DataFrame:
    """(class, source) -> targets, records, first and last ts, clock."""
    names = {1: "malicious", 0: "benign", -1: "unknown"}
    cls = ds.labels.reindex(ds.records[ds.target]).map(names).to_numpy()
    table = (
        ds.records.assign(cls=cls)
        .groupby(["cls", SOURCE], sort=True)
        .agg(
            targets=(ds.target, "nunique"),
            records=("ts", "size"),
            first_ts=("ts", "min"),
            last_ts=("ts", "max"),
        )
        .reset_index()
        .rename(columns={"cls": "class"})
    )
    clocks = {s: info.get("clock", "epoch") for s, info in ds.report.sources.items()}
    shifted = {s for s, info in ds.report.sources.items() if "shift" in info}
    table["clock"] = ["aligned" if s in shifted else clocks.get(s, "epoch") for s in table[SOURCE]]
    return table


def _notes(sources: pd.DataFrame, labels: pd.Series, auc: np.ndarray) -> list[str]:
    notes = []
    fewest = min(int((labels == 1).sum()), int((labels == 0).sum()))
    if np.isnan(auc).all():
        notes.append("no ROC-AUC: the set lacks malicious or benign targets")
    elif fewest < FEW_TARGETS:
        notes.append(
            f"a class has only {fewest} target(s): a single-feature ROC-AUC is then the rank "
            "of those few targets, and extreme values come easily by chance"
        )
    labelled = sources[sources["class"] != "unknown"]
    per_source = labelled.groupby(SOURCE)["class"].nunique()
    if len(labelled["class"].unique()) == 2 and (per_source == 1).all():
        notes.append(
            "no source holds both classes: the capture identifies the class, so a model can "
            "learn the capture (OS, resolver, year) instead of the behaviour; group folds by "
            "source (Dataset.groups) and read results as an upper bound"
        )
    return notes
