"""Your own files as a Dataset: kinds from content, unknown targets, sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_io import CONN_FIELDS, CONN_ROWS, zeek

from alchemy_torch import Bags, datasets, io, labels
from alchemy_torch.datasets.report import Report
from alchemy_torch.datasets.targets import label_targets

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
    assert {p: datasets.infer_kind(p) for p in expect} == expect
    ds = datasets.from_files([tmp_path / "f.dat"])
    assert ds.kind == "dns" and ds.report.kept["malicious"][0] == 2
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="cannot tell flows, http or dns.*pass kind="):
        datasets.infer_kind(odd)
    with pytest.raises(ValueError, match="different kinds"):
        datasets.from_files([conn_log, tmp_path / "f.dat"])


# -- sources ---------------------------------------------------------------------------------
def test_sources_are_file_names_and_same_names_keep_their_folder(tmp_path, conn_log):
    other = tmp_path / "day2"
    other.mkdir()
    shifted = [r.replace("16768514", "16768600", 1) for r in CONN_ROWS]
    rows = shifted + [shifted[0].replace(BENIGN, "9.9.9.9")]
    zeek(other / "conn.log.labeled", "conn", CONN_FIELDS, rows)
    ds = datasets.from_files([conn_log, other / "conn.log.labeled"])
    assert set(ds.records["source"]) == {"conn.log.labeled", "day2/conn.log.labeled"}
    assert ds.report.sources.keys() == {"conn.log.labeled", "day2/conn.log.labeled"}
