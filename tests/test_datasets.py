"""Synthetic generators, named datasets, filters and the fetch helper (local HTTP only)."""

import hashlib
import http.server
import shutil
import socket
import threading
import urllib.error
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alchemy_torch import datasets, io
from alchemy_torch.datasets import remote

FIXTURES = Path(__file__).parent / "fixtures"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
real_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")


# -- synthetic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", io.KINDS)
def test_synthetic_contract(kind):
    records, labels = datasets.synthetic(kind, n_targets=300, seed=3)
    target = io.TARGET[kind]
    assert list(records.columns) == list(io.COLUMNS[kind]) + ["label", "detailed_label"]
    assert records["ts"].dtype == np.float64 and records["label"].dtype == np.int8
    assert records["ts"].is_monotonic_increasing and records["ts"].min() > 1e9
    assert labels.dtype == np.int8 and labels.index.name == target
    assert set(labels.index) == set(records[target]) and labels.index.is_unique
    assert (records["label"].to_numpy() == labels.loc[records[target]].to_numpy()).all()
    assert labels.sum() == 30  # malicious_fraction 0.1
    sizes = records.groupby(target).size()
    assert sizes[labels == 1].median() < sizes[labels == 0].median()  # few records
    assert sizes.max() > 8 * sizes.median()  # heavy tail
    if kind == "dns":
        assert (records["answers"].map(len) == records["ttls"].map(len)).all()
        assert records["answers"].map(lambda a: isinstance(a, list)).all()
    again, _ = datasets.synthetic(kind, n_targets=300, seed=3)
    pd.testing.assert_frame_equal(records, again)
    other, _ = datasets.synthetic(kind, n_targets=300, seed=4)
    assert not records["ts"].equals(other["ts"])


def test_synthetic_arguments():
    with pytest.raises(ValueError, match="unknown kind"):
        datasets.synthetic("smtp")
    with pytest.raises(ValueError, match="difficulty"):
        datasets.synthetic("dns", difficulty=1.5)
    records, labels = datasets.synthetic("flows", n_targets=50, malicious_fraction=0.0)
    assert labels.sum() == 0 and (records["label"] == 0).all()
    records, labels = datasets.synthetic("http", n_targets=50, n_records=20_000)
    assert abs(len(records) - 20_000) < 200 and len(labels) == 50


# -- named sets, reports, filters ------------------------------------------------------------
def test_available_and_synthetic_load():
    assert not hasattr(datasets, "list")  # one name: available()
    names = datasets.available()
    assert {"synthetic-flows", "flows-ctu13-s6-menti", "dns-stratosphere", "ctu13-1"} <= set(names)
    ds = datasets.load("synthetic-dns")
    assert ds.kind == "dns" and ds.target == "query" and ds.report.kept["malicious"][0] == 100
    assert "synthetic-dns" in str(ds.report)
    with pytest.raises(KeyError, match="unknown dataset"):
        datasets.load("no-such-set")
    with pytest.raises(FileNotFoundError, match="pass root="):
        datasets.load("flows-iot23-small", root=FIXTURES)


def test_filter_counts_every_record():
    ds = datasets.load("synthetic-http")
    small = ds.filter(min_bag_size=40)
    removed = {r["cls"]: r for r in small.report.removed}
    for cls in ("malicious", "benign"):
        t, r = ds.report.kept[cls]
        t2, r2 = small.report.kept[cls]
        assert (t2 + removed[cls]["targets"], r2 + removed[cls]["records"]) == (t, r)
    assert small.records.groupby("server").size().min() >= 40
    assert set(small.labels.index) == set(small.records["server"])
    assert ds.report.removed == []  # the original is untouched
    valid = ds.filter(valid=True)  # synthetic paths all parse: only the size-30 filter acts
    assert {r["step"] for r in valid.report.removed} == {"min_bag_size"}
    assert "bags under 30 records" in str(valid.report)


