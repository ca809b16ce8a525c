"""What a load or a filter did, counted per class, printable."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

CLASSES = ("malicious", "benign", "unknown")


@dataclass
class Report:
    """Counts behind a :class:`~alchemy_torch.datasets.Dataset`.

    ``sources``: source (file) -> {'records', 'skipped_lines', 'first_ts', 'last_ts' (as
    read), 'clock' ('epoch' or 'relative', see :mod:`.files`), 'shift' (seconds added by
    ``align_time``)}.
    ``kept``: class -> (targets, records) in the dataset.
    ``removed``: one dict per removal: step, reason, class, targets, records.
    ``notes``: caveats (from the data's SOURCE.md) and derived facts.
    ``label_rule``: how record labels made target labels (a union: each set's, by set).
    """

    name: str
    kind: str
    target: str
    label_rule: str = ""
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
        rule = f"; label rule: {self.label_rule}" if self.label_rule else ""
        out = [f"Dataset {self.name!r} ({self.kind}; target = {self.target}{rule})"]
        if self.sources:
            out.append("  sources:")
            out.extend(f"    {line}" for line in _sources_table(self.sources).splitlines())
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


def format_time(seconds: float, clock: str) -> str:
    """Epoch seconds as a UTC time, relative ones as '+N s'."""
    if clock == "epoch":
        return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
    return f"+{seconds:,.1f} s"


def _sources_table(sources: dict) -> str:
    """One line per source: records, skipped lines, clock and time range as read."""
    table = pd.DataFrame.from_dict(sources, orient="index")
    table.index.name = "source"
    if "clock" in table:
        for end in ("first_ts", "last_ts"):
            table[end] = [format_time(t, c) for t, c in zip(table[end], table["clock"])]
    if "shift" in table:
        table["shift"] = [f"{v:+,.1f} s" for v in table["shift"]]
    if "skipped_lines" in table and not table["skipped_lines"].any():
        table = table.drop(columns="skipped_lines")
    return table.to_string()
