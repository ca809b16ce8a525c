"""Detectors: scikit-learn contract, seeds, fit parameters (groups, original), preprocessing."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.utils.estimator_checks import check_estimator

from alchemy_torch import models
from alchemy_torch.models import NonFiniteWarning, finite_features
from alchemy_torch.models.svm import calibration_folds

#: Small and quick: every model learns the problems below in well under a second.
FAST = {
    "rf": dict(n_estimators=20, n_jobs=1),
    "svm": dict(),
}
#: House rule: constructor arguments are validated in __init__ (scikit-learn wants it in fit).
HOUSE_RULE = {"check_do_not_raise_errors_in_init_or_set_params": "validated in __init__"}


def targets_problem(n_targets=60, per_target=5, d=6, seed=0, shift=3.0):
    """Rows of targets: (X (n, d), y (n,), groups (n,), original (n,) bool).

    Every target has one original row and ``per_target - 1`` pseudo rows around its centre;
    feature 0 separates the classes by ``shift``.
    """
    rng = np.random.default_rng(seed)
    label = np.arange(n_targets) % 2
    centre = rng.normal(size=(n_targets, d))
    centre[:, 0] += shift * label
    groups = np.repeat(np.arange(n_targets), per_target)
    X = centre[groups] + 0.3 * rng.normal(size=(groups.size, d))
    original = np.arange(groups.size) % per_target == 0
    return X, label[groups], groups, original


@pytest.fixture(scope="module")
def problem():
    return targets_problem(seed=0), targets_problem(seed=1)


def test_make_lists_the_names_on_an_unknown_one():
    assert set(models.NAMES) == {"rf", "svm"}
    with pytest.raises(ValueError, match="unknown model 'knn'; choose one of: rf, svm"):
        models.make("knn")


@pytest.mark.parametrize("name", sorted(FAST))
def test_separable_problem_probabilities(name, problem):
    (X, y, groups, original), (X_test, y_test, _, _) = problem
    model = models.make(name, **FAST[name]).fit(X, y, groups=groups, original=original)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.classes_.tolist() == [0, 1]
    assert roc_auc_score(y_test, proba[:, 1]) > 0.9
    assert set(model.predict(X_test)) <= {0, 1}


@pytest.mark.parametrize("name", sorted(FAST))
def test_clone_and_get_params_round_trip(name):
    model = models.make(name, random_state=7, **FAST[name])
    params = model.get_params()
    twin = clone(model)  # checks that __init__ stores every argument verbatim
    assert twin is not model and twin.get_params() == params
    assert type(model)(**params) == model
    assert model.set_params(random_state=8).random_state == 8 and twin.random_state == 7


@pytest.mark.parametrize(
    "name, option",
    [("rf", dict(n_estimators=0)), ("svm", dict(approximation="rff"))],
)
def test_bad_options_raise_in_init_and_after_set_params(name, option, problem):
    X, y, _, _ = problem[0]
    key = next(iter(option))
    with pytest.raises(ValueError, match=key):
        models.make(name, **option)
    model = models.make(name, **FAST[name]).set_params(**option)
    with pytest.raises(ValueError, match=key):
        model.fit(X, y)


@pytest.mark.parametrize("name", sorted(FAST))
def test_fit_parameters_are_checked(name, problem):
    X, y, groups, original = problem[0]
    model = models.make(name, **FAST[name])
    with pytest.raises(ValueError, match=r"groups must have one value per row"):
        model.fit(X, y, groups=groups[1:])
    with pytest.raises(ValueError, match="original must be a bool mask"):
        model.fit(X, y, original=original.astype(int))
    with pytest.raises(ValueError, match="original marks no row"):
        model.fit(X, y, original=np.zeros_like(original))


@pytest.mark.parametrize("name", sorted(FAST))
def test_labels_must_be_two_classes(name, problem):
    X, y, _, _ = problem[0]
    model = models.make(name, **FAST[name])
    with pytest.raises(ValueError, match="y holds 1 class"):
        model.fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="Only binary classification"):
        model.fit(X, np.arange(len(y)) % 3)


def test_other_labels_keep_their_order(problem):
    X, y, _, _ = problem[0]
    named = np.array(["benign", "malicious"])[y]
    model = models.make("rf", **FAST["rf"]).fit(X, named)
    assert model.classes_.tolist() == ["benign", "malicious"]
    assert set(model.predict(X)) == {"benign", "malicious"}


def test_finite_features_replaces_and_counts():
    X = np.array([[1.0, np.nan], [np.inf, 2.0], [-np.inf, 3.0]])
    with pytest.warns(NonFiniteWarning, match="3 non-finite feature values .* in 2 columns"):
        clean, count = finite_features(X)
    assert count == 3
    np.testing.assert_array_equal(clean, [[1.0, 0.0], [0.0, 2.0], [0.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert finite_features(clean)[1] == 0


@pytest.mark.parametrize("name", sorted(FAST))
def test_non_finite_inputs_are_zero(name, problem):
    X, y, groups, original = problem[0]
    bad = X.copy()
    bad[[0, 3, 7], [1, 2, 2]] = [np.nan, np.inf, -np.inf]
    zeroed = np.where(np.isfinite(bad), bad, 0.0)
    with pytest.warns(NonFiniteWarning, match="3 non-finite"):
        model = models.make(name, **FAST[name]).fit(bad, y, groups=groups, original=original)
    assert model.n_nonfinite_ == 3
    reference = models.make(name, **FAST[name]).fit(zeroed, y, groups=groups, original=original)
    with pytest.warns(NonFiniteWarning, match="3 non-finite"):
        proba = model.predict_proba(bad)
    np.testing.assert_array_equal(proba, reference.predict_proba(zeroed))


@pytest.mark.parametrize("name", ["svm"])
def test_scaler_learns_from_original_rows_only(name, problem):
    X, y, groups, original = problem[0]
    X = np.where(original[:, None], X, X + 10.0)  # pseudo rows far away
    model = models.make(name, **FAST[name]).fit(X, y, groups=groups, original=original)
    np.testing.assert_allclose(model.scaler_.mean_, X[original].mean(axis=0))
    np.testing.assert_allclose(model.scaler_.scale_, X[original].std(axis=0))
    default = models.make(name, **FAST[name]).fit(X, y, groups=groups)
    np.testing.assert_allclose(default.scaler_.mean_, X.mean(axis=0))


@pytest.mark.parametrize("name", ["rf"])
def test_same_seed_same_predictions(name, problem):
    (X, y, groups, original), (X_test, _, _, _) = problem
    first, second = (
        models.make(name, random_state=3, **FAST[name]).fit(X, y, groups=groups, original=original)
        for _ in range(2)
    )
    np.testing.assert_array_equal(first.predict_proba(X_test), second.predict_proba(X_test))


# ---------------------------------------------------------------- SVM


def test_svm_approximates_the_kernel_above_its_threshold(problem):
    (X, y, groups, original), (X_test, y_test, _, _) = problem
    assert len(X) == 300
    for max_exact_rows, approximation, expected in [
        (299, "auto", True),
        (300, "auto", False),
        (10, "exact", False),
        (10_000, "nystroem", True),
    ]:
        model = models.make(
            "svm", max_exact_rows=max_exact_rows, approximation=approximation, n_components=100
        ).fit(X, y, groups=groups, original=original)
        assert model.kernel_approximation_ is expected
        exact = isinstance(model.estimator_, CalibratedClassifierCV)
        assert exact is not expected and (exact or isinstance(model.estimator_[0], Nystroem))
        assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.9


def test_svm_gamma_scale_matches_svc(problem):
    X, y, _, _ = problem[0]
    model = models.make("svm").fit(X, y)
    Z = model.scaler_.transform(X)
    assert math.isclose(model.gamma_, 1.0 / (Z.shape[1] * Z.var()))


def test_calibration_folds_split_by_group():
    groups = np.repeat(np.arange(30), 4)
    y = (groups % 3 == 0).astype(np.int64)
    folds = calibration_folds(y, groups, random_state=0)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(y)))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
        assert set(y[test]) == {0, 1}
    with pytest.raises(ValueError, match="at least 2 groups"):
        calibration_folds(y[:8], groups[:8], random_state=0)


# ---------------------------------------------------------------- scikit-learn


def test_fit_parameters_route_through_cross_validate(problem):
    X, y, groups, original = problem[0]
    with config_context(enable_metadata_routing=True):
        model = models.make("svm").set_fit_request(groups=True, original=True)
        scores = cross_validate(
            model,
            X,
            y,
            cv=GroupKFold(3),
            params={"groups": groups, "original": original},
            scoring="roc_auc",
        )
    assert scores["test_score"].min() > 0.8


@pytest.mark.parametrize("name", ["rf", "svm"])
def test_check_estimator(name):
    check_estimator(
        models.make(name, **FAST[name]), expected_failed_checks=HOUSE_RULE, on_skip=None
    )
