"""Your own files as a Dataset: kinds from content, unknown targets, sources and groups, time
alignment, the confound audit; and the real Stratosphere sets with capture groups."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from test_io import CONN_FIELDS, CONN_ROWS, zeek

from alchemy_torch import Bags, datasets, features, io, labels
from alchemy_torch.datasets.audit import PROBES, single_feature_auc
from alchemy_torch.datasets.report import Report
from alchemy_torch.datasets.targets import label_targets
from alchemy_torch.features import Behaviour, Feature, FeatureExtractor
from alchemy_torch.ops import segment as seg

FIXTURES = Path(__file__).parent / "fixtures"
# responders of CONN_ROWS: one benign, one malicious, and 192.168.1.109 with Background only
BENIGN, MALICIOUS, BACKGROUND = "185.125.190.17", "66.63.168.35", "192.168.1.109"


@pytest.fixture
def conn_log(tmp_path):
    return zeek(tmp_path / "conn.log.labeled", "conn", CONN_FIELDS, CONN_ROWS)


# -- user files, unknown targets -------------------------------------------------------------
def test_a_capture_with_unknown_targets_loads_with_a_report(conn_log):
    with pytest.raises(ValueError, match="1 targets have no label.*from_files"):
        Bags.from_records("flows", io.read_flows(conn_log))
    ds = datasets.from_files(conn_log)
    assert ds.kind == "flows" and ds.labels.to_dict() == {BENIGN: 0, MALICIOUS: 1}
    assert ds.report.kept == {"malicious": (1, 1), "benign": (1, 2)}
    assert {(r["step"], r["reason"], r["cls"]) for r in ds.report.removed} == {
        ("read", "directions with 0 packets", "malicious"),
        ("label", labels.NO_LABEL, "unknown"),
    }
    read = sum(s["records"] for s in ds.report.sources.values())
    assert read == len(ds.records) + sum(r["records"] for r in ds.report.removed)
    bags = ds.to_bags()
    assert list(bags.targets) == list(ds.labels.index) and bags.labels.tolist() == [0, 1]


def test_unknown_keep_keeps_unlabelled_targets_as_minus_one(conn_log):
    ds = datasets.from_files([conn_log], unknown="keep")
    assert ds.labels.to_dict() == {BACKGROUND: -1, BENIGN: 0, MALICIOUS: 1}
    assert ds.report.kept["unknown"] == (1, 2)
    assert any("kept 1 unknown target" in n for n in ds.report.notes)
    bags = ds.to_bags()
    assert dict(zip(bags.targets, bags.labels.tolist())) == ds.labels.to_dict()
    assert "unknown" in str(ds.report)
    with pytest.raises(ValueError, match="unknown must be one of"):
        datasets.from_files(conn_log, unknown="guess")


def test_files_without_labels_are_unknown(tmp_path):
    rows = [r.rsplit(" ", 2)[0] for r in CONN_ROWS]
    path = zeek(tmp_path / "conn.log", "conn", CONN_FIELDS[:-2], rows)
    with pytest.raises(ValueError, match="no labelled target left.*unknown='keep'"):
        datasets.from_files(path)
    ds = datasets.from_files(path, unknown="keep")
    assert set(ds.labels) == {-1} and any("no label column" in n for n in ds.report.notes)


def test_one_label_vocabulary_and_tie_rule_for_bags_and_datasets():
    records = pd.DataFrame(
        {
            "server": ["a", "a", "b", "b", "b", "c", "c"],
            "label": np.array([1, 0, 1, 1, 0, 0, 0], np.int8),
            "detailed_label": ["From-Botnet-CC1", "", "From-Botnet-SPAM", "", "", "", ""],
        }
    )
    one_flow = dict(ts=1.6e9, proto="tcp", src="h", dst="s", sport=1, dport=80, pkts=1, bytes=60)
    flows = records.assign(flags="", **one_flow)
    for rule in labels.RULES:
        _, got = label_targets(records, "flows", rule, Report("t", "flows", "server"), "keep")
        want = got.to_dict()
        if (got == -1).any():  # Bags refuses what the rule leaves unknown...
            with pytest.raises(ValueError, match="have no label"):
                Bags.from_records("flows", flows, label_rule=rule)
            want = {k: v for k, v in want.items() if v != -1}
        known = flows[flows["server"].isin(want)]
        bags = Bags.from_records("flows", known, label_rule=rule)  # ...else agrees
        assert dict(zip(bags.targets, bags.labels.tolist())) == want, rule
    # majority: a tie is unknown everywhere
    _, got = label_targets(records, "flows", "majority", Report("t", "flows", "server"), "keep")
    assert got.to_dict() == {"a": -1, "b": 1, "c": 0}


# -- kinds from content ---------------------------------------------------------------------
def _canonical_csv(path, kind, n_targets=20):
    records, _ = datasets.synthetic(kind, n_targets=n_targets, seed=1)
    if kind == "dns":
        records = records.assign(
            answers=records["answers"].str.join(","),
            ttls=records["ttls"].map(lambda t: ",".join(map(str, t))),
        )
    records.to_csv(path, index=False)
    return path


def _json_line(path, record: dict):
    path.write_text(json.dumps(record) + "\n")
    return path


def test_the_kind_is_inferred_from_content_not_names(tmp_path, conn_log):
    json_conn = _json_line(
        tmp_path / "a.log",
        {"ts": 1.0, "id.orig_h": "h", "id.resp_h": "s", "orig_pkts": 1, "resp_pkts": 0},
    )
    dns_json = _json_line(
        tmp_path / "c.log",
        {"ts": 1.0, "id.orig_h": "h", "query": "x.com", "qtype_name": "A", "TTLs": [60]},
    )
    fields_only = tmp_path / "b.log"
    fields_only.write_text(conn_log.read_text().replace("#path\tconn\n", ""))
    argus = tmp_path / "d.txt"
    shutil.copy(FIXTURES / "ctu13-tiny.binetflow", argus)
    records, _ = datasets.synthetic("http", n_targets=10, seed=1)
    records.to_parquet(tmp_path / "e.bin")
    expect = {
        conn_log: "flows",
        json_conn: "flows",
        fields_only: "flows",
        dns_json: "dns",
        argus: "flows",
        tmp_path / "e.bin": "http",
        _canonical_csv(tmp_path / "f.dat", "dns"): "dns",
        _canonical_csv(tmp_path / "g.dat", "http"): "http",
        _canonical_csv(tmp_path / "h.dat", "flows"): "flows",
    }
    for name in ("cicids2017.csv", "cicids2018.csv", "unsw-nb15_1.csv", "nfdump.csv"):
        expect[FIXTURES / "io" / name] = "flows"
    expect[FIXTURES / "io" / "cicids2017-improved.csv"] = "flows"
    expect[FIXTURES / "io" / "squid-access.log"] = "http"
    assert {p: datasets.infer_kind(p) for p in expect} == expect
    with pytest.raises(ValueError, match="EVE file holds flows, http and dns events; pass kind="):
        datasets.infer_kind(FIXTURES / "io" / "eve.json")
    eve = datasets.from_files([FIXTURES / "io" / "eve.json"], kind="http", unknown="keep")
    assert eve.kind == "http" and len(eve.records) > 0
    assert eve.report.notes[0] == (
        "eve.json: records whose value the reader estimated or could not know: bytes_out 3 "
        "(features of those columns: see features.describe(kind)['unknown_from'])"
    )
    ds = datasets.from_files([tmp_path / "f.dat"])
    assert ds.kind == "dns" and ds.report.kept["malicious"][0] == 2
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="cannot tell flows, http or dns.*pass kind="):
        datasets.infer_kind(odd)
    with pytest.raises(ValueError, match="different kinds"):
        datasets.from_files([conn_log, tmp_path / "f.dat"])


# -- sources, groups, time alignment ----------------------------------------------------------
def test_sources_become_groups_and_same_names_keep_their_folder(tmp_path, conn_log):
    other = tmp_path / "day2"
    other.mkdir()
    shifted = [r.replace("16768514", "16768600", 1) for r in CONN_ROWS]
    rows = shifted + [shifted[0].replace(BENIGN, "9.9.9.9")]
    zeek(other / "conn.log.labeled", "conn", CONN_FIELDS, rows)
    ds = datasets.from_files([conn_log, other / "conn.log.labeled"])
    assert set(ds.records["source"]) == {"conn.log.labeled", "day2/conn.log.labeled"}
    groups = ds.groups
    assert groups.index.equals(ds.labels.index)
    assert list(groups.index) == list(ds.to_bags().targets)
    assert groups["9.9.9.9"] == "day2/conn.log.labeled"
    # BENIGN has 2 records in each source: the tie goes to the first name
    assert groups[BENIGN] == "conn.log.labeled"
    assert any("2 target(s) appear in several sources" in n for n in ds.report.notes)


def test_a_folder_is_one_source_per_log_file(tmp_path, conn_log):
    folder = tmp_path / "zeek"
    folder.mkdir()
    shifted = [r.replace("16768514", "16768600", 1) for r in CONN_ROWS]
    zeek(folder / "day2.conn.log.labeled", "conn", CONN_FIELDS, shifted)
    shutil.copy(conn_log, folder / "day1.conn.log.labeled")
    (folder / "notes.txt").write_text("not a log\n")
    zeek(folder / "http.log", "http", ("ts", "id.orig_h", "id.resp_h", "uri"), ["1 a b /"])
    with pytest.raises(ValueError, match="files of different kinds"):
        datasets.from_files(folder)
    ds = datasets.from_files(folder, kind="flows")
    files = datasets.from_files(
        [folder / "day1.conn.log.labeled", folder / "day2.conn.log.labeled"], kind="flows"
    )
    pd.testing.assert_frame_equal(ds.records, files.records)
    assert list(ds.report.sources) == ["day1.conn.log.labeled", "day2.conn.log.labeled"]


def _two_clock_files(tmp_path) -> list[Path]:
    """Synthetic DNS: the malicious capture logs seconds since its start, the benign one epoch
    seconds (as Stratosphere's captures do)."""
    records, _ = datasets.synthetic("dns", n_targets=300, malicious_fraction=0.3, seed=0)
    records = records.assign(
        answers=records["answers"].str.join(","),
        ttls=records["ttls"].map(lambda t: ",".join(map(str, t))),
    )
    malicious = records[records["label"] == 1]
    malicious = malicious.assign(ts=malicious["ts"] - malicious["ts"].min() + 13.0)
    paths = [tmp_path / "malware.dns.csv", tmp_path / "benign.dns.csv"]
    malicious.to_csv(paths[0], index=False)
    records[records["label"] == 0].to_csv(paths[1], index=False)
    return paths


def test_align_time_capture_shifts_each_source_to_zero_and_says_so(tmp_path):
    paths = _two_clock_files(tmp_path)
    raw = datasets.from_files(paths)
    assert raw.report.sources["malware.dns.csv"]["clock"] == "relative"
    assert raw.report.sources["benign.dns.csv"]["clock"] == "epoch"
    assert any("mixed clocks" in n and "align_time='capture'" in n for n in raw.report.notes)
    ds = datasets.from_files(paths, align_time="capture")
    first = ds.records.groupby("source")["ts"].min()
    assert (first == 0).all()
    for source, group in raw.records.groupby("source"):
        aligned = ds.records.loc[ds.records["source"] == source, "ts"].to_numpy()
        assert np.allclose(aligned, group["ts"].to_numpy() - group["ts"].min())
        assert ds.report.sources[source]["shift"] == -group["ts"].min()
    assert any("shifted to start at 0" in n for n in ds.report.notes)
    assert "relative" in str(ds.report) and "epoch" in str(ds.report)
    with pytest.raises(ValueError, match="align_time must be one of"):
        datasets.from_files(paths, align_time="epoch")


class MeanTime(FeatureExtractor):
    """A feature that reads absolute time: the mean timestamp of a draw."""

    kind = "dns"
    features = [Feature("time_mean_ts", Behaviour.CENTRED, "mean ts", clock="epoch")]

    def compute(self, segments):
        return seg.segment_mean(segments.column("ts"), segments.offsets).unsqueeze(1)


def test_audit_flags_time_features_and_alignment_removes_the_flag(tmp_path):
    paths = _two_clock_files(tmp_path)
    before = datasets.audit(datasets.from_files(paths), MeanTime())
    assert set(before.flagged["feature"]) == {"time_mean_ts", *PROBES}
    assert len(before.warnings) == 3 and "time_mean_ts: ROC-AUC 0.000" in str(before)
    assert set(before.sources["class"]) == {"malicious", "benign"}
    assert before.sources.set_index("class").loc["malicious", "clock"] == "relative"
    assert any("no source holds both classes" in n for n in before.notes)
    after = datasets.audit(datasets.from_files(paths, align_time="capture"), MeanTime())
    assert after.flagged.empty and after.warnings == []
    assert (after.sources["clock"] == "aligned").all()


def test_audit_with_the_default_extractor_and_one_class():
    ds = datasets.load("synthetic-flows")
    report = datasets.audit(ds)
    assert len(report.auc) == len(report.auc["feature"].unique()) > len(PROBES)
    assert report.auc["auc"].between(0, 1).all()
    benign_only = datasets.Dataset(
        ds.kind, ds.records, ds.labels.where(ds.labels == 0, -1).astype(np.int8), ds.report
    )
    one_class = datasets.audit(benign_only)
    assert one_class.auc["auc"].isna().all() and one_class.flagged.empty
    assert any("lacks malicious or benign" in n for n in one_class.notes)


def test_single_feature_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(-1, 2, 300)
    X = np.column_stack([rng.normal(size=300), rng.integers(0, 3, 300), y + rng.random(300)])
    got = single_feature_auc(X, y)
    known = y >= 0
    want = [roc_auc_score(y[known], X[known, j]) for j in range(X.shape[1])]
    assert np.allclose(got, want)


def test_describe_names_the_alignment_of_absolute_time_features():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = features.describe("dns").set_index("feature")
    assert "UTC calendar days" in table.loc["day_mean_distance", "clock"]
    assert "align_time='capture'" in table.loc["bag_ratio_lifetime", "clock"]
    assert table.loc["answer_mean_ttl", "clock"] == ""


# -- the real Stratosphere sets ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dns-stratosphere", "http-stratosphere"])
def test_stratosphere_sets_load_aligned_with_capture_groups(name, shared_data):
    ds = datasets.load(name, root=shared_data, align_time="capture")
    clocks = {s: info["clock"] for s, info in ds.report.sources.items()}
    assert {c for s, c in clocks.items() if "malware" in s} == {"relative"}
    assert {c for s, c in clocks.items() if "malware" not in s} == {"epoch"}
    for info in ds.report.sources.values():  # each source starts at 0 as read
        assert info["first_ts"] + info["shift"] == 0
    assert ds.records["ts"].min() >= 0
    groups = ds.groups
    assert groups.index.equals(ds.labels.index) and groups.notna().all()
    assert set(groups) <= set(ds.report.sources)
    malware = groups.str.contains("malware")
    assert malware[ds.labels == 1].all()  # every malicious target comes from malware captures
    # benign targets in malware captures: none for dns, Kovter's one benign server for http
    in_malware = int(malware[ds.labels == 0].sum())
    assert in_malware == {"dns-stratosphere": 0, "http-stratosphere": 1}[name]
    bags = ds.to_bags()
    assert list(bags.targets) == list(groups.index)
    assert bags.labels.tolist() == ds.labels.tolist()
