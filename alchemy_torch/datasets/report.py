"""What a load or a filter did, counted per class, printable."""

from __future__ import annotations

from dataclasses import dataclass, field

CLASSES = ("malicious", "benign", "unknown")


@dataclass
class Report:
    """Counts behind a :class:`~alchemy_torch.datasets.Dataset`.

    ``sources``: file -> {'records', 'skipped_lines', 'dropped_halves'} as read.
    ``kept``: class -> (targets, records) in the dataset.
    ``removed``: one dict per removal: step, reason, class, targets, records.
    ``notes``: caveats (from the data's SOURCE.md) and derived facts.
    """

    name: str
    kind: str
    target: str
    sources: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)
    removed: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def remove(self, step: str, reason: str, cls: str, targets: int, records: int) -> None:
        """Record a removal (nothing is recorded when both counts are 0)."""
        if targets or records:
            self.removed.append(
                dict(step=step, reason=reason, cls=cls, targets=int(targets), records=int(records))
            )

    def __str__(self) -> str:
        out = [f"Dataset {self.name!r} ({self.kind}; target = {self.target})"]
        if self.sources:
            out.append("  sources:")
            for name, s in self.sources.items():
                extra = [
                    f"{v:,} {k.replace('_', ' ')}" for k, v in s.items() if k != "records" and v
                ]
                out.append(
                    f"    {name}: {s['records']:,} records"
                    + (f" ({'; '.join(extra)})" if extra else "")
                )
        rows = [(f"{cls}", *self.kept[cls]) for cls in CLASSES if cls in self.kept]
        removed = [
            (f"{r['step']}: {r['reason']} [{r['cls']}]", r["targets"], r["records"])
            for r in self.removed
        ]
        width = max([len(r[0]) for r in rows + removed] + [30])
        for title, table in (("kept", rows), ("removed (step: reason) [class]", removed)):
            if table:
                out.append(f"  {title:<{width + 2}}{'targets':>10}{'records':>12}")
                out.extend(f"    {what:<{width}}{t:>10,}{r:>12,}" for what, t, r in table)
        if self.notes:
            out.append("  notes:")
            out.extend(f"    - {n}" for n in self.notes)
        return "\n".join(out)
