"""Reports of app runs: the slides' table (CSV and Markdown) and plots (PNG).

cells = collect("multirun/paper_table")    # one row per cell folder (its results.json)
table = paper_table(cells)                  # methods x (data, model): mean ± std ROC-AUC in %
gains = gain_table(cells)                   # paired gains over Original, CI and p-values
versus = versus_table(cells, [("online", "setnet")], [("alchemy3", "rf"), ("alchemy3", "dnn")])
written = write_report("multirun/paper_table")   # into multirun/paper_table/report/

A cell folder holds ``results.json`` (status, metrics per fold, parameters, config),
``scores.parquet`` (out-of-fold scores) and, for Alchemy 4, ``filtering.parquet`` (every
pseudo vector's filtering distance and threshold); :mod:`alchemy_torch.app.job` writes them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from omegaconf import OmegaConf
from sklearn.metrics import roc_auc_score, roc_curve

from alchemy_torch import methods, models
from alchemy_torch.evaluation.significance import corrected_ttest, wilcoxon_p
from alchemy_torch.io.schema import KINDS

__all__ = [
    "CELL_KEYS",
    "FILTERING_FILE",
    "RESULTS_FILE",
    "SCORES_FILE",
    "SIGNIFICANCE",
    "SLIDES_AUC",
    "collect",
    "gain_table",
    "markdown",
    "paired_gains",
    "paper_table",
    "scarcity_markdown",
    "scarcity_table",
    "versus_table",
    "write_report",
]

RESULTS_FILE, SCORES_FILE, FILTERING_FILE = "results.json", "scores.parquet", "filtering.parquet"
#: the slides' models in their column order (METHOD.md §6)
SLIDES_MODELS = ("rf", "dnn", "svm")
#: rows: methods.NAMES's order (the slides' rows, extra baselines beside their kin); columns:
#: the slides' kinds and models first, then any other
METHOD_ORDER = tuple(methods.NAMES)
MODEL_ORDER = (*SLIDES_MODELS, *(m for m in models.NAMES if m not in SLIDES_MODELS))
#: the report's axes: rows (method), columns (data, model) and the scarcity axis; a transfer
#: cell's sides (data.name(s), evaluation.test_*) are its data, which results.json names
AXES = ("data", "method", "model", "evaluation.train_malicious")
AXES += ("data.name", "data.names", "evaluation.test_names", "evaluation.test_paths")


def _folder_keys() -> tuple:
    """configs/alchemy.yaml's ``exclude_keys``: overrides that do not name a cell folder."""
    config = OmegaConf.load(resources.files("alchemy_torch.configs") / "alchemy.yaml")
    return tuple(config.hydra.job.config.override_dirname.exclude_keys)


#: overrides that are the report's axes or change no result (the folder's exclude_keys, which
#: also drop ``data``, a folder level of its own); any other one makes a variant of the method
CELL_KEYS = tuple(dict.fromkeys((*AXES, *_folder_keys(), "output_dir")))
#: a gain is marked significant below this p-value of the corrected resampled t-test
SIGNIFICANCE = 0.05
#: test folds with fewer malicious targets than this on average: the tables add the pooled
#: out-of-fold ROC-AUC beside the mean of the fold AUCs (one target moves a fold's AUC a lot)
FEW_TEST_MALICIOUS = 10

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
        [("flows", "dns", "http"), SLIDES_MODELS], names=["kind", "model"]
    ),
)


