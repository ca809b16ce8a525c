"""Shared fixtures: devices to test on, small canonical record tables, the real-data root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from alchemy_torch import ops

#: "cpu-branches": the CPU inside ops.device_branches(), taking the branches written for CUDA
DEVICES = ["cpu", "cpu-branches"] + (["cuda"] if torch.cuda.is_available() else [])
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    if request.param != "cpu-branches":
        yield torch.device(request.param)
        return
    with ops.device_branches():
        yield torch.device("cpu")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def random_flows(n_targets: int = 6, n_records: int = 400, seed: int = 0) -> pd.DataFrame:
    """Small one-way flow records over a few servers and clients, with ties in ts."""
    rng = np.random.default_rng(seed)
    servers = np.array([f"10.0.0.{i}" for i in range(n_targets)])
    clients = np.array([f"192.168.1.{i}" for i in range(8)])
    server = rng.choice(servers, n_records, p=rng.dirichlet(np.ones(n_targets)))
    client = rng.choice(clients, n_records)
    inbound = rng.random(n_records) < 0.6
    return pd.DataFrame(
        {
            "ts": 1.6e9 + np.round(rng.random(n_records) * 3600, 1),
            "proto": rng.choice(["tcp", "udp"], n_records),
            "src": np.where(inbound, client, server),
            "dst": np.where(inbound, server, client),
            "sport": rng.integers(1024, 65535, n_records),
            "dport": rng.choice([53, 80, 443], n_records),
            "pkts": rng.integers(1, 50, n_records),
            "bytes": rng.integers(40, 5000, n_records),
            "flags": rng.choice(["S", "SA", "FA", ""], n_records),
            "server": server,
            "duration": rng.random(n_records),
            "label": (server == servers[1]).astype(int),
        }
    )


def random_dns(n_records: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    domains = np.array(["a.example.com", "b.example.org", "x1y2.biz", "cdn.example.net"])
    n_ans = rng.integers(0, 4, n_records)
    return pd.DataFrame(
        {
            "ts": 1.6e9 + rng.random(n_records) * 86400,
            "client": rng.choice(["10.1.1.1", "10.1.1.2"], n_records),
            "query": rng.choice(domains, n_records),
            "qtype": "A",
            "rcode": "NOERROR",
            "answers": [[f"1.2.3.{rng.integers(0, 9)}" for _ in range(k)] for k in n_ans],
            "ttls": [[int(rng.integers(1, 600)) for _ in range(k)] for k in n_ans],
        }
    )


@pytest.fixture
def flows_records() -> pd.DataFrame:
    return random_flows()
