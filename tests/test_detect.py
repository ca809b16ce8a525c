"""Detect on new data: a saved detector, alchemy-score, data=union, mode=fit, transfer cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from app_helpers import alchemy, job_config
from detection_helpers import small_bags, small_forest
from test_io import CONN_FIELDS, CONN_ROWS, zeek

from alchemy_torch import Resampler, datasets, features, methods
from alchemy_torch.app import cli, score
from alchemy_torch.app.job import DETECTOR_FILE, CellFailed, fit_detector, run_cell
from alchemy_torch.evaluation import report
from alchemy_torch.methods import base

FIXTURES = Path(__file__).parent / "fixtures"
FAST = Resampler(option=4, iterations=3)
FIT = ["model.n_estimators=10", "model.n_jobs=1", "device=cpu", "progress=false"]


def fitted(kind: str = "flows"):
    method = methods.make("alchemy4", resampler=FAST, p_range=(0.0, 0.99))
    return method.fit(small_bags(kind), features.make(kind), small_forest(), seed=0)


def synthetic_file(path: Path, kind: str = "flows", seed: int = 0, labels: bool = True) -> Path:
    """Labelled synthetic records as a canonical Parquet or CSV file (without ``label``
    when not ``labels``)."""
    records, _ = datasets.synthetic(kind, n_targets=40, seed=seed, n_records=1600)
    records = records if labels else records.drop(columns=["label", "detailed_label"])
    if path.suffix == ".csv":
        records.to_csv(path, index=False)
    else:
        records.to_parquet(path)
    return path


# -- a detector file ---------------------------------------------------------------------------
def test_fit_save_load_scores_as_the_method_in_memory(tmp_path):
    method = fitted()
    new = small_bags("flows", seed=3)
    path = method.save(tmp_path / "d.joblib", data={"name": "small"})
    loaded = methods.load(path)
    assert type(loaded) is type(method) and not hasattr(loaded, "training_vectors_")
    assert loaded.saved_["format"] == methods.DETECTOR_FORMAT and loaded.saved_["kind"] == "flows"
    assert loaded.saved_["data"] == {"name": "small"} and loaded.saved_["versions"]["torch"]
    expected = method.score(new, seed=4, return_spread=True)
    got = loaded.score(new, seed=4, return_spread=True)
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="call fit"):
        methods.make("original").save(tmp_path / "unfitted.joblib")


def test_load_names_the_versions_that_differ_and_refuses_other_formats(tmp_path, monkeypatch):
    path = fitted().save(tmp_path / "d.joblib")
    now = base.package_versions()
    monkeypatch.setattr(
        "alchemy_torch.provenance.package_versions", lambda: {**now, "torch": "0.0.1"}
    )
    with pytest.warns(UserWarning, match=r"torch .* -> 0\.0\.1"):
        methods.load(path)
    content = joblib.load(path)
    joblib.dump({**content, "format": 99}, tmp_path / "old.joblib")
    with pytest.raises(ValueError, match="detector format 99"):
        methods.load(tmp_path / "old.joblib")
    joblib.dump({"model": 1}, tmp_path / "other.joblib")
    with pytest.raises(ValueError, match="not a detector file"):
        methods.load(tmp_path / "other.joblib")


def test_scoring_in_chunks_of_buckets_gives_the_scores_of_all_at_once():
    method, bags = fitted(), small_bags("flows", seed=3)
    whole = method.score(bags, seed=2, return_spread=True)
    chunked = score.score_in_chunks(method, bags, seed=2, chunk_records=200)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b)


# -- alchemy-score -----------------------------------------------------------------------------
def test_ranked_csv_columns_order_and_labels(tmp_path, capsys):
    detector = fitted().save(tmp_path / "d.joblib")
    logs = tmp_path / "logs"
    logs.mkdir()
    synthetic_file(logs / "a.parquet", seed=1)
    (logs / "README.md").write_text("notes, not logs\n")
    out = tmp_path / "ranked.csv"
    score.main([str(detector), str(logs), "--out", str(out), "--top", "3"])
    ranked = pd.read_csv(out)
    assert tuple(ranked.columns) == score.COLUMNS
    assert ranked["score"].is_monotonic_decreasing and ranked["target"].is_unique
    ds = datasets.from_files(logs / "a.parquet")
    assert ranked.set_index("target")["label"].sort_index().tolist() == ds.labels.tolist()
    sizes = ds.records.groupby("server").size()
    assert (ranked.set_index("target")["records"] == sizes.reindex(ranked["target"])).all()
    assert (ranked["source"] == "a.parquet").all()
    assert (ranked["first_seen"] <= ranked["last_seen"]).all()
    printed = capsys.readouterr().out
    assert f"{len(ranked)} targets" in printed and "ROC-AUC" in printed
    assert printed.count(" a.parquet ") == 3  # the top rows


def test_unlabelled_logs_are_scored_with_empty_labels(tmp_path, capsys):
    detector = fitted().save(tmp_path / "d.joblib")
    logs = synthetic_file(tmp_path / "new.csv", seed=2, labels=False)
    out = tmp_path / "ranked.csv"
    score.main([str(detector), str(logs), "--out", str(out)])
    ranked = pd.read_csv(out)
    assert len(ranked) == 40 and ranked["label"].isna().all()
    assert ranked["score"].between(0, 1).all()
    assert "no labels in the files" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip")
def test_a_detector_of_another_kind_or_missing_columns_is_one_line(tmp_path, capsys):
    detector = fitted("flows").save(tmp_path / "d.joblib")
    dns = synthetic_file(tmp_path / "dns.parquet", kind="dns")
    flows = synthetic_file(tmp_path / "flows.csv")
    pd.read_csv(flows).drop(columns=["pkts"]).to_csv(tmp_path / "no_pkts.csv", index=False)
    cases = [
        ([dns], "dns.parquet: holds dns records, but .* was trained on flows records"),
        ([flows, "--kind", "http"], "--kind http: .* was trained on flows records"),
        ([tmp_path / "no_pkts.csv"], "no_pkts.csv, line 1, field 'pkts': missing field"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as stop:
            score.main([str(detector), *map(str, args), "--out", str(tmp_path / "r.csv")])
        text = str(stop.value)
        assert text.startswith("alchemy-score: error: ") and "\n" not in text
        assert pd.Series([text]).str.contains(message).all(), text
    assert not (tmp_path / "r.csv").exists()


# -- several named sets as one -----------------------------------------------------------------
@pytest.fixture
def data_root(tmp_path) -> Path:
    """Two named flows sets with tiny files: a Zeek conn.log (rule any) and a CTU-13 binetflow
    (rule ctu13), named as the sets' files are."""
    root = tmp_path / "data"
    (root / "flows-ctu-sme11").mkdir(parents=True)
    (root / "flows-ctu13-s6-menti").mkdir()
    zeek(root / "flows-ctu-sme11/a.conn.log.labeled.gz", "conn", CONN_FIELDS, CONN_ROWS)
    shutil.copy(FIXTURES / "ctu13-tiny.binetflow", root / "flows-ctu13-s6-menti/b.binetflow.gz")
    return root


SETS = ["flows-ctu-sme11", "flows-ctu13-s6-menti"]


def test_load_many_keeps_each_sets_rule_and_captures(data_root):
    parts = [datasets.load(name, data_root) for name in SETS]
    union = datasets.load_many(SETS, data_root)
    assert union.report.label_rule == "flows-ctu-sme11: any, flows-ctu13-s6-menti: ctu13"
    expected = pd.concat([p.labels for p in parts]).groupby(level=0).max()
    pd.testing.assert_series_equal(union.labels, expected, check_names=False)
    assert union.labels.index.name == "server" and union.labels.name == "label"
    assert set(union.groups) == {"flows-ctu-sme11/a.conn.log.labeled.gz"} | {
        "flows-ctu13-s6-menti/b.binetflow.gz"
    }
    assert len(union.records) == sum(len(p.records) for p in parts)
    assert union.to_bags().num_records == len(union.records)
    with pytest.raises(ValueError, match="sets of different kinds"):
        datasets.load_many(["flows-ctu-sme11", "dns-stratosphere"], data_root)


def test_a_target_in_two_sets_is_one_bag_with_the_highest_label(data_root):
    a = datasets.load("flows-ctu-sme11", data_root)
    b = datasets.Dataset(a.kind, a.records.copy(), a.labels.clip(upper=0), a.report)
    union = datasets.union({"x": a, "y": b})
    assert union.labels.equals(a.labels)  # the malicious label wins
    assert len(union.records) == 2 * len(a.records)
    assert any(
        f"{len(a.labels)} target(s) appear in several sets (1 with" in n for n in union.report.notes
    )