def collect(folder) -> pd.DataFrame:
    """One row per cell under ``folder`` (every results.json, a run or a multirun).

    Columns: folder, status, error, data, kind, method, model, variant (the overrides that
    set this cell apart from the others of its method), label (method and variant),
    iterations and option (of the resampler, NaN without one), train_malicious (the
    evaluation's scarcity setting, NaN for all), folds, the mean and std of every metric,
    roc_auc_pooled (the ROC-AUC of the pooled out-of-fold scores, mean over repeats),
    test_malicious (mean per test fold), train_malicious_kept (malicious training targets,
    mean per fold), test_train_ratio (mean n_test / n_train over the
    folds: the t-test's correction) and fold_auc (the ROC-AUC of every (repeat, fold), in
    order).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    rows = []
    for path in sorted(folder.rglob(RESULTS_FILE)):
        results = json.loads(path.read_text())
        resampler = (results.get("params") or {}).get("resampler") or {}
        evaluation = (results.get("config") or {}).get("evaluation") or {}
        folds = pd.DataFrame(results.get("folds") or [])
        rows.append(
            {
                "folder": str(path.parent.relative_to(folder)),
                "status": results["status"],
                "error": results.get("error"),
                **results["cell"],
                "overrides": [o for o in results["overrides"] if o.split("=")[0] not in CELL_KEYS],
                "iterations": resampler.get("iterations", np.nan),
                "option": resampler.get("option", np.nan),
                "train_malicious": _number(evaluation.get("train_malicious")),
                **(results.get("summary") or {}),
                "roc_auc_pooled": _pooled_auc(path.parent / SCORES_FILE),
                **_fold_counts(folds, evaluation.get("folds")),
                "fold_auc": folds["roc_auc"].tolist() if "roc_auc" in folds else [],
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
    cells = cells.assign(_rank=order).sort_values(  # K, the option and N in numeric order
        ["_rank", "method", "iterations", "option", "label", "data", "model", "train_malicious"],
        kind="stable",
    )
    return cells.drop(columns=["_rank", "overrides"]).reset_index(drop=True)


def _number(value) -> float:
    """A count or fraction from a config; NaN for null (all)."""
    return np.nan if value is None else float(value)


def _pooled_auc(path: Path) -> float:
    """ROC-AUC of a cell's out-of-fold scores pooled over its folds, mean over repeats."""
    if not path.is_file():
        return np.nan
    scores = pd.read_parquet(path, columns=["repeat", "label", "score"])
    aucs = [
        roc_auc_score(s["label"], s["score"])
        for _, s in scores.groupby("repeat")
        if s["label"].nunique() == 2
    ]
    return float(np.mean(aucs)) if aucs else np.nan


def _fold_counts(folds: pd.DataFrame, k) -> dict:
    """Means over the folds of the malicious test targets, the malicious training targets
    kept and n_test / n_train (from the per-fold counts; else 1 / (k - 1) for k folds; NaN
    when neither is known)."""
    if {"test_targets", "train_original"} <= set(folds.columns):
        ratio = float((folds["test_targets"] / folds["train_original"]).mean())
    else:
        ratio = 1 / (k - 1) if k else np.nan
    means = {
        name: float(folds[name].mean()) if name in folds else np.nan
        for name in ("test_malicious", "train_malicious")
    }
    return {
        "test_malicious": means["test_malicious"],
        "train_malicious_kept": means["train_malicious"],
        "test_train_ratio": ratio,
    }


def paper_table(cells: pd.DataFrame, metric: str = "roc_auc") -> pd.DataFrame:
    """Rows = cell labels (methods), columns = "data model" (with " N=..." when the scarcity
    setting varies) with mean ± std of ``metric`` in %, each followed by the slides' number
    ("data model (slides)") when the data's kind has one and the cells are cross-validated
    on every malicious target, and by the pooled out-of-fold
    ROC-AUC ("data model (pooled)") when test folds hold few malicious targets
    (:data:`FEW_TEST_MALICIOUS`). A failed cell reads "failed"."""
    table = pd.DataFrame(index=pd.Index(cells["label"].unique(), name="method"))
    for column, mine in _columns(cells):
        ok = mine[mine["status"] == "ok"]
        values = {row.label: "failed" for row in mine.itertuples()}
        for _, row in ok.iterrows():
            mean, std = 100 * row[f"{metric}_mean"], 100 * row[f"{metric}_std"]
            values[row.label] = f"{mean:.2f} ± {std:.2f}"
        table[column] = pd.Series(values)
        if metric == "roc_auc" and (ok["test_malicious"] < FEW_TEST_MALICIOUS).any():
            table[f"{column} (pooled)"] = pd.Series(
                {row.label: f"{100 * row.roc_auc_pooled:.2f}" for row in ok.itertuples()}
            )
        kind, model = mine["kind"].iloc[0], mine["model"].iloc[0]
        # the slides cross-validated every malicious target: a scarce or transfer cell differs
        comparable = mine["train_malicious"].isna().all() and _cross_validated(mine)
        if metric == "roc_auc" and (kind, model) in SLIDES_AUC.columns and comparable:
            slides = SLIDES_AUC[(kind, model)]
            table[f"{column} (slides)"] = [
                f"{slides[m]:.2f}" if m in slides.index else ""
                for m in cells.drop_duplicates("label").set_index("label")["method"]
            ]
    return table.fillna("")


