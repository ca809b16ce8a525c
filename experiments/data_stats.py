"""The statistics experiments/README.md quotes about data and results, each from one command.

    python experiments/data_stats.py bags                 # synthetic bag sizes per class
    python experiments/data_stats.py levels [--scale 0.3] # distinct values per benchmark column
    python experiments/data_stats.py cells DIR [DIR ...]  # selection, filtering, score medians
    python experiments/data_stats.py arrow --records N    # the synthetic writer's Arrow pool

``bags``: the app's synthetic sets (``configs/data/base/synthetic.yaml``: 1,000 targets, 10 %
malicious, difficulty 0.5, seed 0), per class the share of bags of at most ``--small`` (30,
option 1's static size) records and the median bag size. ``levels``: the distinct values of
the flows benchmark's packets, bytes per packet and bytes, and of the 36 HTTP request
features (``bench_features.py``'s data at ``--scale``), against which the histogram rule
(``ops.histogram_fits``) decides. ``cells``: per cell folder written by ``alchemy`` (any
depth below DIR), the out-of-fold score medians per class and, for Alchemy 4, the share of
training targets its selection skipped and of pseudo vectors its filter dropped (min-max
over folds). ``arrow``: peak RSS and the peak of Arrow's memory pool while
``scale.write_synthetic`` writes N flows.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from bench_features import make_bags

from alchemy_torch import Bags, datasets
from alchemy_torch.evaluation.report import RESULTS_FILE, SCORES_FILE
from alchemy_torch.features.http import request_table
from alchemy_torch.scale import write_synthetic

#: the app's synthetic data (configs/data/base/synthetic.yaml)
APP_SYNTHETIC = {"n_targets": 1000, "malicious_fraction": 0.1, "difficulty": 0.5, "seed": 0}


def bag_sizes(kinds: list[str], small: int) -> pd.DataFrame:
    """Per (kind, class): bags, share of bags of at most ``small`` records, median size."""
    rows = []
    for kind in kinds:
        bags = Bags.from_records(kind, *datasets.synthetic(kind, **APP_SYNTHETIC))
        sizes = bags.offsets.diff().numpy()
        labels = bags.labels.numpy()
        for name, keep in (("malicious", labels == 1), ("benign", labels == 0), ("all", None)):
            s = sizes if keep is None else sizes[keep]
            rows.append(
                {
                    "kind": kind,
                    "class": name,
                    "bags": len(s),
                    f"share <= {small}": f"{(s <= small).mean():.0%}",
                    "median": float(np.median(s)),
                }
            )
    return pd.DataFrame(rows)


def levels(scale: float) -> None:
    """Distinct values of the benchmark's flow columns and HTTP request features."""
    flows = make_bags("flows", scale)
    pkts, size = flows.columns["pkts"], flows.columns["bytes"]
    per_packet = size.double() / pkts.clamp(min=1)
    print(f"flows at scale {scale}: {len(flows):,} bags, {len(pkts):,} records")
    for name, column in (("pkts", pkts), ("bytes_per_pkt", per_packet), ("bytes", size)):
        print(f"  {name}: {column.unique().numel():,} distinct values")
    http = make_bags("http", scale)
    table = request_table(http)
    counts = np.array([row.unique().numel() for row in table])
    print(f"http at scale {scale}: {len(http):,} bags, {table.shape[1]:,} requests")
    for bound in (100, 300, 1000):
        print(f"  request features with <= {bound} distinct values: {(counts <= bound).sum()}")
    print(f"  distinct values, sorted: {sorted(counts.tolist())}")


def cells(folders: list[str]) -> pd.DataFrame:
    """One row per cell below ``folders``: score medians per class, Alchemy 4's shares."""
    rows = []
    for path in sorted(p for f in folders for p in Path(f).rglob(RESULTS_FILE)):
        result = json.loads(path.read_text())
        if result.get("status") != "ok":
            continue
        scores = pd.read_parquet(path.parent / SCORES_FILE)
        folds = pd.DataFrame(result["folds"])
        pseudo = folds.train_pseudo_kept + folds.train_filtered
        skipped = 1 - folds.regenerated_targets / folds.train_original
        dropped = folds.train_filtered / pseudo.where(pseudo > 0)
        cell = result["cell"]
        rows.append(
            {
                "cell": f"{cell['data']} {cell['method']} {cell['model']}",
                "revision": result.get("git"),
                "median score malicious": scores.score[scores.label == 1].median(),
                "median score benign": scores.score[scores.label == 0].median(),
                "skipped by selection": _span(skipped) if cell["method"] == "alchemy4" else "",
                "filtered": _span(dropped) if cell["method"] == "alchemy4" else "",
            }
        )
    return pd.DataFrame(rows)


def _span(share: pd.Series) -> str:
    return f"{share.min():.1%} - {share.max():.1%}"


def arrow(records: int) -> None:
    """Peak RSS and Arrow pool of writing ``records`` synthetic flows to a temporary folder."""
    with tempfile.TemporaryDirectory() as out:
        n = write_synthetic("flows", records, Path(out) / "records")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    pool = pa.default_memory_pool()
    print(
        f"wrote {n:,} flows: peak RSS {rss:.2f} GB, Arrow pool ({pool.backend_name}) peak "
        f"{pool.max_memory() / 2**30:.2f} GB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bags", help="synthetic bag sizes per class")
    b.add_argument("--kinds", nargs="+", default=["flows", "http", "dns"])
    b.add_argument("--small", type=int, default=30)
    lv = sub.add_parser("levels", help="distinct values per benchmark column")
    lv.add_argument("--scale", type=float, default=0.3)
    c = sub.add_parser("cells", help="selection, filtering and score medians of cells")
    c.add_argument("folders", nargs="+")
    a = sub.add_parser("arrow", help="the synthetic writer's Arrow pool")
    a.add_argument("--records", type=int, required=True)
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    if args.command == "bags":
        print(bag_sizes(args.kinds, args.small).to_string(index=False))
    elif args.command == "levels":
        levels(args.scale)
    elif args.command == "cells":
        print(cells(args.folders).to_string(index=False))
    else:
        arrow(args.records)


if __name__ == "__main__":
    main()
