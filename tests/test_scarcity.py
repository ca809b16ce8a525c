"""The scarcity axis: cross_validate(..., train_malicious=N) keeps N malicious training targets."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from detection_helpers import small_bags, small_forest

from alchemy_torch import Resampler, evaluation, features, methods
from alchemy_torch.evaluation import scarce_training


def run(bags, method=None, **options):
    return evaluation.cross_validate(
        bags,
        features.make(bags.kind),
        method or methods.make("original"),
        small_forest(),
        folds=3,
        **options,
    )


def kept_malicious(train, labels, n, seed=7):
    kept = scarce_training(train, labels, n, seed)
    return set(kept[labels[kept] == 1].tolist())


def test_subsets_are_nested_over_n_and_keep_every_benign_target_in_order():
    labels = np.array([1, 0] * 30)
    train = np.arange(60)[::-1]  # any order: kept in it
    previous = set()
    for n in (1, 2, 5, 10, 20, 30):
        kept = scarce_training(train, labels, n, seed=7)
        malicious = set(kept[labels[kept] == 1].tolist())
        assert len(malicious) == n and previous <= malicious
        assert (labels[kept] == 0).sum() == 30
        assert (np.diff(kept) < 0).all()  # the order of train
        previous = malicious
    assert kept_malicious(train, labels, 5, seed=8) != kept_malicious(train, labels, 5, seed=7)


def test_a_fraction_and_too_many_and_bad_values(caplog):
    labels = np.array([1] * 20 + [0] * 20)
    train = np.arange(40)
    assert len(kept_malicious(train, labels, 0.25)) == 5
    assert len(kept_malicious(train, labels, 0.01)) == 1  # at least one
    assert kept_malicious(train, labels, 0.5) > kept_malicious(train, labels, 0.25)  # nested
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(scarce_training(train, labels, 50, 0), train)
    assert "holds 20 malicious training targets: all kept" in caplog.text
    assert scarce_training(train, labels, None, 0) is train
    for bad in (0, -3, 2.5, True, "5"):
        with pytest.raises(ValueError, match="train_malicious must be a count >= 1"):
            scarce_training(train, labels, bad, 0)


def test_test_folds_unchanged_and_counts_recorded():
    bags = small_bags("flows")
    full = run(bags, repeats=2)
    scarce = run(bags, repeats=2, train_malicious=3)
    pd.testing.assert_frame_equal(
        full.attrs["scores"][["repeat", "fold", "target", "label"]],
        scarce.attrs["scores"][["repeat", "fold", "target", "label"]],
    )
    assert (scarce.train_malicious == 3).all()
    assert (scarce.train_benign == full.train_benign).all()
    assert (full.train_malicious + full.test_malicious == int(bags.labels.sum())).all()
    assert (scarce.train_original == scarce.train_malicious + scarce.train_benign).all()
    assert not np.allclose(full.roc_auc, scarce.roc_auc)


def test_every_method_sees_the_same_subset():
    bags = small_bags("flows")
    fast = Resampler(option=4, iterations=3)
    original = run(bags, train_malicious=4)
    alchemy = run(bags, methods.make("alchemy3", resampler=fast), train_malicious=4)
    for a, b in zip(original.attrs["fits"], alchemy.attrs["fits"]):
        owners_a = a["training_set"].query("origin == 'original'").target
        owners_b = b["training_set"].query("origin == 'original'").target
        assert sorted(owners_a) == sorted(owners_b)
