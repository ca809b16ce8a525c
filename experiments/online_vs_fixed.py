"""Issue 20's tables: online Alchemy and setnet against the fixed-K = 20 cells, paired.

    python experiments/online_vs_fixed.py multirun/online-grid-all [more folders] [--out DIR]

Reads the cells of ``experiments/online_grid.sh`` (any run or multirun folders of the app)
and prints, per data set and N (malicious training targets), every cell's ROC-AUC (mean ±
std over folds, pooled out-of-fold) with its fit seconds per epoch, then the paired gains
(corrected resampled t-test, Wilcoxon, folds improved; ``report.versus_table``):
DNN + online against DNN + Alchemy 3; setnet (online, and on whole bags) against the best
fixed cell (Alchemy 3 or 4 with RF, SVM or the DNN, the highest mean ROC-AUC on these
folds); setnet online against setnet on whole bags (what the fresh draws add); the variants
(attention pooling, the bag's features joined, a schedule of rates) against their default
and the fixed cells.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from alchemy_torch.evaluation import report

FIXED = [(m, model) for model in ("rf", "svm", "dnn") for m in ("alchemy3", "alchemy4")]
#: the variants' cells (``online_grid.sh variants``), by their report labels
ATTENTION = ("online [model.pooling=attention]", "setnet")
WITH_FEATURES = ("online [model.with_features=True]", "setnet")
RATE_SCHEDULE = ("online [rate_schedule=[0.2,1.0,20]]", "dnn")
#: cells.csv's columns
CELL_COLUMNS = ["data", "kind", "method", "model", "label", "train_malicious", "folds"]
CELL_COLUMNS += ["roc_auc_mean", "roc_auc_std", "roc_auc_pooled", "test_train_ratio"]
CELL_COLUMNS += ["seconds_per_epoch", "wall", "cpu", "fold_auc"]
#: (challenger, references) pairs of the gains table
VERSUS = [
    (("online", "dnn"), [("alchemy3", "dnn")]),
    (("online", "setnet"), FIXED),
    (("original", "setnet"), FIXED),
    (("online", "setnet"), [("original", "setnet")]),
    (ATTENTION, [("online", "setnet")]),
    (ATTENTION, FIXED),
    (WITH_FEATURES, [("online", "setnet")]),
    (WITH_FEATURES, FIXED),
    (RATE_SCHEDULE, [("online", "dnn")]),
    (RATE_SCHEDULE, [("alchemy3", "dnn")]),
]


def cells_of(folders) -> pd.DataFrame:
    """Every cell of ``folders`` with ``seconds_per_epoch`` (fit seconds over epochs trained,
    summed over folds; NaN for models that do not train by epochs) and ``wall`` seconds."""
    parts = []
    for folder in map(Path, folders):
        cells = report.collect(folder)
        timing = [_timing(folder / sub / report.RESULTS_FILE) for sub in cells["folder"]]
        parts.append(cells.join(pd.DataFrame(timing, index=cells.index)))
    return pd.concat(parts, ignore_index=True)


def _timing(path: Path) -> dict:
    results = json.loads(path.read_text())
    folds = pd.DataFrame(results.get("folds") or [])
    epochs = folds["fit_epochs"].sum() if "fit_epochs" in folds else np.nan
    per_epoch = folds["fit_seconds"].sum() / epochs if epochs and epochs > 0 else np.nan
    return {
        "seconds_per_epoch": per_epoch,
        "wall": results.get("seconds", np.nan),
        "cpu": results.get("cpu_seconds", np.nan),
    }


def auc_table(cells: pd.DataFrame) -> pd.DataFrame:
    ok = cells[cells["status"] == "ok"].copy()
    return pd.DataFrame(
        {
            "data": ok["data"],
            "N": ok["train_malicious"].map(lambda n: "all" if pd.isna(n) else f"{n:g}"),
            "cell": ok["label"] + " " + ok["model"],
            "folds": ok["folds"],
            "roc_auc": [
                f"{100 * m:.2f} ± {100 * s:.2f}"
                for m, s in ok[["roc_auc_mean", "roc_auc_std"]].values
            ],
            "pooled": (100 * ok["roc_auc_pooled"]).round(2),
            "s/epoch": ok["seconds_per_epoch"].round(2),
            "wall s": ok["wall"].round(0),
            "CPU s": ok["cpu"].round(0),
        }
    ).sort_values(["data", "N", "cell"], kind="stable")


def gains_table(cells: pd.DataFrame) -> pd.DataFrame:
    parts = [report.versus_table(cells, [challenger], refs) for challenger, refs in VERSUS]
    gains = pd.concat(parts, ignore_index=True)
    gains["N"] = gains["train_malicious"].map(lambda n: "all" if pd.isna(n) else f"{n:g}")
    text = [
        f"{g:+.2f} [{lo:+.1f}, {hi:+.1f}] p={p:.3f} W={w:.2f} ({int(k)}/{int(n)})"
        for g, lo, hi, p, w, k, n in gains[
            ["gain", "ci_low", "ci_high", "p_value", "p_wilcoxon", "folds_improved", "folds"]
        ].values
    ]
    return pd.DataFrame(
        {
            "data": gains["data"],
            "N": gains["N"],
            "challenger": gains["challenger"],
            "its ROC-AUC": gains["challenger_auc"].round(2),
            "reference": gains["reference"],
            "reference ROC-AUC": gains["reference_auc"].round(2),
            "gain": text,
        }
    ).sort_values(["data", "N"], kind="stable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument(
        "--out", help="write cells.csv (every cell, its fold ROC-AUCs) and gains.csv"
    )
    args = parser.parse_args()
    cells = cells_of(args.folders)
    print(report.markdown(auc_table(cells).set_index("data")))
    gains = gains_table(cells)
    print(report.markdown(gains.set_index("data")))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        cells[cells["status"] == "ok"][CELL_COLUMNS].to_csv(out / "cells.csv", index=False)
        parts = [report.versus_table(cells, [c], refs) for c, refs in VERSUS]
        pd.concat(parts, ignore_index=True).to_csv(out / "gains.csv", index=False)


if __name__ == "__main__":
    main()
