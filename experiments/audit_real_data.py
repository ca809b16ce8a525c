"""Confound audit of every real set in ../shared/data, before and after time alignment.

    .venv/bin/python experiments/audit_real_data.py [--root DIR] [--threshold 0.95]

Prints the Markdown table of experiments/README.md ("Real data: confound audit"): per set,
the targets per class, the sources (captures) each class comes from and their clocks, and the
features whose single-feature ROC-AUC on the original bags is beyond the threshold, loaded as
read (``align_time=None``) and with every capture shifted to start at 0 (``"capture"``).
The default extractor of each kind is fitted on all of a set's bags (a diagnostic, not an
evaluation); DNS runs without a GeoIP table.
"""

from __future__ import annotations

import argparse
import warnings

from alchemy_torch import datasets, features
from alchemy_torch.datasets.registry import LOCAL

SHOWN = 4  # flagged features named per cell, the most separating first


def flagged(audit: datasets.Audit) -> str:
    """'N: feature (AUC), ...' of the flagged features, most separating first."""
    if audit.auc["auc"].isna().all():
        return "n/a (one class)"
    rows = list(audit.flagged.itertuples())
    if not rows:
        return "none"
    named = ", ".join(f"{r.feature} ({r.auc:.2f})" for r in rows[:SHOWN])
    return f"{len(rows)}: {named}" + (f", +{len(rows) - SHOWN} more" if len(rows) > SHOWN else "")


def sources(audit: datasets.Audit) -> str:
    """Per class: how many sources, with which clocks; and how many sources hold both."""
    table = audit.sources[audit.sources["class"] != "unknown"]
    parts = []
    for cls, group in table.groupby("class", sort=False):
        clocks = "/".join(sorted(set(group["clock"])))
        parts.append(f"{cls[:3]}: {len(group)} ({clocks})")
    shared = (table.groupby("source")["class"].nunique() > 1).sum()
    return "; ".join(parts) + f"; shared: {shared}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="folder of the sets (default: shared/data)")
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    print(
        "| set | kind | mal / ben targets | sources per class (clock); shared | "
        f"beyond {args.threshold:g} as read | beyond {args.threshold:g} with "
        "align_time='capture' |"
    )
    print("|---|---|---|---|---|---|")
    periods = []
    for name in sorted(LOCAL):
        found = {}
        for align in (None, "capture"):
            ds = datasets.load(name, args.root, align_time=align)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # dns: no GeoIP table
                extractor = features.make(ds.kind)
                found[align] = datasets.audit(ds, extractor, threshold=args.threshold)
            if ds.kind == "dns":
                periods.append(
                    f"{name} align_time={align!r}: {extractor.period_ / 86400:,.2f} days"
                )
        kept = ds.report.kept
        print(
            f"| {name} | {ds.kind} | {kept['malicious'][0]} / {kept['benign'][0]} | "
            f"{sources(found[None])} | {flagged(found[None])} | {flagged(found['capture'])} |"
        )
    print("\nLearnt DNS monitoring period (bag_ratio_lifetime's denominator):")
    print("\n".join(f"- {p}" for p in periods))


if __name__ == "__main__":
    main()
