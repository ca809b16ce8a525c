"""alchemy-report: the slides' table and plots from a fixture multirun folder of tiny cells."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from app_helpers import TINY_K, run_tiny

from alchemy_torch.app import CellFailed, cli
from alchemy_torch.evaluation import report

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
    assert list(table.columns) == ["synthetic-flows rf", "synthetic-flows rf (slides)"]
    assert list(table.index) == list(cells["label"])
    for row in cells[cells["status"] == "ok"].itertuples():
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
        mean, _, better, folds = re.fullmatch(r"(\S+) ± (\S+) \((\d)/(\d)\)", text).groups()
        expected = 100 * (summary["roc_auc_mean"] - original["summary"]["roc_auc_mean"])
        assert float(mean) == pytest.approx(expected, abs=0.005)
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
    assert out.startswith("| method | synthetic-flows rf | synthetic-flows rf (slides) |")
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