def test_alchemy_mode_fit_on_a_union_writes_a_detector_that_alchemy_score_reads(
    data_root, tmp_path
):
    names = f"data.names=[{','.join(SETS)}]"
    done = alchemy(
        [
            "mode=fit",
            "data=union",
            names,
            f"data.dataset.root={data_root}",
            "method=original",
            *FIT,
            f"hydra.run.dir={tmp_path / 'fit'}",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    detector = tmp_path / "fit" / DETECTOR_FILE
    assert f"-> {detector}" in done.stdout
    loaded = methods.load(detector)
    data = loaded.saved_["data"]
    assert data["name"] == "union" and "flows-ctu13-s6-menti: ctu13" in data["label_rule"]
    assert data["targets"] == len(datasets.load_many(SETS, data_root).labels)
    assert loaded.saved_["config"]["data"]["names"] == SETS
    out = tmp_path / "ranked.csv"
    score.main([str(detector), str(data_root), "--out", str(out)])
    assert len(pd.read_csv(out)) >= data["targets"]  # unlabelled targets are kept too


def test_fit_detector_fits_on_all_the_data(tmp_path):
    cfg = job_config(["data.dataset.n_targets=40", "method=original", *FIT], tmp_path)
    done = fit_detector(cfg)
    loaded = methods.load(done["path"])
    assert done["data"]["targets"] == 40 and done["data"]["label_rule"] == "synthetic labels"
    assert loaded.training_set_["origin"].eq("original").sum() == 40


# -- transfer cells ----------------------------------------------------------------------------
def test_a_transfer_cell_writes_results_scores_and_a_report(tmp_path):
    train = synthetic_file(tmp_path / "train.parquet", seed=0)
    train_records = pd.read_parquet(train)
    three = train_records[train_records.server.isin(train_records.server.unique()[:3])]
    other = pd.read_parquet(synthetic_file(tmp_path / "b.parquet", seed=1))
    pd.concat([other, three]).to_parquet(tmp_path / "test.parquet")
    test_targets = datasets.from_files(tmp_path / "test.parquet").labels.index
    shared = set(datasets.from_files(train).labels.index) & set(test_targets)
    overrides = [
        "evaluation=transfer",
        "data=files",
        "data.kind=flows",
        f"data.dataset.paths=[{train}]",
        f"evaluation.test_paths=[{tmp_path / 'test.parquet'}]",
        "evaluation.repeats=2",
        *FIT,
    ]
    for method in (["method=alchemy1", "method.resampler.iterations=2"], ["method=original"]):
        results = run_cell(job_config([*overrides, *method], tmp_path / method[0]))
        assert results["status"] == "ok"
    assert results["cell"]["protocol"] == "transfer"
    assert cli.summary_line(results, tmp_path).endswith(f"over 2 repeats -> {tmp_path}")
    assert results["cell"]["data"] == "files\u2192test.parquet"
    test = results["dataset"]["test"]
    assert test["dropped_targets"] == len(shared) >= 3 and set(test["dropped"]) == shared
    folds = pd.DataFrame(results["folds"])
    assert list(folds.repeat) == [0, 1]
    assert (folds.test_targets == len(test_targets) - len(shared)).all()
    scores = pd.read_parquet(tmp_path / "method=original" / "scores.parquet")
    assert set(scores.target).isdisjoint(shared) and len(scores) == 2 * folds.test_targets[0]
    written = report.write_report(tmp_path)
    assert "files\u2192test.parquet rf" in written["table"]
    assert "(slides)" not in written["table"]  # the slides cross-validated: no comparison
    assert set(report.collect(tmp_path)["protocol"]) == {"transfer"}
    assert "alchemy1" in written["gains"]  # paired over the repeats


def test_a_transfer_without_test_data_says_which_keys_to_set(tmp_path):
    cfg = job_config(["evaluation=transfer", "data.dataset.n_targets=40", *FIT], tmp_path)
    with pytest.raises(CellFailed, match="evaluation.test_paths=.*evaluation.test_names="):
        run_cell(cfg)
    assert json.loads((tmp_path / "results.json").read_text())["status"] == "failed"
