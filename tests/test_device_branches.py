"""``ops.device_branches()``: the branches written for CUDA, run on the CPU, give the CPU path's
values exactly (draws, features of every kind and option set, methods' training sets).

The feature, resampler and segment tests also run through them against their references (the
``cpu-branches`` value of the ``device`` fixture, conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from detection_helpers import small_forest
from test_features_api import OPTIONS

from alchemy_torch import Bags, Resampler, datasets, methods, ops
from alchemy_torch.features import EXTRACTORS, make
from alchemy_torch.methods import Vectors
from alchemy_torch.ops import kernels

pytestmark = pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip:UserWarning")


def both_ways(compute) -> list:
    """``compute()`` on the CPU branches, then on the device branches (fresh Bags each), with
    the compiled kernels off on both sides: their own tests hold them to the torch steps."""
    out = []
    for branches in (False, True):
        with ops.device_branches(branches), kernels.compiled_kernels(False):
            out.append(compute())
    return out


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
@pytest.mark.parametrize("configured", [False, True], ids=["defaults", "options"])
def test_draws_and_features_agree_value_by_value(kind, configured):
    records, labels = datasets.synthetic(kind, n_targets=16, seed=5)

    def compute():
        bags = Bags.from_records(kind, records, labels)  # fresh per-Bags caches
        extractor = make(kind, **(OPTIONS[kind] if configured else {})).fit(bags)
        draws = Resampler(4, iterations=3, min_size=1).draw(bags, seed=5)
        return [draws.rows, draws.offsets, extractor(bags), extractor(bags, draws)]

    host, device = both_ways(compute)
    assert all(torch.equal(a, b) for a, b in zip(host, device))


@pytest.mark.parametrize("name", ["alchemy4", "smote"])
def test_methods_training_sets_agree_value_by_value(name):
    records, labels = datasets.synthetic("flows", n_targets=30, malicious_fraction=0.2, seed=1)
    resampler = Resampler(option=4, iterations=3)

    def compute():
        bags = Bags.from_records("flows", records, labels)
        vectors = Vectors.compute(make("flows"), bags, resampler, 3)
        options = {"resampler": resampler} if "alchemy" in name else {}
        method = methods.make(name, **options).fit_vectors(vectors, small_forest(), seed=0)
        return method.training_vectors_, method.training_set_

    (x_host, table_host), (x_device, table_device) = both_ways(compute)
    assert (x_host == x_device).all() and table_host.equals(table_device)


def test_the_switch_nests_and_the_environment_variable_turns_it_on():
    x, before = torch.zeros(3), ops.on_host(torch.zeros(3))
    with ops.device_branches():
        assert not ops.on_host(x)
        with ops.device_branches(False):
            assert ops.on_host(x) and not ops.on_host(x.to("meta"))
        assert not ops.on_host(x)
    assert ops.on_host(x) == before
    code = "import torch; from alchemy_torch import ops; print(ops.on_host(torch.zeros(1)))"
    env = {**os.environ, ops.DEVICE_BRANCHES_ENV: "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr
