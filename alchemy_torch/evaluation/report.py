"""Reports of app runs: the slides' table (CSV and Markdown) and plots (PNG).

cells = collect("multirun/paper_table")    # one row per cell folder (its results.json)
table = paper_table(cells)                  # methods x (data, model): mean ± std ROC-AUC in %
written = write_report("multirun/paper_table")   # into multirun/paper_table/report/

A cell folder holds ``results.json`` (status, metrics per fold, parameters, config),
``scores.parquet`` (out-of-fold scores) and, for Alchemy 4, ``filtering.parquet`` (every
pseudo vector's filtering distance and threshold); :mod:`alchemy_torch.app.job` writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = [
    "FILTERING_FILE",
    "RESULTS_FILE",
    "SCORES_FILE",
    "SLIDES_AUC",
    "collect",
    "markdown",
    "paired_gains",
    "paper_table",
    "write_report",
]

RESULTS_FILE, SCORES_FILE, FILTERING_FILE = "results.json", "scores.parquet", "filtering.parquet"
#: the methods in the slides' row order, then the extra Gaussian noise
METHOD_ORDER = ("original", "noise", "gaussian", "smote", "alchemy1", "alchemy2", "alchemy3")
METHOD_ORDER += ("alchemy4",)
MODEL_ORDER = ("rf", "dnn", "svm")
#: overrides that name the cell or change no result (configs/alchemy.yaml's exclude_keys);
#: any other one makes a variant of the method
CELL_KEYS = ("data", "method", "model", "experiment", "output_dir", "resume", "progress")
CELL_KEYS += ("model.n_jobs", "data.name", "data.names", "evaluation.test_names")
CELL_KEYS += ("evaluation.test_paths",)  # a transfer cell's sides: its data, not a variant

#: The slides' ROC-AUC in % (METHOD.md §6): NetFlow = flows, PDNS = dns, HTTP = http.
SLIDES_AUC = pd.DataFrame(
    [
        [88.61, 80.33, 75.88, 99.03, 97.54, 97.54, 93.15, 83.05, 82.99],
        [88.71, 80.80, 78.21, 98.81, 97.69, 97.59, 92.61, 84.05, 83.49],
        [89.26, 80.81, 75.24, 99.13, 97.06, 97.89, 93.67, 83.66, 87.57],
        [88.70, 83.94, 80.07, 99.18, 97.54, 97.39, 94.34, 87.40, 87.15],
        [83.60, 75.65, 75.52, 99.13, 97.56, 97.98, 92.98, 87.39, 83.11],
        [90.07, 85.21, 82.07, 99.19, 97.82, 98.66, 94.58, 88.96, 88.38],
        [90.13, 85.00, 82.06, 99.21, 97.84, 98.59, 94.76, 89.17, 88.19],
    ],
    index=pd.Index(
        ["original", "noise", "smote", "alchemy1", "alchemy2", "alchemy3", "alchemy4"],
        name="method",
    ),
    columns=pd.MultiIndex.from_product(
        [("flows", "dns", "http"), MODEL_ORDER], names=["kind", "model"]
    ),
)


def collect(folder) -> pd.DataFrame:
    """One row per cell under ``folder`` (every results.json, a run or a multirun).

    Columns: folder, status, error, data, kind, method, model, variant (the overrides that
    set this cell apart from the others of its method), label (method and variant),
    iterations and option (of the resampler, NaN without one), folds, the mean and std of
    every metric and fold_auc (the ROC-AUC of every (repeat, fold), in order).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    rows = []
    for path in sorted(folder.rglob(RESULTS_FILE)):
        results = json.loads(path.read_text())
        resampler = (results.get("params") or {}).get("resampler") or {}
        rows.append(
            {
                "folder": str(path.parent.relative_to(folder)),
                "status": results["status"],
                "error": results.get("error"),
                **results["cell"],
                "overrides": [o for o in results["overrides"] if o.split("=")[0] not in CELL_KEYS],
                "iterations": resampler.get("iterations", np.nan),
                "option": resampler.get("option", np.nan),
                **(results.get("summary") or {}),
                "fold_auc": [fold["roc_auc"] for fold in results.get("folds") or []],
            }
        )
    if not rows:
        raise FileNotFoundError(f"no {RESULTS_FILE} under {folder}: not a run or multirun folder")
    cells = pd.DataFrame(rows)
    shared = set.intersection(*(set(o) for o in cells["overrides"]))
    cells["variant"] = [
        ",".join(o for o in overrides if o not in shared) for overrides in cells["overrides"]
    ]
    shown = cells["variant"].str.replace("method.", "", regex=False)  # the row is the method
    cells["label"] = cells["method"].where(shown == "", cells["method"] + " [" + shown + "]")
    rank = {name: i for i, name in enumerate(METHOD_ORDER)}
    order = cells["method"].map(rank).fillna(len(rank))
    cells = cells.assign(_rank=order).sort_values(  # K and the option in numeric order
        ["_rank", "method", "iterations", "option", "label", "data", "model"], kind="stable"
    )
    return cells.drop(columns=["_rank", "overrides"]).reset_index(drop=True)


