"""The contract every detector keeps, and the preprocessing they share.

A :class:`Model` is a scikit-learn binary classifier: ``fit(X, y, groups=None, original=None)``,
``predict_proba(X)`` (n, 2) with columns ordered as ``classes_`` (``[0, 1]`` for 0/1 labels),
``predict``, ``get_params`` / ``clone``.

Fit parameters the method layer passes (any detector may ignore them):

- ``groups`` (n,): the target of every row. Rows of one target are never split between the
  parts of an internal split (the DNN's early-stopping validation, the SVM's calibration
  folds). Default: every row its own group.
- ``original`` (n,) bool: True for a target's original vector, False for its pseudo vectors
  (Alchemy's resampled or a baseline's synthetic rows). Scalers are fitted on the original
  rows only, so augmentation never shifts the standardisation. Default: every row.

Non-finite features never reach a model: NaN and +-inf become 0 (METHOD.md §5) in
:func:`finite_features`, with a :class:`NonFiniteWarning` that counts them.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from alchemy_torch.params import Params

__all__ = [
    "Model",
    "NonFiniteWarning",
    "check_int",
    "check_real",
    "finite_features",
    "fit_scaler",
    "group_classes",
]


class NonFiniteWarning(UserWarning):
    """Non-finite feature values were replaced by 0."""


def finite_features(X: np.ndarray) -> tuple[np.ndarray, int]:
    """(X with NaN/inf set to 0, number replaced) for (n, d) float ``X``; warns when any."""
    bad = ~np.isfinite(X)
    count = int(bad.sum())
    if count:
        columns = np.flatnonzero(bad.any(axis=0))
        warnings.warn(
            f"{count} non-finite feature values (NaN/inf) in {columns.size} columns "
            f"(first: {columns[:10].tolist()}) set to 0",
            NonFiniteWarning,
            stacklevel=3,
        )
        X = np.where(bad, 0.0, X)
    return X, count


def fit_scaler(X: np.ndarray, original: np.ndarray) -> StandardScaler:
    """Standardisation of (n, d) ``X`` learned from the rows where ``original`` (n,) is True."""
    return StandardScaler().fit(X[original])


def group_classes(y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((n,) group index of every row, (G,) bool class of every group) for (n,) ``y`` in {0, 1}.

    A group is positive when any of its rows is (a target's vectors share its label).
    """
    _, group_of_row = np.unique(groups, return_inverse=True)
    return group_of_row, np.bincount(group_of_row, weights=y) > 0


def check_int(model, name: str, low: int = 1) -> None:
    """Raise ``ValueError`` unless parameter ``name`` of ``model`` is an int >= ``low``."""
    value = getattr(model, name)
    if isinstance(value, bool) or not (isinstance(value, numbers.Integral) and value >= low):
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def check_real(model, name: str, low: float, high: float = math.inf, open_low=False) -> None:
    """Raise ``ValueError`` unless parameter ``name`` lies in [low, high) ((low, high) if open)."""
    value = getattr(model, name)
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (real and (value > low if open_low else value >= low) and value < high):
        interval = f"{'(' if open_low else '['}{low}, {high})"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def _row_argument(value, n: int, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != (n,):
        raise ValueError(
            f"{name} must have one value per row of X, shape ({n},), got {array.shape}"
        )
    return array


class Model(ClassifierMixin, Params, BaseEstimator):
    """Binary detector: validation, labels, non-finite handling and fit parameters in one place.

    Parameters are validated in ``__init__`` and again in ``fit`` (``set_params`` bypasses
    ``__init__``). Subclasses implement ``_check_params()``, ``_fit(X, y, groups, original)``
    on finite float64 ``X`` (n, d), ``y`` (n,) int64 in {0, 1}, ``groups`` (n,) and
    ``original`` (n,) bool, and ``_positive_probability(X)`` -> (n,) P(``classes_[1]``).
    """

    def fit(self, X, y, groups=None, original=None):
        """Fit on (n, d) ``X`` and (n,) labels of two classes; see the module for the rest."""
        self._check_params()
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=np.float64)
        check_classification_targets(y)
        classes, y01 = np.unique(y, return_inverse=True)
        if classes.size > 2:
            raise ValueError(
                f"Only binary classification is supported; y holds {classes.size} classes"
            )
        if classes.size < 2:
            raise ValueError(f"y holds 1 class ({classes[0]!r}); a detector needs two")
        n = X.shape[0]
        groups = np.arange(n) if groups is None else _row_argument(groups, n, "groups")
        if original is None:
            original = np.ones(n, dtype=bool)
        else:
            original = _row_argument(original, n, "original")
            if original.dtype != bool:
                raise ValueError(
                    f"original must be a bool mask (True = original vector), got {original.dtype}"
                )
            if not original.any():
                raise ValueError("original marks no row; the scaler needs original vectors")
        X, self.n_nonfinite_ = finite_features(X)
        self.classes_ = classes
        self._fit(X, y01.astype(np.int64), groups, original)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64)
        positive = self._positive_probability(finite_features(X)[0])
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X) -> np.ndarray:
        """(n,) the more probable class of every row (``classes_[0]`` on a tie)."""
        positive = self.predict_proba(X)[:, 1] > 0.5
        return self.classes_[positive.astype(np.int64)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    def _check_params(self) -> None:
        """Raise ``ValueError`` naming the parameter to change; called by __init__ and fit."""
        raise NotImplementedError

    def _fit(self, X, y, groups, original) -> None:
        raise NotImplementedError

    def _positive_probability(self, X) -> np.ndarray:
        raise NotImplementedError
