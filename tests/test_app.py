"""The app's jobs: a tiny cell per data kind, resume, failures, one-line errors, multiruns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_helpers import TINY, TINY_K, alchemy, job_config, run_tiny
from hydra.core.global_hydra import GlobalHydra

from alchemy_torch.app import CellFailed, cli, job, run_cell
from alchemy_torch.app.job import one_line
from alchemy_torch.evaluation import METRICS, FoldError, fold_splits, report

FIXTURES = Path(__file__).parent / "fixtures"
BAD_ARGUS = (
    "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,"
    "SrcBytes,Label\n2011/08/16 10:01:46.97,1.8,tcp,1.2.3.4,1040,   ->,5.6.7.8,5678,FSPA,0,0,"
    "x,12,5,flow=Normal\n"
)


@pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip")
@pytest.mark.parametrize("kind", ["flows", "http", "dns"])
def test_tiny_alchemy4_cell_writes_results_scores_and_filtering(tmp_path, kind):
    results = run_tiny([f"data=synthetic-{kind}", "method=alchemy4", *TINY_K], tmp_path)

    assert results["status"] == "ok" and results["error"] is None
    assert results["cell"] == {
        "data": f"synthetic-{kind}",
        "kind": kind,
        "method": "alchemy4",
        "model": "rf",
        "protocol": "cross_validation",
    }
    assert json.loads((tmp_path / "results.json").read_text()) == results
    folds = pd.DataFrame(results["folds"])
    assert list(zip(folds.repeat, folds.fold)) == [(0, 0), (0, 1)]
    for metric in METRICS:
        assert results["summary"][f"{metric}_mean"] == pytest.approx(folds[metric].mean())
        assert results["summary"][f"{metric}_std"] == pytest.approx(folds[metric].std())
    assert results["params"]["resampler"]["iterations"] == 2
    assert results["dataset"]["targets"] == 40 and results["dataset"]["malicious"] == 4
    assert results["config"]["method"]["resampler"]["iterations"] == 2
    assert 0 < results["cpu_seconds"] and folds.fit_seconds.sum() < results["seconds"]
    assert "method.resampler.iterations=2" in results["overrides"]
    assert results["versions"]["torch"] and results["device"] == "cpu"

    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == 40 and scores["target"].is_unique
    assert scores["score"].between(0, 1).all()
    pseudo = pd.read_parquet(tmp_path / "filtering.parquet")
    train_pseudo = folds.train_pseudo_kept + folds.train_filtered
    assert len(pseudo) == train_pseudo.sum()
    assert (pseudo["kept"] == (pseudo["distance"] <= pseudo["threshold"])).all()
    assert cli.summary_line(results, tmp_path).startswith(f"synthetic-{kind} alchemy4 rf: ROC-AUC")


def test_methods_without_filtering_write_no_filtering_file(tmp_path):
    results = run_tiny(["method=original"], tmp_path)
    assert results["params"]["resampler"] is None
    assert not (tmp_path / "filtering.parquet").exists()


def test_a_scarce_cell_keeps_n_malicious_training_targets_and_the_report_reads_n(tmp_path):
    for n in (3, 1):
        overrides = ["method=original", "data.dataset.n_targets=80"]
        results = run_tiny([*overrides, f"evaluation.train_malicious={n}"], tmp_path / f"n{n}")
        folds = pd.DataFrame(results["folds"])
        assert (folds.train_malicious == n).all() and (folds.test_malicious == 4).all()
        assert (folds.train_benign == 36).all() and (folds.train_original == 36 + n).all()
    cells = report.collect(tmp_path)
    assert cells["train_malicious"].tolist() == cells["train_malicious_kept"].tolist() == [1, 3]
    assert (cells["label"] == "original").all()  # N is an axis of the report, not a variant


def test_a_finished_cell_is_skipped_and_a_failed_one_runs_again(tmp_path, monkeypatch):
    with pytest.raises(CellFailed, match="for 9 folds: lower evaluation.folds="):
        run_tiny(["method=original", "evaluation.folds=9"], tmp_path)
    failed = json.loads((tmp_path / "results.json").read_text())
    assert failed["status"] == "failed" and "\n" not in failed["error"]
    assert failed["cell"]["method"] == "original" and "summary" not in failed

    first = run_tiny(["method=original"], tmp_path)  # failed before: runs again
    assert first["status"] == "ok" and "skipped" not in first

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was evaluated again")

    monkeypatch.setattr(job, "cross_validate", must_not_run)
    again = run_tiny(["method=original"], tmp_path)
    assert again == {**first, "skipped": True}
    with pytest.raises(CellFailed, match="AssertionError"):  # resume=false runs it
        run_tiny(["method=original", "resume=false"], tmp_path)


def test_capture_groups_are_asked_of_the_dataset(tmp_path):
    with pytest.raises(CellFailed, match="evaluation.groups=capture needs capture groups"):
        run_tiny(["method=original", "evaluation.groups=capture"], tmp_path)
    with pytest.raises(CellFailed, match="evaluation.groups must be one of"):
        run_tiny(["method=original", "evaluation.groups=host"], tmp_path)


def test_a_missing_data_folder_names_the_config_key(tmp_path):
    cfg = job_config(["data=flows-iot23-small", f"data.dataset.root={tmp_path}"], tmp_path)
    with pytest.raises(CellFailed, match="^data.dataset: FileNotFoundError: .* not found"):
        run_cell(cfg)


def test_your_own_files_run_through_datasets_from_files(tmp_path):
    paths = f"data.dataset.paths=[{FIXTURES / 'ctu13-tiny.binetflow'}]"
    overrides = ["data=files", "data.kind=flows", paths, "method=original"]
    results = run_tiny(overrides, tmp_path, data=False)
    assert results["status"] == "ok" and results["cell"]["data"] == "files"
    assert (
        results["dataset"]["targets"] == 5
        and "ctu13-tiny.binetflow" in results["dataset"]["report"]
    )


@pytest.mark.parametrize(
    "content, message",
    [
        (BAD_ARGUS, r"DataFormatError: .*bad.binetflow, line 2, field 'TotPkts': not a number"),
        (None, r"DataFormatError: .*bad.binetflow: cannot read file"),
    ],
)
def test_an_unreadable_or_missing_file_names_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "bad.binetflow"
    if content is not None:
        path.write_text(content)
    overrides = ["data=files", "data.kind=flows", f"data.dataset.paths=[{path}]"]
    with pytest.raises(CellFailed, match="^data.dataset: " + message):
        run_tiny(overrides, tmp_path / "out", data=False)


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope=1"], "Could not override 'nope'"),
        (["method=nope"], "Could not find 'method/nope' Available options in 'method': ada"),
        (["evaluation.folds=9", *TINY[:1]], "FoldError: 4 malicious and 36 benign"),
        (["data=files", "data.kind=flows"], "Missing mandatory value: data.dataset.paths"),
    ],
)
def test_bad_input_ends_with_one_line_and_status_1(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # main() sets it to 1; undone after the test
    monkeypatch.setattr(sys, "argv", ["alchemy", *args, f"hydra.run.dir={tmp_path}"])
    with pytest.raises(SystemExit) as stop:
        try:
            cli.main()
        finally:
            GlobalHydra.instance().clear()  # as a finished process would
    assert str(stop.value.code).startswith("alchemy: error: ")
    assert message in stop.value.code and "\n" not in stop.value.code


def test_console_script_exits_1_with_one_stderr_line(tmp_path):
    done = alchemy([*TINY, "evaluation.folds=9", f"hydra.run.dir={tmp_path}"], cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "alchemy: error: FoldError: 4 malicious and 36 benign targets for 9 folds: "
        "lower evaluation.folds= to at most 4"
    ]
    full = alchemy(
        [*TINY, "evaluation.folds=9", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert full.returncode == 1 and "Traceback" in full.stderr


def sweep(tmp_path, launcher: list[str]):
    """A 2-cell multirun into tmp_path/sweep: one cell runs, one has too few targets."""
    args = ["-m", *launcher, f"hydra.sweep.dir={tmp_path / 'sweep'}", "method=original"]
    return alchemy([*args, *TINY, "evaluation.folds=2,9"], cwd=tmp_path)


def assert_one_ok_one_failed(tmp_path, done) -> None:
    assert done.returncode == 1, done.stderr
    assert "alchemy: 1 cell(s) failed" in done.stderr
    results = {
        json.loads(p.read_text())["config"]["evaluation"]["folds"]: json.loads(p.read_text())
        for p in (tmp_path / "sweep").rglob("results.json")
    }
    assert results[2]["status"] == "ok" and results[2]["summary"]["folds"] == 2
    assert results[9]["status"] == "failed" and "lower evaluation.folds=" in results[9]["error"]


def test_joblib_multirun_runs_the_other_cells_when_one_fails(tmp_path):
    done = sweep(tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    assert_one_ok_one_failed(tmp_path, done)
    assert "synthetic-flows original rf: ROC-AUC" in done.stdout


@pytest.mark.slow
def test_submitit_local_multirun_runs_the_other_cells_when_one_fails(tmp_path):
    done = sweep(tmp_path, ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"])
    assert_one_ok_one_failed(tmp_path, done)
    assert list((tmp_path / "sweep" / ".submitit").iterdir())


@pytest.mark.slow
def test_a_job_runs_from_an_installed_wheel_outside_the_checkout(tmp_path):
    checkout = Path(__file__).resolve().parents[1]
    build = [sys.executable, "-m", "pip", "wheel", str(checkout), "--no-deps"]
    subprocess.run([*build, "--no-build-isolation", "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("alchemy_torch-*.whl")
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True)
    env = {"PYTHONPATH": str(site)}  # before the editable checkout on sys.path
    where = alchemy(["--info", "searchpath"], cwd=tmp_path, env=env)
    assert "pkg://alchemy_torch.configs" in where.stdout
    done = alchemy([*TINY, "method=alchemy4", *TINY_K, "hydra.run.dir=run"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "ok"
    located = subprocess.run(
        [sys.executable, "-c", "import alchemy_torch.configs as c; print(c.__file__)"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert located.stdout.startswith(str(site))


def test_fold_errors_name_the_evaluation_keys():
    grouped = np.where(np.arange(8) < 4, "sandbox", "office")
    with pytest.raises(FoldError) as error:
        fold_splits((np.arange(8) < 4).astype(int), 2, seed=0, groups=grouped)
    line = one_line(error.value)
    assert line.startswith("FoldError: malicious targets come from 1 group(s)")
    assert "set evaluation.groups=null" in line and "groups=None" not in line
    assert one_line(ValueError("folds=")) == "ValueError: folds="  # other errors unchanged
