"""Tuning without optimism: nested CV of Alchemy 4's settings against the slides' and Original.

For each synthetic kind: the outer folds are cross_validate's (evaluation.repeat_splits); in
each, GridSearchCV tunes the rate option, K and f on inner folds of the outer training targets
alone, refits the best on them and scores the untouched outer test fold. Original and Alchemy 4
with the slides' settings run through evaluation.cross_validate on the same outer folds and
seeds (the tuned refit of outer fold k takes fold k's seeds too), so the gains are paired.
Prints one Markdown table (ROC-AUC in %, mean ± std over outer folds; paired gains with the
folds improved) and the settings chosen per outer fold.

    python experiments/nested_cv.py [--kinds flows http] [--targets 1000] [--outer 5] [--inner 3]
        [--options 3 4] [--iterations 5 20] [--f 2 5] [--train-malicious N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.model_selection import cross_validate as sk_cross_validate

from alchemy_torch import Bags, datasets, evaluation, features, methods, models
from alchemy_torch.evaluation.report import markdown

GRID_KEYS = {
    "options": "method__resampler__option",
    "iterations": "method__resampler__iterations",
    "f": "method__f",
}


def nested(kind: str, args) -> dict:
    """Per outer fold ROC-AUC of Original, slides' Alchemy 4 and tuned Alchemy 4, and the
    settings the inner search chose."""
    records, labels = datasets.synthetic(kind, n_targets=args.targets, seed=args.seed)
    bags = Bags.from_records(kind, records, labels)
    y = bags.labels.numpy()
    outer = evaluation.repeat_splits(
        y, args.outer, args.seed, 0, train_malicious=args.train_malicious
    )
    model = models.make("rf", n_jobs=args.n_jobs)
    auc = {}
    for name in ("original", "alchemy4"):
        res = evaluation.cross_validate(
            bags,
            features.make(kind),
            methods.make(name, kind=kind),
            model,
            folds=args.outer,
            seed=args.seed,
            train_malicious=args.train_malicious,
            progress=True,
        )
        auc["slides" if name == "alchemy4" else name] = res.roc_auc.to_numpy()
        print(f"{kind} {name}: {100 * res.roc_auc.mean():.2f}", flush=True)
    estimator = evaluation.TargetClassifier(
        bags,
        features.make(kind),
        methods.make("alchemy4", kind=kind),
        model,
        seed=args.seed,
        splits=outer,
    )
    grid = {key: getattr(args, name) for name, key in GRID_KEYS.items()}
    inner = StratifiedKFold(args.inner, shuffle=True, random_state=args.seed)
    search = GridSearchCV(estimator, grid, scoring="roc_auc", cv=inner, verbose=1)
    tuned = sk_cross_validate(
        search,
        np.arange(len(bags)),
        y,
        cv=outer,
        scoring="roc_auc",
        return_estimator=True,
        verbose=2,
    )
    auc["tuned"] = tuned["test_score"]
    chosen = [
        tuple(s.best_params_[GRID_KEYS[name]] for name in GRID_KEYS) for s in tuned["estimator"]
    ]
    return {"auc": auc, "chosen": chosen}


def row(kind: str, result: dict) -> dict:
    auc = {k: 100 * v for k, v in result["auc"].items()}

    def gain(a: str, b: str) -> str:
        diff = auc[a] - auc[b]
        return f"{diff.mean():+.2f} ± {diff.std(ddof=1):.2f} ({(diff > 0).sum()}/{len(diff)})"

    return {
        "data": f"synthetic {kind}",
        "Original": f"{auc['original'].mean():.2f} ± {auc['original'].std(ddof=1):.2f}",
        "Alchemy 4, slides": f"{auc['slides'].mean():.2f} ± {auc['slides'].std(ddof=1):.2f}",
        "Alchemy 4, tuned": f"{auc['tuned'].mean():.2f} ± {auc['tuned'].std(ddof=1):.2f}",
        "tuned - slides": gain("tuned", "slides"),
        "tuned - Original": gain("tuned", "original"),
        "slides - Original": gain("slides", "original"),
        "chosen (option, K, f) per outer fold": "; ".join(
            ", ".join(f"{v:g}" for v in c) for c in result["chosen"]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["flows", "http"])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--outer", type=int, default=5)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--options", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--iterations", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--f", type=float, nargs="+", default=[2.0, 5.0])
    parser.add_argument("--train-malicious", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=-1, help="the forest's n_jobs")
    args = parser.parse_args()

    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    start = time.perf_counter()
    rows = [row(kind, nested(kind, args)) for kind in args.kinds]
    print(markdown(pd.DataFrame(rows).set_index("data")))
    print(
        f"\nrevision {revision}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"wall {time.perf_counter() - start:.0f} s; ROC-AUC in % over {args.outer} outer folds; "
        "gains: mean ± std of the paired per-fold differences (folds improved)"
    )


if __name__ == "__main__":
    main()
