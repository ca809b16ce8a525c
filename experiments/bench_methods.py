"""Benchmark the slides' table on one data type: every method x one model, target-level CV.

Default: the 8 methods (original, noise, gaussian, smote, alchemy1-4) x RF on the default
synthetic flows (1,000 servers, 100 malicious), 5 folds, K = 20, the slides' Alchemy settings
for the kind. Prints seconds per method (features, fits, scoring) and the ROC-AUC table.

    python experiments/bench_methods.py [--kind flows] [--model rf] [--folds 5] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch

from alchemy_torch import Bags, datasets, evaluation, features, methods, models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="flows", choices=["flows", "http", "dns"])
    parser.add_argument("--model", default="rf", choices=list(models.NAMES))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--methods", nargs="*", default=list(methods.NAMES))
    args = parser.parse_args()

    records, labels = datasets.synthetic(args.kind, n_targets=args.targets, seed=0)
    bags = Bags.from_records(args.kind, records, labels)
    print(f"{bags}; {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    rows, total = [], time.perf_counter()
    for name in args.methods:
        start = time.perf_counter()
        res = evaluation.cross_validate(
            bags,
            features.make(args.kind),
            methods.make(name, kind=args.kind),
            models.make(args.model),
            folds=args.folds,
            repeats=args.repeats,
            seed=0,
        )
        seconds = time.perf_counter() - start
        rows.append(
            {
                "method": name,
                "roc_auc_%": f"{100 * res.roc_auc.mean():.2f} ± {100 * res.roc_auc.std():.2f}",
                "seconds": round(seconds, 1),
                "features_s": round(res.features_seconds.sum(), 1),
                "fit_s": round(res.fit_seconds.sum(), 1),
                "score_s": round(res.score_seconds.sum(), 1),
                "train_rows": int((res.train_original + res.train_pseudo_kept).mean()),
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows).set_index("method")
    print(f"\n{args.kind} x {args.model}, {args.folds} folds x {args.repeats} repeats:")
    print(table.to_markdown() if _has_tabulate() else table.to_string())
    print(f"whole table: {time.perf_counter() - total:.1f} s")
    a3, a4 = table.seconds.get("alchemy3"), table.seconds.get("alchemy4")
    if a3 and a4:
        print(f"Alchemy 4 / Alchemy 3 cost: {a4 / a3:.2f}x")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
