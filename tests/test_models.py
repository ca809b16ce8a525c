"""Detectors: scikit-learn contract, seeds, fit parameters (groups, original), preprocessing."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn import config_context
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_validate
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import check_estimator

from alchemy_torch import models
from alchemy_torch.models import NonFiniteWarning, finite_features
from alchemy_torch.models.dnn import SPLIT_STREAM, validation_split
from alchemy_torch.models.svm import calibration_folds
from alchemy_torch.resample import derive_seed

#: Small and quick: every model learns the problems below in well under a second.
FAST = {
    "rf": dict(n_estimators=20, n_jobs=1),
    "svm": dict(),
    "dnn": dict(max_epochs=15, device="cpu"),
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
    assert set(models.NAMES) == {"rf", "svm", "dnn", "setnet"}
    with pytest.raises(
        ValueError, match="unknown model 'knn'; choose one of: dnn, rf, setnet, svm"
    ):
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
    [("rf", dict(n_estimators=0)), ("svm", dict(approximation="rff")), ("dnn", dict(lr=0))],
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


@pytest.mark.parametrize("name", ["svm", "dnn"])
def test_scaler_learns_from_original_rows_only(name, problem):
    X, y, groups, original = problem[0]
    X = np.where(original[:, None], X, X + 10.0)  # pseudo rows far away
    model = models.make(name, **FAST[name]).fit(X, y, groups=groups, original=original)
    default = models.make(name, **FAST[name]).fit(X, y, groups=groups)
    if name == "dnn":  # the DNN standardises sign(x) log(1 + |x|)
        X = np.sign(X) * np.log1p(np.abs(X))
    np.testing.assert_allclose(model.scaler_.mean_, X[original].mean(axis=0))
    np.testing.assert_allclose(model.scaler_.scale_, X[original].std(axis=0))
    np.testing.assert_allclose(default.scaler_.mean_, X.mean(axis=0))


@pytest.mark.parametrize("name", ["rf", "dnn"])
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
    X, y, groups, original = problem[0]
    model = models.make("svm").fit(X, y, groups=groups, original=original)
    Z = model.scaler_.transform(X)  # standardised by the originals: variance not 1 over all rows
    assert math.isclose(model.gamma_, SVC(gamma="scale").fit(Z, y)._gamma)


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


# ---------------------------------------------------------------- DNN


def _reference_split_counts(y, groups, mask):
    """Per class: (groups, validation groups) counted one group at a time with pandas."""
    table = pd.DataFrame({"y": y, "group": groups, "validation": mask})
    per_group = table.groupby("group").agg(y=("y", "max"), validation=("validation", "max"))
    return per_group.groupby("y")["validation"].agg(["size", "sum"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_split_never_splits_a_group(seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 300, 5000)
    y = (groups % 7 == 0).astype(np.int64)  # a group's rows share its label
    mask = validation_split(y, groups, 0.1, seed)
    per_group = pd.Series(mask).groupby(groups).nunique()
    assert per_group.max() == 1
    counts = _reference_split_counts(y, groups, mask)
    expected = (counts["size"] * 0.1).round().clip(lower=1)
    np.testing.assert_array_equal(counts["sum"], expected)


def test_validation_split_is_seeded_and_keeps_lone_groups_for_training():
    groups = np.repeat(np.arange(40), 3)
    y = (groups < 20).astype(np.int64)
    first = validation_split(y, groups, 0.25, seed=5)
    assert np.array_equal(first, validation_split(y, groups, 0.25, seed=5))
    assert not np.array_equal(first, validation_split(y, groups, 0.25, seed=6))
    assert not validation_split(y, groups, 0.0, seed=5).any()
    lone = np.array([0, 0, 1, 2, 2])  # one positive group, two negatives
    mask = validation_split(np.array([1, 1, 0, 0, 0]), lone, 0.5, seed=0)
    assert not mask[:2].any() and mask[2:].sum() in (1, 2)


def test_dnn_restores_the_best_validation_weights():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(200), 3)
    X = rng.normal(size=(groups.size, 8))
    y = np.repeat(np.arange(200) % 2, 3)  # labels unrelated to X: validation loss rises
    model = models.make("dnn", max_epochs=60, patience=3, device="cpu").fit(X, y, groups=groups)
    assert model.n_epochs_ < 60
    mask = validation_split(y, groups, 0.1, derive_seed(0, SPLIT_STREAM))
    x = model._inputs(X[mask])  # log-scaled and standardised
    with torch.inference_mode():
        loss = F.binary_cross_entropy_with_logits(
            model.module_(x), torch.as_tensor(y[mask]).float()
        )
    assert math.isclose(float(loss), model.best_val_loss_, rel_tol=1e-5)


def test_dnn_without_validation_trains_every_epoch(problem):
    X, y, groups, _ = problem[0]
    model = models.make("dnn", max_epochs=4, validation_fraction=0.0, device="cpu")
    model.fit(X, y, groups=groups)
    assert model.n_epochs_ == 4 and math.isnan(model.best_val_loss_)
    pair = np.array([0, 0, 1, 1])
    with pytest.warns(UserWarning, match="no validation split possible"):
        models.make("dnn", max_epochs=2, device="cpu").fit(X[:4], y[[0, 0, 5, 5]], groups=pair)


@pytest.mark.filterwarnings("ignore:.*LeafSpec:FutureWarning")  # verbose lets it through
def test_dnn_is_quiet_and_writes_nothing(problem, tmp_path, monkeypatch, capfd, caplog):
    X, y, groups, _ = problem[0]
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models.make("dnn", max_epochs=2, device="cpu").fit(X, y, groups=groups)
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr() == ("", "") and caplog.text == ""
    models.make("dnn", max_epochs=2, device="cpu", verbose=True).fit(X, y, groups=groups)
    assert "Epoch 1" in "".join(capfd.readouterr())  # progress bar
    assert "Total params" in caplog.text  # model summary
    assert list(tmp_path.iterdir()) == []


def test_dnn_trains_on_the_chosen_device(device, problem):
    (X, y, groups, _), (X_test, y_test, _, _) = problem
    model = models.make("dnn", max_epochs=15, device=device.type).fit(X, y, groups=groups)
    assert model.device_.type == device.type
    assert next(model.module_.parameters()).device.type == device.type
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) > 0.9


def test_dnn_auto_device():
    X, y, _, _ = targets_problem(n_targets=10)
    model = models.make("dnn", max_epochs=1).fit(X, y)
    assert model.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            models.make("dnn", device="cuda").fit(X, y)


@pytest.mark.gpu
def test_dnn_same_seed_on_cuda(problem):
    (X, y, groups, _), (X_test, _, _, _) = problem
    first, second = (
        models.make("dnn", max_epochs=5, device="cuda").fit(X, y, groups=groups) for _ in range(2)
    )
    np.testing.assert_allclose(
        first.predict_proba(X_test), second.predict_proba(X_test), rtol=0, atol=1e-6
    )


def test_dnn_seed_changes_predictions_and_leaves_global_rng_alone(problem):
    (X, y, groups, _), (X_test, _, _, _) = problem
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    probas = [
        models.make("dnn", random_state=seed, **FAST["dnn"]).fit(X, y, groups=groups)
        for seed in (0, 1)
    ]
    assert torch.equal(torch.rand(3), expected_next)
    assert not np.array_equal(probas[0].predict_proba(X_test), probas[1].predict_proba(X_test))


@pytest.mark.slow
def test_check_estimator_dnn():
    check_estimator(
        models.make("dnn", max_epochs=5), expected_failed_checks=HOUSE_RULE, on_skip=None
    )