def _cross_validated(cells: pd.DataFrame) -> bool:
    """Whether every one of ``cells`` was cross-validated (not a transfer across captures)."""
    return "protocol" not in cells or not (cells["protocol"] == "transfer").any()


def gain_table(cells: pd.DataFrame, baseline: str = "original") -> pd.DataFrame:
    """The paired ROC-AUC gain over the ``baseline`` method's cell on the same folds (same
    seed, folds and repeats), one row per other cell: method (its label), data, model,
    train_malicious, gain (mean over folds, in points), ci_low and ci_high (its 95 %
    confidence interval) and p_value of the corrected resampled t-test
    (:func:`~alchemy_torch.evaluation.corrected_ttest`), p_wilcoxon (signed-rank test),
    folds_improved, folds. Cells without an ok baseline with as many folds are left out."""
    rows = []
    for _, mine in _columns(cells):
        ok = mine[mine["status"] == "ok"]
        reference = ok[ok["method"] == baseline]
        if len(reference) != 1:
            continue
        base = reference.iloc[0]
        for row in ok[ok["method"] != baseline].itertuples():
            if len(row.fold_auc) != len(base.fold_auc):
                continue
            rows.append(
                {
                    "method": row.label,
                    "data": row.data,
                    "model": row.model,
                    "train_malicious": row.train_malicious,
                    **_paired_gain(row, base),
                }
            )
    columns = ["method", "data", "model", "train_malicious", *GAIN_COLUMNS, "folds"]
    return pd.DataFrame(rows, columns=columns)


def _paired_gain(cell, reference) -> dict:
    """:data:`GAIN_COLUMNS` and folds of ``cell``'s ROC-AUC over ``reference``'s, fold by fold
    (in points; the corrected t-test with ``cell``'s n_test / n_train)."""
    gains = 100 * (np.asarray(cell.fold_auc) - np.asarray(reference.fold_auc))
    test = corrected_ttest(gains, cell.test_train_ratio)
    return {
        **test._asdict(),
        "p_wilcoxon": wilcoxon_p(gains),
        "folds_improved": int((gains > 0).sum()),
        "folds": len(gains),
    }


def versus_table(cells: pd.DataFrame, challengers, references) -> pd.DataFrame:
    """Paired gains of cells of other models and methods on the same folds: every challenger
    (method label, model) against the best of ``references`` [(method label, model)] (the
    one with the highest mean fold ROC-AUC; with one reference, that one), per data and N.

    One row per (data, train_malicious, challenger) whose cell and a reference are ok with
    the same folds: data, train_malicious, challenger and reference ("method model"), their
    roc_auc and roc_auc_pooled (in %), :data:`GAIN_COLUMNS` and folds. Picking the best
    reference on the same test folds favours the reference."""
    ok = cells[cells["status"] == "ok"]
    rows = []
    for (data, n), mine in ok.groupby(["data", "train_malicious"], dropna=False, sort=False):
        by_cell = {(row.label, row.model): row for row in mine.itertuples()}
        candidates = [by_cell[key] for key in references if key in by_cell]
        for key in challengers:
            cell = by_cell.get(key)
            same = [r for r in candidates if cell is not None and r is not cell]
            same = [r for r in same if len(r.fold_auc) == len(cell.fold_auc)]
            if not same:
                continue
            best = max(same, key=lambda r: r.roc_auc_mean)
            rows.append(
                {
                    "data": data,
                    "train_malicious": n,
                    "challenger": f"{cell.label} {cell.model}",
                    "reference": f"{best.label} {best.model}",
                    "challenger_auc": 100 * cell.roc_auc_mean,
                    "reference_auc": 100 * best.roc_auc_mean,
                    "challenger_pooled": 100 * cell.roc_auc_pooled,
                    "reference_pooled": 100 * best.roc_auc_pooled,
                    **_paired_gain(cell, best),
                }
            )
    columns = ["data", "train_malicious", "challenger", "reference", "challenger_auc"]
    columns += ["reference_auc", "challenger_pooled", "reference_pooled", *GAIN_COLUMNS, "folds"]
    return pd.DataFrame(rows, columns=columns)


