"""alchemy-report: the slides' table and plots from a fixture multirun folder of tiny cells."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_helpers import TINY_K, run_tiny
from sklearn.metrics import roc_auc_score

from alchemy_torch import methods, models
from alchemy_torch.app import CellFailed, cli
from alchemy_torch.evaluation import corrected_ttest, report
from alchemy_torch.io.schema import KINDS

METHOD_MD = Path(__file__).resolve().parents[2] / "shared" / "docs" / "METHOD.md"
PNG = b"\x89PNG\r\n\x1a\n"
#: alchemy2 over K in {1, 2} and options {1, 2}: the AUC-against-K plot
SWEEP = [
    [f"method.resampler.iterations={k}", f"method.resampler.option={option}"]
    for k in (1, 2)
    for option in (1, 2)
]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A multirun-like folder: original, alchemy2 x 4, alchemy4 and one failed cell."""
    root = tmp_path_factory.mktemp("multirun")
    cells = [["method=original"], ["method=alchemy4", *TINY_K]]
    cells += [["method=alchemy2", *overrides] for overrides in SWEEP]
    for i, overrides in enumerate(cells):
        run_tiny(overrides, root / "synthetic-flows" / f"cell{i}")
    with pytest.raises(CellFailed):  # one malicious target for two folds
        run_tiny(["method=smote", "data.dataset.malicious_fraction=0.025"], root / "x" / "bad")
    return root


def results_of(run_folder: Path, folder: str) -> dict:
    return json.loads((run_folder / folder / "results.json").read_text())


def test_collect_has_one_row_per_cell_in_the_slides_method_order(run_folder):
    cells = report.collect(run_folder)
    assert list(cells["method"]) == ["original", "smote", *["alchemy2"] * 4, "alchemy4"]
    assert list(cells["status"]) == ["ok", "failed", *["ok"] * 5]
    k2 = cells[cells["method"] == "alchemy2"]
    assert sorted(zip(k2["iterations"], k2["option"])) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert set(k2["variant"]) == {",".join(o) for o in SWEEP}  # the shared tiny overrides go
    assert cells.loc[cells["method"] == "original", "label"].item() == "original"
    assert "malicious_fraction" in cells.loc[cells["status"] == "failed", "variant"].item()


def test_paper_table_holds_mean_and_std_in_percent_beside_the_slides(run_folder):
    cells = report.collect(run_folder)
    table = report.paper_table(cells)
    # 2 malicious targets per test fold: the pooled out-of-fold ROC-AUC stands beside
    assert list(table.columns) == [
        "synthetic-flows rf",
        "synthetic-flows rf (pooled)",
        "synthetic-flows rf (slides)",
    ]
    assert list(table.index) == list(cells["label"])
    for row in cells[cells["status"] == "ok"].itertuples():
        scores = pd.read_parquet(run_folder / row.folder / "scores.parquet")
        pooled = 100 * roc_auc_score(scores["label"], scores["score"])  # one repeat
        assert table.loc[row.label, "synthetic-flows rf (pooled)"] == f"{pooled:.2f}"
        summary = results_of(run_folder, row.folder)["summary"]
        mean, std = re.fullmatch(
            r"(\S+) ± (\S+)", table.loc[row.label, "synthetic-flows rf"]
        ).groups()
        assert float(mean) == pytest.approx(100 * summary["roc_auc_mean"], abs=0.005)
        assert float(std) == pytest.approx(100 * summary["roc_auc_std"], abs=0.005)
        slides = report.SLIDES_AUC.loc[row.method, ("flows", "rf")]
        assert table.loc[row.label, "synthetic-flows rf (slides)"] == f"{slides:.2f}"
    failed = cells.loc[cells["status"] == "failed", "label"].item()
    assert table.loc[failed, "synthetic-flows rf"] == "failed"
    assert (table == "failed").sum().sum() == 1


