"""TargetClassifier: scikit-learn's model selection over targets of bound Bags."""

from __future__ import annotations

import numpy as np
import pytest
from detection_helpers import small_bags, small_forest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_evaluation import SpyDns, SpyForest

from alchemy_torch import Resampler, evaluation, features, methods
from alchemy_torch.evaluation import TargetClassifier, repeat_splits


def fast() -> Resampler:
    """A fresh small resampler (set_params changes nested objects in place)."""
    return Resampler(option=4, iterations=3)


def estimator(bags, method=None, **options) -> TargetClassifier:
    method = method or methods.make("alchemy4", resampler=fast(), p_range=(0.0, 0.99))
    return TargetClassifier(bags, features.make(bags.kind), method, small_forest(), **options)


def targets_and_labels(bags):
    return np.arange(len(bags)), bags.labels.numpy()


# ---------------------------------------------------------- the same numbers as cross_validate
@pytest.mark.parametrize(
    "kind, name, cache",
    [
        ("flows", "alchemy4", True),
        pytest.param("flows", "alchemy4", False, marks=pytest.mark.slow),
        pytest.param("dns", "alchemy3", True, marks=pytest.mark.slow),
    ],
)
def test_cross_val_score_equals_cross_validate_per_fold(kind, name, cache):
    """Same folds and seed: the same draws, extractor fits, method and model seeds per fold
    (flows: every target's vectors cached or each part's computed; dns: fitted per fold)."""
    bags = small_bags(kind)
    method = methods.make(name, resampler=fast(), p_range=(0.0, 0.99))
    expected = evaluation.cross_validate(
        bags, features.make(kind), method, small_forest(), folds=3, seed=5
    )
    X, y = targets_and_labels(bags)
    splits = repeat_splits(y, 3, seed=5, repeat=0)
    est = estimator(bags, method, seed=5, splits=splits, cache=cache)
    got = cross_val_score(est, X, y, cv=splits, scoring="roc_auc")
    np.testing.assert_array_equal(got, expected.roc_auc.to_numpy())


def test_a_later_repeat_with_scarce_training_matches_too():
    bags = small_bags("flows")
    method = methods.make("alchemy3", resampler=fast())
    expected = evaluation.cross_validate(
        bags,
        features.make("flows"),
        method,
        small_forest(),
        folds=3,
        repeats=2,
        seed=1,
        train_malicious=4,
    ).query("repeat == 1")
    X, y = targets_and_labels(bags)
    splits = repeat_splits(y, 3, seed=1, repeat=1, train_malicious=4)
    assert all((y[train] == 1).sum() == 4 for train, _ in splits)
    est = estimator(bags, method, seed=1, repeat=1, splits=splits)
    got = cross_val_score(est, X, y, cv=splits, scoring="roc_auc")
    np.testing.assert_array_equal(got, expected.roc_auc.to_numpy())
    assert clone(est).fit(X[splits[2][0]]).fold_ == 2
    assert clone(est).fit(X[:40]).fold_ == 3  # not a split's training set: len(splits)


def test_no_test_target_reaches_the_extractor_or_the_model():
    SpyDns.fitted_on, SpyDns.produced, SpyForest.fits = [], {}, []
    bags = small_bags("dns")
    X, y = targets_and_labels(bags)
    splits = repeat_splits(y, 3, seed=0, repeat=0)
    est = TargetClassifier(bags, SpyDns(), methods.make("alchemy3", resampler=fast()), SpyForest())
    cross_val_score(est, X, y, cv=splits, scoring="roc_auc")
    assert len(SpyDns.fitted_on) == len(SpyForest.fits) == 3
    for (train, test), seen, fitted in zip(splits, SpyDns.fitted_on, SpyForest.fits):
        assert seen == set(bags.targets[train])
        sources = set().union(*(SpyDns.produced.get(row.tobytes(), set()) for row in fitted))
        assert sources and sources.isdisjoint(bags.targets[test])


# ------------------------------------------------------------------ parameters and clone
def test_deep_parameters_reach_method_resampler_and_model():
    est = estimator(small_bags("flows"))
    params = est.get_params(deep=True)
    assert params["method__f"] == 5.0 and params["method__resampler__iterations"] == 3
    assert params["model__n_estimators"] == 20
    est.set_params(method__f=2.0, method__resampler__iterations=7, model__n_estimators=9)
    est.set_params(method__resampler__option=3, seed=4)
    assert (est.method.f, est.method.resampler.iterations) == (2.0, 7)
    assert (est.method.resampler.option, est.model.n_estimators, est.seed) == (3, 9, 4)
    assert {k: est.get_params()[k] for k in ("method__f", "model__n_estimators")} == {
        "method__f": 2.0,
        "model__n_estimators": 9,
    }
    with pytest.raises(ValueError, match="no parameter 'k'"):
        est.set_params(method__k=3)