#: gains.csv's statistics of one paired gain
GAIN_COLUMNS = ("gain", "ci_low", "ci_high", "p_value", "p_wilcoxon", "folds_improved")
#: what gains.md's cells say
GAINS_LEGEND = (
    "Paired ROC-AUC gain over Original on the same folds, in points: mean [95 % confidence "
    "interval], p-value of the corrected resampled t-test (Nadeau and Bengio 2003; Bouckaert "
    "and Frank 2004), (folds improved / folds). **Bold**: significant, p < "
    f"{SIGNIFICANCE}. gains.csv adds Wilcoxon's signed-rank p-value (p_wilcoxon)."
)


def paired_gains(cells: pd.DataFrame, baseline: str = "original") -> pd.DataFrame:
    """Rows = cell labels, columns as in :func:`paper_table`: each gain of
    :func:`gain_table` as "+1.20 [-0.40, +2.80] p=0.130 (11/15)", bold when significant
    (p < :data:`SIGNIFICANCE`). Empty where the baseline is missing, failed or has other
    folds."""
    gains = gain_table(cells, baseline)
    table = pd.DataFrame(index=pd.Index(cells["label"].unique(), name="method"))
    keys = _column_names(cells)
    for key, mine in gains.groupby(["data", "model", "train_malicious"], dropna=False, sort=False):
        table[keys[_key(*key)]] = pd.Series(
            {row.method: _gain_text(row) for row in mine.itertuples()}, dtype=object
        )
    baselines = cells.loc[cells["method"] == baseline, "label"]
    return table.drop(index=baselines.unique()).fillna("")


def _gain_text(row) -> str:
    gain = f"{row.gain:+.2f}"
    if row.p_value < SIGNIFICANCE:
        gain = f"**{gain}**"
    return (
        f"{gain} [{row.ci_low:+.2f}, {row.ci_high:+.2f}] p={row.p_value:.3f} "
        f"({int(row.folds_improved)}/{int(row.folds)})"
    )


def scarcity_table(cells: pd.DataFrame, baseline: str = "original") -> pd.DataFrame:
    """The scarcity sweep, one row per ok cell: data, model, method (label), train_malicious
    (NaN: all), train_malicious_kept (malicious training targets per fold, mean), ROC-AUC
    mean and std over folds and pooled (in %), and the paired gain over ``baseline`` at the
    same N (:func:`gain_table`'s columns; NaN for the baseline)."""
    ok = cells[cells["status"] == "ok"].copy()
    for column in ("roc_auc_mean", "roc_auc_std", "roc_auc_pooled"):
        ok[column] = 100 * ok[column]
    keys = ["method", "data", "model", "train_malicious"]
    table = ok.rename(columns={"method": "name", "label": "method"})[
        ["data", "model", "name", "method", "train_malicious", "train_malicious_kept"]
        + ["roc_auc_mean", "roc_auc_std", "roc_auc_pooled"]
    ]
    table = table.merge(gain_table(cells, baseline), on=keys, how="left")
    table = table.drop(columns=["name"])
    rank = {model: i for i, model in enumerate(MODEL_ORDER)}
    return table.sort_values(  # models in MODEL_ORDER, N ascending, then all
        ["data", "model", "train_malicious"],
        key=lambda column: column.map(rank).fillna(len(rank)) if column.name == "model" else column,
        kind="stable",
        na_position="last",
    )


def _key(data, model, train_malicious) -> tuple:
    return data, model, -1.0 if pd.isna(train_malicious) else float(train_malicious)


def _n_text(train_malicious) -> str:
    return "all" if pd.isna(train_malicious) else f"{train_malicious:g}"


def _column_names(cells: pd.DataFrame) -> dict:
    """(data, model, N key) -> the table column's name ("data model", " N=5" when N varies)."""
    varies = cells["train_malicious"].nunique(dropna=False) > 1
    return {
        _key(row.data, row.model, row.train_malicious): f"{row.data} {row.model}"
        + (f" N={_n_text(row.train_malicious)}" if varies else "")
        for row in cells.itertuples()
    }


