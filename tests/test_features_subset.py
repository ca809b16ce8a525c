"""features.Subset: an extractor without some features (confound controls)."""

from __future__ import annotations

import pytest
import torch
from detection_helpers import small_bags, small_forest
from hydra.utils import instantiate
from sklearn.base import clone

from alchemy_torch import Resampler, evaluation, features, methods
from alchemy_torch.features import Subset
from alchemy_torch.methods import Vectors


def test_subset_keeps_the_other_columns_in_order():
    bags = small_bags("flows", n_targets=20)
    full = features.make("flows")
    drop = full.feature_names[1:40:3]
    subset = features.make("flows", drop=drop)
    kept = [i for i, name in enumerate(full.feature_names) if name not in drop]
    assert isinstance(subset, Subset) and subset.feature_names == [
        full.feature_names[i] for i in kept
    ]
    draws = Resampler(4, iterations=2).draw(bags, seed=0)
    for d in (None, draws):
        torch.testing.assert_close(subset(bags, d), full(bags, d)[:, kept], rtol=0, atol=0)


def test_drop_time_removes_exactly_the_features_that_read_absolute_time():
    full = features.make("dns")
    clocked = {f.name for f in full.features if f.clock}
    assert clocked, "the DNS set reads absolute time in some features"
    subset = features.make("dns", drop_time=True)
    assert set(subset.feature_names) == set(full.feature_names) - clocked
    assert subset.corpus_context and subset.kind == "dns"
    assert (
        features.make("flows", drop_time=True).feature_names == features.make("flows").feature_names
    )


def test_bad_drops_are_one_line_errors():
    with pytest.raises(ValueError, match=r"1 features that flows has not, e.g. 'nope'.*describe"):
        features.make("flows", drop=["nope"])
    with pytest.raises(ValueError, match="leave no feature"):
        features.make("flows", drop=features.make("flows").feature_names)
    with pytest.raises(TypeError, match="must be a FeatureExtractor"):
        Subset("flows")


def test_subset_clones_instantiates_and_fits_its_own_copy():
    subset = features.make("dns", drop_time=True)
    copy = clone(subset)
    assert copy == subset and copy.extractor is not subset.extractor
    built = instantiate(
        {"_target_": "alchemy_torch.features.make", "kind": "dns", "drop_time": True}
    )
    assert built == subset
    bags = small_bags("dns", n_targets=20)
    assert copy.fit(bags) is copy and copy.extractor.period_ is not None
    assert not hasattr(subset.extractor, "period_") or subset.extractor.period_ is None


def test_cross_validate_runs_with_a_subset_of_dns_features(monkeypatch):
    """Every fold's vectors come from an extractor without the clocked features."""
    clocked = {f.name for f in features.make("dns").features if f.clock}
    compute, widths = Vectors.compute, []

    def spy(extractor, *args, **kwargs):
        assert clocked and clocked.isdisjoint(extractor.feature_names)
        vectors = compute(extractor, *args, **kwargs)
        widths.append(vectors.original.shape[1])
        return vectors

    monkeypatch.setattr(Vectors, "compute", spy)
    bags = small_bags("dns")
    res = evaluation.cross_validate(
        bags,
        features.make("dns", drop_time=True),
        methods.make("original"),
        small_forest(),
        folds=3,
    )
    assert len(res) == 3 and res.roc_auc.between(0, 1).all()
    kept = len(features.make("dns").feature_names) - len(clocked)
    assert widths == [kept] * 6  # per fold (dns fits per fold): training and test vectors
