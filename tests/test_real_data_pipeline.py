"""Every real set in ../shared/data goes end to end: load -> Bags -> draws -> finite features."""

from __future__ import annotations

import warnings

import pytest
import torch

from alchemy_torch import Resampler, datasets, features
from alchemy_torch.datasets.registry import LOCAL

# the CTU-13 scenario is the one large file (559k lines): kept out of the default run
HEAVY = {"flows-ctu13-s6-menti"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in sorted(LOCAL)]
)
def test_real_set_runs_end_to_end(name, shared_data):
    ds = datasets.load(name, root=shared_data)
    bags = ds.to_bags()
    assert len(bags) == len(ds.labels) and bags.num_records == len(ds.records)
    assert set(bags.labels.tolist()) <= {0, 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dns: no GeoIP table given
        extractor = features.make(ds.kind).fit(bags)
    originals = extractor(bags)
    pseudo = extractor(bags, Resampler(4, iterations=3).draw(bags, seed=0))
    assert originals.shape == (len(bags), len(extractor.feature_names))
    assert pseudo.shape == (3 * len(bags), len(extractor.feature_names))
    assert bool(torch.isfinite(originals).all()) and bool(torch.isfinite(pseudo).all())