def _columns(cells: pd.DataFrame):
    """(column name, its cells) in the schema's kind order (then other kinds), the models in
    :data:`MODEL_ORDER`, N ascending then all."""
    names = _column_names(cells)
    kinds = {kind: i for i, kind in enumerate(KINDS)}
    models_ = {model: i for i, model in enumerate(MODEL_ORDER)}
    keys = sorted(
        {
            (row.kind, row.data, row.model, row.train_malicious)
            for row in cells.fillna({"train_malicious": np.inf}).itertuples()
        },
        key=lambda k: (
            (kinds.get(k[0], len(kinds)), str(k[0]), str(k[1]))
            + (models_.get(k[2], len(models_)), str(k[2]), k[3])
        ),
    )
    for _, data, model, n in keys:
        n = np.nan if np.isinf(n) else n
        mine = cells[(cells["data"] == data) & (cells["model"] == model)]
        mine = mine[mine["train_malicious"].isna() if np.isnan(n) else mine["train_malicious"] == n]
        yield names[_key(data, model, n)], mine


def markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``table`` (index as the first column)."""
    header = [table.index.name or "", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(i), *map(str, row)]) + " |" for i, row in table.iterrows()]
    return "\n".join(lines) + "\n"


def write_report(folder, out=None) -> dict:
    """The report of a run or multirun ``folder`` into ``out`` (default ``folder/report``):
    table.csv and table.md (the slides' table), gains.csv and gains.md (paired gains over
    Original with confidence intervals and p-values), cells.csv (every cell and metric), and
    PNG plots: auc_vs_k.png (when K varies), roc_DATA_MODEL.png, distances_DATA_MODEL.png
    (Alchemy 4); for a scarcity sweep (``evaluation.train_malicious`` varies) also
    scarcity.csv and scarcity.md, auc_vs_scarcity.png and gain_vs_scarcity.png.
    Returns {"table": markdown, "gains": markdown ("" without Original cells to compare with),
    "scarcity": markdown ("" without a scarcity sweep), "files": [paths], "failed": cells}."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder / "report"
    cells = collect(folder)
    out.mkdir(parents=True, exist_ok=True)
    table, gains = paper_table(cells), paired_gains(cells)
    text = markdown(table)
    gains_text = f"{markdown(gains)}\n{GAINS_LEGEND}\n" if len(gains.columns) else ""
    written = {
        "table.csv": table.to_csv(),
        "table.md": text,
        "gains.csv": gain_table(cells).to_csv(index=False),
        "gains.md": gains_text,
        "cells.csv": cells.to_csv(index=False),
    }
    ok = cells[cells["status"] == "ok"]
    scarcity_text = ""
    if cells["train_malicious"].nunique(dropna=False) > 1:
        scarcity = scarcity_table(cells)
        scarcity_text = scarcity_markdown(scarcity)
        written.update({"scarcity.csv": scarcity.to_csv(index=False), "scarcity.md": scarcity_text})
    for name, content in written.items():
        (out / name).write_text(content)
    files = [out / name for name in written]
    figures = {"auc_vs_k": auc_vs_iterations(ok)}
    if scarcity_text:
        figures.update({"auc_vs_scarcity": auc_vs_scarcity(scarcity)})
        figures.update({"gain_vs_scarcity": gain_vs_scarcity(scarcity)})
    for name, mine in _columns(ok):
        suffix = name.replace(" ", "_").replace("=", "")
        figures[f"roc_{suffix}"] = roc_curves(mine, folder)
        figures[f"distances_{suffix}"] = distances(mine, folder)
    for name, figure in figures.items():
        if figure is not None:
            figure.savefig(out / f"{name}.png", dpi=120)
            files.append(out / f"{name}.png")
    failed = cells[cells["status"] != "ok"]
    return {
        "table": text,
        "gains": gains_text,
        "scarcity": scarcity_text,
        "files": files,
        "failed": failed,
    }


def scarcity_markdown(scarcity: pd.DataFrame) -> str:
    """Per (data, model): ROC-AUC (mean ± std over folds, pooled) and the paired gain over
    Original of every method against N (rows), as Markdown with :data:`GAINS_LEGEND`."""
    parts = []
    for (data, model), mine in scarcity.groupby(["data", "model"], sort=False):
        auc, gain = {}, {}
        for row in mine.itertuples():
            n = f"{_n_text(row.train_malicious)} ({row.train_malicious_kept:.0f})"
            auc.setdefault(n, {})[row.method] = (
                f"{row.roc_auc_mean:.2f} ± {row.roc_auc_std:.2f} ({row.roc_auc_pooled:.2f})"
            )
            if not pd.isna(row.gain):
                gain.setdefault(n, {})[row.method] = _gain_text(row)
        index = "N (kept per fold)"
        parts.append(f"### {data} {model}\n\nROC-AUC in %, mean ± std over folds (pooled):\n")
        parts.append(markdown(pd.DataFrame(auc).T.rename_axis(index).fillna("")))
        if gain:
            parts.append("\nPaired gain over Original at the same N:\n")
            parts.append(markdown(pd.DataFrame(gain).T.rename_axis(index).fillna("")))
    return "\n".join(parts) + f"\n{GAINS_LEGEND}\n"


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