def test_paired_gains_are_differences_to_original_on_the_same_folds(run_folder):
    cells = report.collect(run_folder)
    gains = report.paired_gains(cells)
    original = results_of(run_folder, cells.loc[cells["method"] == "original", "folder"].item())
    assert "original" not in gains.index and list(gains.columns) == ["synthetic-flows rf"]
    for row in cells[(cells["status"] == "ok") & (cells["method"] != "original")].itertuples():
        summary = results_of(run_folder, row.folder)["summary"]
        text = gains.loc[row.label, "synthetic-flows rf"]
        pattern = r"\**(\S+?)\** \[(\S+), (\S+)\] p=(\S+) \((\d)/(\d)\)"
        mean, low, high, p, better, folds = re.fullmatch(pattern, text).groups()
        expected = 100 * (summary["roc_auc_mean"] - original["summary"]["roc_auc_mean"])
        assert float(mean) == pytest.approx(expected, abs=0.005)
        assert float(low) <= float(mean) <= float(high) and 0 <= float(p) <= 1
        assert text.startswith("**") == (float(p) < report.SIGNIFICANCE)
        assert int(folds) == 2 and 0 <= int(better) <= 2
    assert gains.loc[cells.loc[cells["status"] == "failed", "label"].item()].item() == ""


def test_markdown_has_a_header_a_rule_and_one_line_per_row():
    table = pd.DataFrame(
        {"a rf": ["1 ± 2"], "b": [""]}, index=pd.Index(["original"], name="method")
    )
    assert report.markdown(table).splitlines() == [
        "| method | a rf | b |",
        "|---|---|---|",
        "| original | 1 ± 2 |  |",
    ]


def test_write_report_writes_the_tables_and_png_plots(run_folder, tmp_path):
    written = report.write_report(run_folder, tmp_path)
    names = {p.name for p in written["files"]}
    assert names == {
        "table.csv",
        "table.md",
        "gains.csv",
        "gains.md",
        "cells.csv",
        "auc_vs_k.png",
        "roc_synthetic-flows_rf.png",
        "distances_synthetic-flows_rf.png",
    }
    for path in written["files"]:
        assert path.parent == tmp_path and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG and path.stat().st_size > 10_000
    assert (tmp_path / "table.md").read_text() == written["table"]
    assert (tmp_path / "gains.md").read_text() == written["gains"]
    table = pd.read_csv(
        tmp_path / "table.csv", index_col="method", dtype=str, keep_default_na=False
    )
    assert table.equals(report.paper_table(report.collect(run_folder)))
    assert list(written["failed"]["method"]) == ["smote"]


def test_auc_against_k_draws_one_line_per_rate_option(run_folder):
    cells = report.collect(run_folder)
    figure = report.auc_vs_iterations(cells[cells["status"] == "ok"])
    (ax,) = figure.axes
    assert ax.get_legend_handles_labels()[1] == ["option 1", "option 2"]
    assert report.auc_vs_iterations(cells[cells["method"] == "original"]) is None


def test_distances_need_an_alchemy4_cell(run_folder):
    cells = report.collect(run_folder)
    ok = cells[cells["status"] == "ok"]
    figure = report.distances(ok, run_folder)
    assert len(figure.axes) == 1 and "alchemy4" in figure.axes[0].get_title()
    assert report.distances(ok[ok["method"] != "alchemy4"], run_folder) is None