def test_target_rules_and_valid_records():
    from alchemy_torch.datasets.report import Report
    from alchemy_torch.datasets.targets import filter_bags, label_targets

    records = pd.DataFrame(
        {
            "server": ["a", "a", "a", "b", "b", "c", "d"],
            "label": np.array([1, 0, 0, 1, -1, -1, 0], np.int8),
            "detailed_label": [
                "From-Botnet-V1-TCP-CC1",
                "",
                "",
                "From-Botnet-V1-TCP-Attempt-SPAM",
                "",
                "",
                "",
            ],
        }
    )
    expect = {
        "any": {"a": 1, "b": 1, "d": 0},
        "majority": {"a": 0, "b": 1, "d": 0},
        "all": {"a": 0, "b": 1, "d": 0},
        "ctu13": {"a": 1, "d": 0},
    }
    for rule, labels in expect.items():
        report = Report("t", "flows", "server")
        kept, got = label_targets(records, "flows", rule, report)
        assert got.to_dict() == labels and set(kept["server"]) == set(labels)
        assert sum(r["records"] for r in report.removed) == len(records) - len(kept)
    with pytest.raises(ValueError, match="label_rule must be one of"):
        label_targets(records, "flows", "nope", Report("t", "flows", "server"))

    dns = pd.DataFrame(
        {
            "query": ["m", "m", "b", "b"],
            "qtype": ["A", "TXT", "AAAA", "A"],
            "answers": [["1.2.3.4"], ["1.2.3.4"], ["2001:db8::1"], ["cname.b"]],
        }
    )
    report = Report("t", "dns", "query")
    kept, labels = filter_bags(
        dns, pd.Series({"m": 1, "b": 0}, dtype=np.int8), "dns", report, valid=True, min_bag_size=1
    )
    assert kept["qtype"].tolist() == ["A", "AAAA"] and labels.to_dict() == {"m": 1, "b": 0}
    http = pd.DataFrame(
        {
            "server": ["s"] * 4,
            "method": ["GET", "GET", "CONNECT", "GET"],
            "path": ["/a", "", "host:443", "http://x/y"],
        }
    )
    report = Report("t", "http", "server")
    kept, _ = filter_bags(
        http, pd.Series({"s": 1}, dtype=np.int8), "http", report, valid=True, min_bag_size=1
    )
    assert kept["path"].tolist() == ["/a", "host:443", "http://x/y"]
    assert report.removed == [
        dict(
            step="valid",
            reason="requests with an unparseable URL",
            cls="malicious",
            targets=0,
            records=1,
        )
    ]