def _scarcity_panels(scarcity: pd.DataFrame, title: str):
    """A figure with one panel per (data, model) of ``scarcity``, and per panel its rows,
    the x position of every row (N in order, all last) and the tick labels."""
    panels = list(scarcity.groupby(["data", "model"], sort=False))
    figure = Figure(figsize=(6 * len(panels), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(panels)))
    for ax, ((data, model), mine) in zip(axes, panels):
        levels = sorted(mine["train_malicious"].fillna(np.inf).unique())
        x = mine["train_malicious"].fillna(np.inf).map({n: i for i, n in enumerate(levels)})
        kept = mine.groupby(mine["train_malicious"].fillna(np.inf))["train_malicious_kept"].mean()
        labels = [f"{_n_text(np.nan if np.isinf(n) else n)}\n({kept[n]:.0f})" for n in levels]
        ax.set_xticks(range(len(levels)), labels)
        ax.set_xlabel("malicious training targets N per fold (kept, mean)")
        ax.set_title(f"{title}: {data}, {model}")
        yield ax, mine.assign(_x=x.to_numpy())


def auc_vs_scarcity(scarcity: pd.DataFrame) -> Figure:
    """ROC-AUC (mean ± std over folds) against N, one line per method, one panel per (data,
    model) of :func:`scarcity_table`."""
    panels = list(_scarcity_panels(scarcity, "ROC-AUC against scarcity"))
    for ax, mine in panels:
        methods_ = mine["method"].unique()
        for i, (method, line) in enumerate(mine.groupby("method", sort=False)):
            line = line.sort_values("_x")
            ax.errorbar(
                line["_x"] + 0.06 * (i - (len(methods_) - 1) / 2),
                line["roc_auc_mean"],
                yerr=line["roc_auc_std"],
                marker="o",
                capsize=3,
                label=method,
            )
        ax.set_ylabel("ROC-AUC (%), mean ± std over folds")
        ax.legend(fontsize="small")
    return panels[0][0].figure


def gain_vs_scarcity(scarcity: pd.DataFrame) -> Figure | None:
    """Paired gain over Original against N with its 95 % confidence interval (corrected
    resampled t-test), one line per method, filled markers where p < :data:`SIGNIFICANCE`;
    None without gains."""
    panels = list(_scarcity_panels(scarcity.dropna(subset=["gain"]), "Gain over Original"))
    if not panels:
        return None
    for ax, mine in panels:
        methods_ = mine["method"].unique()
        for i, (method, line) in enumerate(mine.groupby("method", sort=False)):
            line = line.sort_values("_x")
            x = line["_x"] + 0.08 * (i - (len(methods_) - 1) / 2)
            bars = ax.errorbar(
                x,
                line["gain"],
                yerr=[line["gain"] - line["ci_low"], line["ci_high"] - line["gain"]],
                capsize=3,
                label=method,
            )
            colour = bars.lines[0].get_color()
            significant = (line["p_value"] < SIGNIFICANCE).to_numpy()
            ax.scatter(x[significant], line["gain"][significant], color=colour, zorder=3)
            ax.scatter(x[~significant], line["gain"][~significant], facecolor="white", color=colour)
        ax.axhline(0, color="grey", linestyle=":")
        ax.set_ylabel("ROC-AUC gain (points), 95 % CI")
        ax.legend(fontsize="small", title=f"filled: p < {SIGNIFICANCE}")
    return panels[0][0].figure


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
    data, model, n = cells[["data", "model", "train_malicious"]].iloc[0]
    scarce = "" if pd.isna(n) else f", N = {_n_text(n)}"
    ax.set_title(f"ROC, pooled out-of-fold: {data}, {model}{scarce}")
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