def test_report_command_prints_the_table_and_where_it_wrote(run_folder, tmp_path, capsys):
    cli.report_main([str(run_folder), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith("| method | synthetic-flows rf | synthetic-flows rf (pooled) |")
    assert "Paired gain over Original:" in out and "corrected resampled t-test" in out
    assert "failed: x/bad: FoldError" in out
    assert f"Report (CSV, Markdown, plots): {tmp_path}" in out


def test_report_of_a_folder_without_results_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as stop:
        cli.report_main([str(tmp_path)])
    assert stop.value.code == (
        f"alchemy-report: error: FileNotFoundError: no results.json under {tmp_path}: "
        "not a run or multirun folder"
    )


@pytest.mark.skipif(not METHOD_MD.is_file(), reason="shared/docs/METHOD.md is not present")
def test_slides_numbers_are_method_md_s_table():
    rows = {}
    for line in METHOD_MD.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].lower().replace(" ", "")
        if name in report.SLIDES_AUC.index and len(cells) == 10:
            rows[name] = [float(c) for c in cells[1:]]
    # METHOD.md's columns: NF RF, NF DNN, NF SVM, PDNS ..., HTTP ...
    assert pd.DataFrame(rows).T.values.tolist() == report.SLIDES_AUC.values.tolist()


def test_cells_of_a_sweep_are_in_numeric_order_of_k(tmp_path):
    for k in (10, 2, 50):
        cell = tmp_path / f"k{k}"
        cell.mkdir()
        results = {
            "status": "ok",
            "cell": {"data": "synthetic-http", "kind": "http", "method": "alchemy4", "model": "rf"},
            "overrides": [f"method.resampler.iterations={k}"],
            "params": {"resampler": {"iterations": k, "option": 4}},
            "summary": {"roc_auc_mean": 0.9, "roc_auc_std": 0.01},
            "folds": [{"roc_auc": 0.9}],
        }
        (cell / "results.json").write_text(json.dumps(results))
    assert list(report.collect(tmp_path)["iterations"]) == [2, 10, 50]


def test_report_without_original_says_there_are_no_paired_gains(run_folder, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for cell in report.collect(run_folder).query("method == 'alchemy2'")["folder"]:
        shutil.copytree(run_folder / cell, sweep / cell)
    cli.report_main([str(sweep)])
    out = capsys.readouterr().out
    assert "No paired gains: no Original cell" in out and "Paired gain over" not in out


def test_the_orders_come_from_the_registries_and_the_slides_rows_are_methods():
    assert report.METHOD_ORDER == tuple(methods.NAMES)
    assert set(report.MODEL_ORDER) == set(models.NAMES)
    slides_rows = [m for m in report.METHOD_ORDER if m in report.SLIDES_AUC.index]
    assert slides_rows == list(report.SLIDES_AUC.index)  # in the registry's order
    assert set(report.SLIDES_AUC.columns.get_level_values("kind")) <= set(KINDS)


# -- significance and the scarcity sweep, from fake cells -----------------------------------
#: fold AUCs of a fake scarcity sweep: 5 folds x 2 repeats per (method, N)
BASE = np.array([0.80, 0.82, 0.78, 0.84, 0.76, 0.81, 0.79, 0.83, 0.77, 0.80])
STEP = np.array([1, -1, 2, 0, 3, 1, 2, -1, 1, 2]) / 100  # a gain that varies by fold
#: the statistics of a paired gain in gains.csv and scarcity.csv
STATISTICS = ("gain", "ci_low", "ci_high", "p_value", "p_wilcoxon", "folds_improved", "folds")


def fake_cell(root: Path, method: str, n, fold_auc, test_train=(50, 200)) -> None:
    """A results.json and scores.parquet as the app writes them (what the report reads)."""
    name = "null" if n is None else n
    folder = root / "synthetic-flows" / f"evaluation.train_malicious={name},method={method}"
    folder.mkdir(parents=True)
    folds = [
        {
            "repeat": i // 5,
            "fold": i % 5,
            "roc_auc": auc,
            "test_targets": test_train[0],
            "test_malicious": 4,
            "train_original": test_train[1],
            "train_malicious": 16 if n is None else n,
        }
        for i, auc in enumerate(fold_auc)
    ]
    results = {
        "status": "ok",
        "cell": {"data": "synthetic-flows", "kind": "flows", "method": method, "model": "rf"},
        "overrides": [f"method={method}", f"evaluation.train_malicious={name}"],
        "config": {"evaluation": {"folds": 5, "repeats": 2, "train_malicious": n}},
        "summary": {"roc_auc_mean": float(np.mean(fold_auc)), "roc_auc_std": np.std(fold_auc)},
        "folds": folds,
    }
    (folder / "results.json").write_text(json.dumps(results))
    rng = np.random.default_rng(len(fold_auc))
    labels = np.r_[np.ones(20), np.zeros(230)].astype(int)
    scores = pd.DataFrame(
        {
            "repeat": np.repeat([0, 1], 250),
            "fold": 0,
            "target": np.tile([f"t{i}" for i in range(250)], 2),
            "label": np.tile(labels, 2),
            "score": rng.random(500),
            "spread": 0.0,
        }
    )
    scores.to_parquet(folder / "scores.parquet")


@pytest.fixture(scope="module")
def scarcity_folder(tmp_path_factory) -> Path:
    """original, smote and alchemy3 at N in {5, 20, all}: alchemy3 gains 3x STEP at N=5,
    1x at 20 and nothing at all; smote loses 1 point in every fold."""
    root = tmp_path_factory.mktemp("scarcity")
    for n, scale in ((5, 3), (20, 1), (None, 0)):
        fake_cell(root, "original", n, BASE)
        fake_cell(root, "smote", n, BASE - 0.01)
        fake_cell(root, "alchemy3", n, BASE + scale * STEP)
    return root


def test_corrected_ttest_by_hand():
    # gains 0, 2, 4, 6, 8: mean 4, sample variance 10; n = 5 folds, n_test / n_train = 0.2:
    # corrected variance (1/5 + 0.2) * 10 = 4, t = 4 / 2 = 2 on 4 degrees of freedom.
    # Student's t with 4 d.o.f.: P(|T| > t) = 1 - t / sqrt(4 + t^2) * (1 + 2 / (4 + t^2))
    # = 1 - (2 / sqrt 8) * 1.25 = 0.116117; t_0.975(4) = 2.776445 (tables): CI 4 -+ 5.552890
    test = corrected_ttest([0, 2, 4, 6, 8], test_train_ratio=0.2)
    assert test.gain == 4
    assert test.p_value == pytest.approx(0.116117, abs=1e-6)
    assert (test.ci_low, test.ci_high) == pytest.approx((-1.552890, 9.552890), abs=1e-6)
    # without the correction (ratio 0) the same gains look significant: t = 4 / sqrt(2)
    plain = corrected_ttest([0, 2, 4, 6, 8], test_train_ratio=0.0)
    assert plain.p_value == pytest.approx(0.047421, abs=1e-6) and plain.ci_low > 0
    assert corrected_ttest([1, 1, 1], 0.25).p_value == 0  # no spread: a sure gain
    assert corrected_ttest([0, 0, 0], 0.25).p_value == 1
    assert np.isnan(corrected_ttest([3.0], 0.25).p_value)


def test_gains_csv_carries_the_corrected_test_and_wilcoxon(scarcity_folder, tmp_path):
    report.write_report(scarcity_folder, tmp_path)
    gains = pd.read_csv(tmp_path / "gains.csv")
    assert list(gains.columns) == ["method", "data", "model", "train_malicious", *STATISTICS]
    at5 = gains[(gains["method"] == "alchemy3") & (gains["train_malicious"] == 5)].iloc[0]
    expected = corrected_ttest(100 * 3 * STEP, test_train_ratio=50 / 200)
    assert at5[["gain", "ci_low", "ci_high", "p_value"]].tolist() == pytest.approx(expected)
    assert at5["folds_improved"] == 7 and at5["folds"] == 10
    smote = gains[gains["method"] == "smote"]
    assert smote["gain"].tolist() == pytest.approx([-1, -1, -1])
    assert (smote["p_value"] < 1e-10).all() and (smote["p_wilcoxon"] < 0.01).all()
    assert (smote["folds_improved"] == 0).all()
    text = (tmp_path / "gains.md").read_text()
    assert "**-1.00** [-1.00, -1.00] p=0.000 (0/10)" in text  # significant: in bold
    assert "p < 0.05" in text and "corrected resampled t-test" in text  # the legend


def test_scarcity_report_has_its_columns_and_plots(scarcity_folder, tmp_path):
    written = report.write_report(scarcity_folder, tmp_path)
    names = {p.name for p in written["files"]}
    assert {"scarcity.csv", "scarcity.md", "auc_vs_scarcity.png", "gain_vs_scarcity.png"} <= names
    for name in ("auc_vs_scarcity.png", "gain_vs_scarcity.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    scarcity = pd.read_csv(tmp_path / "scarcity.csv")
    assert list(scarcity.columns) == [
        *("data", "model", "method", "train_malicious", "train_malicious_kept"),
        *("roc_auc_mean", "roc_auc_std", "roc_auc_pooled", *STATISTICS),
    ]
    alchemy = scarcity[scarcity["method"] == "alchemy3"]
    assert alchemy["train_malicious"].tolist()[:2] == [5, 20]  # N ascending, then all
    assert alchemy["train_malicious_kept"].tolist() == [5, 20, 16]
    assert alchemy["gain"].tolist() == pytest.approx([300 * STEP.mean(), 100 * STEP.mean(), 0])
    assert scarcity["roc_auc_pooled"].between(0, 100).all()
    assert scarcity.loc[scarcity["method"] == "original", "gain"].isna().all()
    # the paired tables: one column per N, each gain against Original at that N
    gains = report.paired_gains(report.collect(scarcity_folder))
    assert list(gains.columns) == [f"synthetic-flows rf N={n}" for n in ("5", "20", "all")]
    assert gains.loc["alchemy3", "synthetic-flows rf N=all"].startswith("+0.00 [+0.00, +0.00]")
    figure = report.gain_vs_scarcity(report.scarcity_table(report.collect(scarcity_folder)))
    (ax,) = figure.axes
    assert ax.get_legend_handles_labels()[1] == ["smote", "alchemy3"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5\n(5)", "20\n(20)", "all\n(16)"]
    assert "| 5 (5) |" in written["scarcity"]


def test_pooled_auc_stands_beside_the_table_when_test_folds_hold_few_malicious(scarcity_folder):
    table = report.paper_table(report.collect(scarcity_folder))
    assert "synthetic-flows rf N=5 (pooled)" in table.columns  # 4 malicious per test fold
    assert not [c for c in table.columns if "(slides)" in c and "N=5" in c]


def test_versus_table_pairs_a_challenger_with_the_best_reference_on_the_same_folds(
    scarcity_folder,
):
    cells = report.collect(scarcity_folder)
    both = report.versus_table(cells, [("alchemy3", "rf")], [("smote", "rf"), ("original", "rf")])
    assert list(both["train_malicious"].fillna(-1)) == [5, 20, -1]
    assert set(both["reference"]) == {"original rf"}  # the best: smote loses a point a fold
    at5 = both.iloc[0]
    gains = report.gain_table(cells).query("method == 'alchemy3' and train_malicious == 5")
    assert at5[list(STATISTICS)].tolist() == pytest.approx(gains[list(STATISTICS)].iloc[0].tolist())
    assert at5["challenger_auc"] - at5["reference_auc"] == pytest.approx(at5["gain"])
    against_smote = report.versus_table(cells, [("alchemy3", "rf")], [("smote", "rf")])
    expected = [100 * 3 * STEP.mean() + 1, 100 * STEP.mean() + 1, 1]
    assert against_smote["gain"].tolist() == pytest.approx(expected)
    assert report.versus_table(cells, [("online", "setnet")], [("original", "rf")]).empty


def test_versus_table_skips_a_reference_on_other_folds(tmp_path):
    fake_cell(tmp_path, "original", None, BASE)
    fake_cell(tmp_path, "alchemy3", None, (BASE + STEP)[:5])
    fake_cell(tmp_path, "smote", None, BASE - 0.01)
    cells = report.collect(tmp_path)
    versus = report.versus_table(cells, [("alchemy3", "rf")], [("original", "rf")])
    assert versus.empty  # 5 folds against 10: not paired
    versus = report.versus_table(cells, [("smote", "rf")], [("original", "rf"), ("alchemy3", "rf")])
    assert versus["reference"].tolist() == ["original rf"] and versus["folds"].tolist() == [10]
