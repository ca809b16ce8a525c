"""A labelled data set of one kind: canonical records, per-target labels, groups, report."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..bags import Bags
from ..io.schema import SOURCE, TARGET
from .report import Report
from .targets import count, filter_bags


@dataclass
class Dataset:
    """Records of one kind with per-target labels.

    ``records``: canonical DataFrame (see :mod:`alchemy_torch.io.schema`) with ``label``,
    ``detailed_label`` and ``source`` (the file or capture each record was read from)
    columns; ``labels``: int8 Series target -> 1/0 (-1 for unknown targets kept with
    ``unknown="keep"``) covering exactly the targets in ``records`` (column ``target``),
    sorted as :meth:`to_bags` sorts them; ``report``: what was read, kept and removed.
    """

    kind: str
    records: pd.DataFrame
    labels: pd.Series
    report: Report

    @property
    def target(self) -> str:
        """The target column: 'server' (flows, http) or 'query' (dns)."""
        return TARGET[self.kind]

    @property
    def groups(self) -> pd.Series:
        """Series target -> source: the capture of every target, aligned with ``labels`` and
        with ``to_bags().targets`` (for ``cross_validate(..., groups=)``, GroupKFold).

        A target seen in several sources belongs to the one holding most of its records
        (ties: the first source name); the report counts such targets.
        """
        per_source = self.records.groupby([self.target, SOURCE], sort=True).size()
        ranked = per_source.reset_index(name="n").sort_values(
            [self.target, "n", SOURCE], ascending=[True, False, True], kind="stable"
        )
        first = ranked.drop_duplicates(self.target)
        return (
            pd.Series(
                first[SOURCE].to_numpy(), index=pd.Index(first[self.target], name=self.target)
            )
            .reindex(self.labels.index)
            .rename("group")
        )

    def filter(self, *, min_bag_size: int | None = None, valid: bool = False) -> Dataset:
        """A copy without small or invalid bags (see :func:`.targets.filter_bags`)."""
        report = replace(
            self.report, removed=list(self.report.removed), notes=list(self.report.notes)
        )
        records, labels = filter_bags(
            self.records, self.labels, self.kind, report, min_bag_size=min_bag_size, valid=valid
        )
        count(report, records, labels, self.kind)
        return Dataset(self.kind, records, labels, report)

    def to_bags(self, device=None) -> Bags:
        """The :class:`~alchemy_torch.Bags` of these records and labels (on ``device``)."""
        bags = Bags.from_records(self.kind, self.records, self.labels)
        return bags if device is None else bags.to(device)


def union(parts: dict, name: str = "union") -> Dataset:
    """Datasets of one kind (``{name: Dataset}``) as one.

    Records keep their part's name in front of their source (``set/file``), so
    :attr:`Dataset.groups` still names each target's capture. A target in several parts is one
    bag with the records of all and the highest of its labels there (malicious > benign >
    unknown); the report counts such targets and those whose labels disagree. Each part's
    sources, removals and notes stay in the report under its name, with its label rule.
    """
    kinds = {part.kind for part in parts.values()}
    if len(kinds) != 1:
        found = ", ".join(f"{n}: {p.kind}" for n, p in parts.items())
        raise ValueError(f"datasets of different kinds ({found}): a union holds one kind")
    kind = kinds.pop()
    report = Report(name, kind, TARGET[kind])
    report.label_rule = ", ".join(f"{n}: {p.report.label_rule}" for n, p in parts.items())
    for part_name, part in parts.items():
        report.sources.update({f"{part_name}/{s}": v for s, v in part.report.sources.items()})
        report.removed += [
            {**r, "reason": f"{part_name}: {r['reason']}"} for r in part.report.removed
        ]
        report.notes += [f"{part_name}: {note}" for note in part.report.notes]
    records = pd.concat(
        [
            p.records.assign(**{SOURCE: f"{n}/" + p.records[SOURCE].astype(str)})
            for n, p in parts.items()
        ],
        ignore_index=True,
    )
    every = pd.concat([part.labels for part in parts.values()])
    by_target = every.groupby(level=0, sort=True)
    labels = by_target.max().astype(np.int8).rename("label").rename_axis(TARGET[kind])
    shared, disagree = int((by_target.size() > 1).sum()), int((by_target.nunique() > 1).sum())
    if shared:
        report.notes.append(
            f"{shared} target(s) appear in several sets ({disagree} with different labels): "
            "one bag each, labelled with the highest (malicious > benign > unknown)"
        )
    count(report, records, labels, kind)
    return Dataset(kind, records, labels, report)