def test_clone_copies_configuration_and_shares_the_bags():
    bags = small_bags("flows")
    X, _ = targets_and_labels(bags)
    est = estimator(bags, seed=3).fit(X[::2])
    twin = clone(est)
    assert twin.bags is bags and twin._cached is est._cached
    assert twin.method == est.method and twin.method is not est.method
    assert twin.method.resampler is not est.method.resampler
    assert twin.get_params()["model__n_estimators"] == 20 and twin.seed == 3
    assert not hasattr(twin, "method_") and hasattr(est, "method_")
    twin.set_params(method__resampler__iterations=9)
    assert est.method.resampler.iterations == 3


# ---------------------------------------------------------------------------- searches
def test_grid_search_over_alchemy_settings():
    bags = small_bags("flows")
    X, y = targets_and_labels(bags)
    grid = {"method__resampler__iterations": [2, 4], "method__f": [0.5, np.inf]}
    search = GridSearchCV(estimator(bags), grid, cv=2, scoring="roc_auc").fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert search.best_params_ == {k: best.get_params()[k] for k in grid}
    table = best.method_.training_set_
    pseudo = table[table.origin == "pseudo"]
    assert pseudo.iteration.max() + 1 == best.method.resampler.iterations
    assert pseudo.kept.all() == np.isinf(best.method.f)
    proba = best.predict_proba(X[:7])
    assert proba.shape == (7, 2) and np.allclose(proba.sum(axis=1), 1)


def test_names_equal_positions_and_predict_is_the_thresholded_score():
    bags = small_bags("http")
    X, y = targets_and_labels(bags)
    est = estimator(bags, methods.make("original")).fit(X[10:], y[10:])
    by_name = est.predict_proba(bags.targets[[3, 1, 3]])
    np.testing.assert_array_equal(by_name, est.predict_proba(np.array([3, 1, 3])))
    np.testing.assert_array_equal(est.predict(X[:10]), est.predict_proba(X[:10])[:, 1] >= 0.5)
    np.testing.assert_array_equal(est.classes_, [0, 1])


# ------------------------------------------------------------------------------ bad input
def test_bad_targets_stop_with_one_line():
    bags = small_bags("flows")
    X, y = targets_and_labels(bags)
    est = estimator(bags, methods.make("original"))
    with pytest.raises(NotFittedError):
        est.predict_proba(X)
    cases = [
        (np.array([0, 60]), "X holds target position 60 but the bound bags hold 60 targets"),
        (np.array(["nope", bags.targets[0]], dtype=object), "not in the bound bags, e.g. 'nope'"),
        (X.astype(float), "integers\\) or names, got dtype float64"),
        (np.zeros((4, 2), dtype=int), "1-D target positions or names, got shape \\(4, 2\\)"),
        (np.array([1, 1, 2, 3]), "X repeats targets"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            est.fit(bad)
    with pytest.raises(ValueError, match="y disagrees with the bound bags' labels at 1 of"):
        est.fit(X, np.where(X == 0, 1 - y, y))
    with pytest.raises(ValueError, match="y has 59 labels for X's 60 targets"):
        est.fit(X, y[1:])
    with pytest.raises(ValueError, match="needs bags, extractor, method, model"):
        TargetClassifier().fit(X)
    with pytest.raises(ValueError, match="use features.make\\('flows'\\)"):
        est.set_params(extractor=features.make("dns")).fit(X)


# --------------------------------------------------------------------- scikit-learn checks
class _Checked(TargetClassifier):
    """scikit-learn yields no check for an estimator without 2-D input: claim it, to run
    those that apply and mark the others below."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags

    def __repr__(self) -> str:  # the checks' test ids: short, not the bound Bags' repr
        return "TargetClassifier(flows, original, rf)"


NUMERIC = "fits on a numeric feature matrix; X here is target positions or names"
#: the checks that do not apply to an X of targets into bound Bags, with the reason
NOT_APPLICABLE = {
    check: NUMERIC
    for check in (
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_dtype_object",
        "check_estimators_empty_data_messages",
        "check_pipeline_consistency",
        "check_estimators_nan_inf",
        "check_estimator_sparse_tag",
        "check_estimator_sparse_array",
        "check_estimator_sparse_matrix",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_classifier_data_not_an_array",
        "check_classifiers_one_label",
        "check_classifiers_classes",
        "check_classifiers_train",
        "check_supervised_y_2d",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1sample",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit_idempotent",
        "check_fit_check_is_fitted",
        "check_n_features_in",
        "check_fit2d_predict1d",
        "check_requires_y_none",
    )
}


@parametrize_with_checks(
    [
        _Checked(
            small_bags("flows"), features.make("flows"), methods.make("original"), small_forest()
        )
    ],
    expected_failed_checks=lambda est: NOT_APPLICABLE,
    xfail_strict=True,
)
def test_sklearn_checks(estimator, check):
    """The API checks (parameters, clone, repr, tags, unfitted errors) pass; every check
    that fits on numeric data is listed in NOT_APPLICABLE and must fail (strict)."""
    check(estimator)