def paper_table(cells: pd.DataFrame, metric: str = "roc_auc") -> pd.DataFrame:
    """Rows = cell labels (methods), columns = "data model" with mean ± std of ``metric``
    in %, each followed by the slides' number ("data model (slides)") when the data's kind
    has one. A failed cell reads "failed"."""
    table = pd.DataFrame(index=pd.Index(cells["label"].unique(), name="method"))
    for data, model, mine in _columns(cells):
        values = {
            row.label: (
                f"{100 * row[f'{metric}_mean']:.2f} ± {100 * row[f'{metric}_std']:.2f}"
                if row.status == "ok"
                else "failed"
            )
            for _, row in mine.iterrows()
        }
        table[f"{data} {model}"] = pd.Series(values)
        kind = mine["kind"].iloc[0]
        if metric == "roc_auc" and (kind, model) in SLIDES_AUC.columns:
            slides = SLIDES_AUC[(kind, model)]
            table[f"{data} {model} (slides)"] = [
                f"{slides[m]:.2f}" if m in slides.index else ""
                for m in cells.drop_duplicates("label").set_index("label")["method"]
            ]
    return table.fillna("")


def paired_gains(cells: pd.DataFrame, baseline: str = "original") -> pd.DataFrame:
    """Rows = cell labels, columns = "data model": the mean ± std over folds of the ROC-AUC
    difference to the ``baseline`` method's cell on the same folds (same seed, folds and
    repeats), in points, and how many folds improved ("+1.20 ± 2.03 (11/15)"). Empty where
    the baseline is missing, failed or has other folds."""
    table = pd.DataFrame(index=pd.Index(cells["label"].unique(), name="method"))
    for data, model, mine in _columns(cells):
        reference = mine[(mine["method"] == baseline) & (mine["status"] == "ok")]
        if len(reference) != 1:
            continue
        base = np.asarray(reference["fold_auc"].iloc[0])
        values = {}
        for row in mine[(mine["status"] == "ok") & (mine["method"] != baseline)].itertuples():
            if len(row.fold_auc) == len(base):
                gain = 100 * (np.asarray(row.fold_auc) - base)
                better = f"{(gain > 0).sum()}/{len(gain)}"
                values[row.label] = f"{gain.mean():+.2f} ± {gain.std(ddof=1):.2f} ({better})"
        table[f"{data} {model}"] = pd.Series(values, dtype=object)
    baselines = cells.loc[cells["method"] == baseline, "label"]
    return table.drop(index=baselines.unique()).fillna("")


def _columns(cells: pd.DataFrame):
    """(data, model, its cells) in the slides' order: flows, dns, http; rf, dnn, svm."""
    kinds = ("flows", "dns", "http")
    datas = cells.drop_duplicates("data")
    datas = sorted(
        zip(datas["kind"], datas["data"]), key=lambda kd: ((*kinds, kd[0]).index(kd[0]), kd[1])
    )
    models = sorted(cells["model"].unique(), key=lambda m: (*MODEL_ORDER, m).index(m))
    for _, data in datas:
        for model in models:
            mine = cells[(cells["data"] == data) & (cells["model"] == model)]
            if not mine.empty:
                yield data, model, mine


def markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``table`` (index as the first column)."""
    header = [table.index.name or "", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in table.iterrows()]
    return "\n".join(lines) + "\n"


def write_report(folder, out=None) -> dict:
    """The report of a run or multirun ``folder`` into ``out`` (default ``folder/report``):
    table.csv and table.md (the slides' table), gains.csv and gains.md (paired gains over
    Original), cells.csv (every cell and metric), and PNG plots: auc_vs_k.png (when K
    varies), roc_DATA_MODEL.png, distances_DATA_MODEL.png (Alchemy 4).
    Returns {"table": markdown, "gains": markdown ("" without Original cells to compare with),
    "files": [paths], "failed": cells}."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder / "report"
    cells = collect(folder)
    out.mkdir(parents=True, exist_ok=True)
    table, gains = paper_table(cells), paired_gains(cells)
    text, gains_text = markdown(table), markdown(gains) if len(gains.columns) else ""
    table.to_csv(out / "table.csv")
    (out / "table.md").write_text(text)
    gains.to_csv(out / "gains.csv")
    (out / "gains.md").write_text(gains_text)
    cells.to_csv(out / "cells.csv", index=False)
    files = [out / n for n in ("table.csv", "table.md", "gains.csv", "gains.md", "cells.csv")]
    ok = cells[cells["status"] == "ok"]
    figure = auc_vs_iterations(ok)
    if figure is not None:
        figure.savefig(out / "auc_vs_k.png", dpi=120)
        files.append(out / "auc_vs_k.png")
    for (data, model), group in ok.groupby(["data", "model"], sort=False):
        plots = {"roc": roc_curves(group, folder), "distances": distances(group, folder)}
        for name, figure in plots.items():
            if figure is not None:
                path = out / f"{name}_{data}_{model}.png"
                figure.savefig(path, dpi=120)
                files.append(path)
    failed = cells[cells["status"] != "ok"]
    return {"table": text, "gains": gains_text, "files": files, "failed": failed}


# -- plots ----------------------------------------------------------------------------------
def auc_vs_iterations(cells: pd.DataFrame, metric: str = "roc_auc") -> Figure | None:
    """Mean ± std ``metric`` against K, one line per rate option, one panel per (data, model,
    method); None when no method was run with two K or more."""
    resampled = cells.dropna(subset=["iterations"])
    panels = [
        (key, group)
        for key, group in resampled.groupby(["data", "model", "method"], sort=False)
        if group["iterations"].nunique() > 1
    ]
    if not panels:
        return None
    figure = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
    for ax, ((data, model, method), group) in zip(
        np.atleast_1d(figure.subplots(1, len(panels))), panels
    ):
        for option, line in group.groupby("option"):
            line = line.sort_values("iterations")
            ax.errorbar(
                line["iterations"],
                100 * line[f"{metric}_mean"],
                yerr=100 * line[f"{metric}_std"],
                marker="o",
                capsize=3,
                label=f"option {int(option)}",
            )
        ax.set_xscale("log")
        ax.set_xticks(sorted(group["iterations"].unique()), minor=False)
        ax.xaxis.set_major_formatter("{x:g}")
        ax.minorticks_off()
        ax.set_xlabel("resampling iterations K")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{method}: {data}, {model}")
        ax.legend()
    return figure


def roc_curves(cells: pd.DataFrame, folder: Path) -> Figure:
    """Pooled out-of-fold ROC curve of every cell of one (data, model)."""
    figure = Figure(figsize=(6, 5.5), layout="constrained")
    ax = figure.subplots()
    for _, cell in cells.iterrows():
        scores = pd.read_parquet(folder / cell["folder"] / SCORES_FILE)
        fpr, tpr, _ = roc_curve(scores["label"], scores["score"])
        auc = roc_auc_score(scores["label"], scores["score"])
        ax.plot(fpr, tpr, label=f"{cell['label']} ({100 * auc:.1f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    data, model = cells["data"].iloc[0], cells["model"].iloc[0]
    ax.set_title(f"ROC, pooled out-of-fold: {data}, {model}")
    ax.legend(fontsize="small", title="method (AUC %)", loc="lower right")
    return figure


def distances(cells: pd.DataFrame, folder: Path) -> Figure | None:
    """Histogram of Alchemy 4's filtering distances (kept, filtered) with every fold's
    threshold, one panel per Alchemy 4 cell; None without one."""
    paths = [(c["label"], folder / c["folder"] / FILTERING_FILE) for _, c in cells.iterrows()]
    paths = [(label, path) for label, path in paths if path.is_file()]
    if not paths:
        return None
    figure = Figure(figsize=(6 * len(paths), 4), layout="constrained")
    for ax, (label, path) in zip(np.atleast_1d(figure.subplots(1, len(paths))), paths):
        pseudo = pd.read_parquet(path)
        bins = np.histogram_bin_edges(pseudo["distance"], bins=50)
        kept = pseudo["kept"].to_numpy()
        ax.hist(
            [pseudo["distance"][kept], pseudo["distance"][~kept]],
            bins=bins,
            stacked=True,
            label=[f"kept ({kept.sum()})", f"filtered ({(~kept).sum()})"],
        )
        for threshold in np.unique(pseudo["threshold"]):
            ax.axvline(threshold, color="black", linestyle="--", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("|s(pseudo) - s(original)|   (dashed: threshold per fold)")
        ax.set_ylabel("pseudo vectors")
        ax.set_title(f"{label}: {cells['data'].iloc[0]}, {cells['model'].iloc[0]}")
        ax.legend()
    return figure