# -- fetch: a local HTTP server only ------------------------------------------------------------
class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single 'bytes=N-' ranges; counts requests."""

    hits = 0

    def do_GET(self):
        type(self).hits += 1
        path = Path(self.translate_path(self.path))
        rng = self.headers.get("Range")
        if not rng or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()[int(rng.split("=")[1].rstrip("-")) :]
        self.send_response(206)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(FIXTURES / "ctu13-tiny.binetflow", root / "capture20110816.binetflow")
    _RangeHandler.hits = 0
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _RangeHandler(*a, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_fetch_verifies_and_caches(server, tmp_path, monkeypatch):
    base, root = server
    url, sha = f"{base}/capture20110816.binetflow", _sha(root / "capture20110816.binetflow")
    cache = tmp_path / "cache"
    path = datasets.fetch("ctu13-6", cache_dir=cache, url=url, sha256=sha)
    assert path == cache / "ctu13-6" / "capture20110816.binetflow" and _sha(path) == sha
    hits = _RangeHandler.hits
    monkeypatch.setenv(remote.CACHE_ENV, str(cache))
    assert datasets.fetch("ctu13-6", url=url, sha256=sha) == path  # env var, from cache
    assert _RangeHandler.hits == hits
    with pytest.raises(KeyError, match="unknown remote dataset"):
        datasets.fetch("ctu99")


def test_fetch_checksum_mismatch_leaves_nothing(server, tmp_path):
    base, _ = server
    with pytest.raises(datasets.ChecksumError, match="expected") as err:
        datasets.fetch(
            "ctu13-6", cache_dir=tmp_path, url=f"{base}/capture20110816.binetflow", sha256="0" * 64
        )
    assert "sha256=" in str(err.value)
    assert list((tmp_path / "ctu13-6").iterdir()) == []


def test_fetch_resumes_partial_download(server, tmp_path):
    base, root = server
    full = (root / "capture20110816.binetflow").read_bytes()
    folder = tmp_path / "ctu13-6"
    folder.mkdir()
    (folder / "capture20110816.binetflow.part").write_bytes(full[:100])
    path = datasets.fetch(
        "ctu13-6",
        cache_dir=tmp_path,
        url=f"{base}/capture20110816.binetflow",
        sha256=_sha(root / "capture20110816.binetflow"),
    )
    assert path.read_bytes() == full and not (folder / "capture20110816.binetflow.part").exists()


def test_fetch_offline_says_where_a_copy_goes(tmp_path, monkeypatch):
    """No network: the set, its URL and the cache path for a copy obtained by other means;
    a copy put there is then used, checked against the published hash."""

    def offline(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(remote.urllib.request, "urlopen", offline)
    entry = remote.REMOTE["ctu13-6"]
    dest = tmp_path / "ctu13-6" / "capture20110816.binetflow"
    with pytest.raises(remote.UnreachableError) as err:
        datasets.fetch("ctu13-6", cache_dir=tmp_path)
    assert str(err.value) == (
        f"ctu13-6: cannot reach {entry.url} ([Errno -2] Name or service not known); on a "
        f"machine without network, download that file by other means and put it at {dest} "
        f"(checked against its SHA-256 {remote.S6_SHA256})"
    )
    assert list(dest.parent.iterdir()) == []  # no empty .part left behind
    copy = FIXTURES / "ctu13-tiny.binetflow"
    shutil.copy(copy, dest)
    assert datasets.fetch("ctu13-6", cache_dir=tmp_path, sha256=_sha(copy)) == dest
    with pytest.raises(remote.UnreachableError, match="its SHA-256 recorded on first use"):
        datasets.fetch("iot23-34-1", cache_dir=tmp_path)


def test_fetch_without_checksum_records_first_hash(server, tmp_path, monkeypatch):
    base, root = server
    entry = replace(remote.REMOTE["ctu13-6"], url=f"{base}/capture20110816.binetflow", sha256=None)
    monkeypatch.setitem(remote.REMOTE, "ctu13-6", entry)
    with pytest.warns(UserWarning, match="no published checksum"):
        path = datasets.fetch("ctu13-6", cache_dir=tmp_path)
    recorded = path.with_name(path.name + ".sha256").read_text().split()[0]
    assert recorded == _sha(path)
    path.write_bytes(b"tampered")
    with pytest.warns(UserWarning, match="wrong SHA-256"):
        assert (
            datasets.fetch("ctu13-6", cache_dir=tmp_path).read_bytes()
            == (root / "capture20110816.binetflow").read_bytes()
        )
    # load() reads a remote set through the same cache, with the CTU-13 rule
    ds = datasets.load("ctu13-6", cache_dir=tmp_path)
    assert ds.labels.to_dict() == {"147.32.80.9": 0, "74.125.232.216": 0, "91.212.135.158": 1}
    reasons = {r["reason"]: r["targets"] for r in ds.report.removed if r["step"] == "label"}
    assert reasons == {"botnet flows but no C&C (victims)": 2, "no malicious or benign record": 2}


# -- the real sets in ../shared/data -------------------------------------------------------------
EXPECTED = {  # name: (malicious targets, benign targets), per each SOURCE.md's rule
    "flows-iot23-small": (12, 238),  # SOURCE: 13; one DDoS victim has only 0-packet flows
    "flows-ctu13-s6-menti": (1, 204),
    "flows-ctu-sme11": (1, 72),
    "flows-android-mischief-rat01": (1, 0),
    "flows-ctu-malware-botnet-4": (1815, 99),
    "flows-ctu-benign-2023-02-20": (0, 377),
    "flows-ctu-normal-attacked": (3484, 896),
    "http-stratosphere": (435, 66),
    "dns-stratosphere": (256, 548),  # SOURCE: 549, counting the unset query '-'
}


@real_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_sets(name):
    ds = datasets.load(name)
    kept = ds.report.kept
    assert (kept["malicious"][0], kept["benign"][0]) == EXPECTED[name]
    assert set(ds.labels.index) == set(ds.records[ds.target]) and ds.labels.dtype == np.int8
    assert sum(r for _, r in kept.values()) == len(ds.records)
    read = sum(s["records"] for s in ds.report.sources.values())
    assert read == len(ds.records) + sum(r["records"] for r in ds.report.removed)
    if name == "flows-ctu13-s6-menti":
        removed = {r["reason"]: r["targets"] for r in ds.report.removed}
        assert removed["botnet flows but no C&C (victims)"] == 1578
        assert removed["no malicious or benign record"] == 40651
        assert ds.labels[ds.labels == 1].index.tolist() == ["91.212.135.158"]
    if name == "flows-ctu-normal-attacked":  # targets are the remote endpoints
        assert not ds.labels.index.isin(["147.32.81.167", "147.32.83.234", "147.32.83.165"]).any()
