"""RBF support vector machine on standardised features (METHOD.md §5), exact or approximated.

Exact: ``SVC(kernel="rbf", C, gamma)`` with Platt scaling fitted on out-of-fold decision
values, which is what ``SVC(probability=True)`` does (deprecated in scikit-learn 1.9 for this
very ``CalibratedClassifierCV(SVC(), ensemble=False)``); the folds here split by target, so a
target's pseudo vectors never score each other.

``SVC`` costs O(n^2) to O(n^3) in the training rows, and Alchemy multiplies the rows by K+1
(21 at K = 20). Past ``max_exact_rows`` rows (or always with ``approximation="nystroem"``) the
RBF kernel is approximated by a :class:`~sklearn.kernel_approximation.Nystroem` feature map of
``n_components`` landmarks (same ``gamma``) followed by a logistic regression (same ``C``) that
gives probabilities directly: linear in n.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from alchemy_torch.models.base import Model, check_int, check_real, fit_scaler, group_classes

__all__ = ["SVM", "calibration_folds"]

#: Folds of the out-of-fold SVC scores Platt scaling is fitted on (as libsvm).
CALIBRATION_FOLDS = 5


class SVM(Model):
    """RBF SVM with probabilities (METHOD.md §5: C=1, gamma="scale") on standardised features.

    ``approximation``: ``"auto"`` (exact up to ``max_exact_rows`` training rows, Nystroem
    above), ``"exact"`` or ``"nystroem"``. ``gamma="scale"`` is ``1 / (d * Var(Z))`` over the
    standardised training matrix Z, as SVC computes it; the Nystroem map uses the same value.
    The scaler is fitted on the ``original`` rows only; ``groups`` make the calibration folds.

    Fitted: ``scaler_``, ``estimator_`` (CalibratedClassifierCV over SVC, or
    Pipeline(Nystroem, LogisticRegression)), ``kernel_approximation_`` (bool), ``gamma_``,
    ``classes_``.
    """

    APPROXIMATIONS = ("auto", "exact", "nystroem")

    def __init__(
        self,
        C: float = 1.0,
        gamma="scale",
        approximation: str = "auto",
        max_exact_rows: int = 20_000,
        n_components: int = 1000,
        random_state=0,
    ):
        self.C = C
        self.gamma = gamma
        self.approximation = approximation
        self.max_exact_rows = max_exact_rows
        self.n_components = n_components
        self.random_state = random_state
        self._check_params()

    def _check_params(self) -> None:
        if self.approximation not in self.APPROXIMATIONS:
            raise ValueError(
                f"approximation must be one of {self.APPROXIMATIONS}, got {self.approximation!r}"
            )
        check_real(self, "C", 0.0, open_low=True)
        if self.gamma != "scale":
            check_real(self, "gamma", 0.0, open_low=True)
        check_int(self, "max_exact_rows")
        check_int(self, "n_components")

    def _fit(self, X, y, groups, original) -> None:
        self.scaler_ = fit_scaler(X, original)
        Z = self.scaler_.transform(X)
        self.gamma_ = _scale_gamma(Z) if self.gamma == "scale" else float(self.gamma)
        self.kernel_approximation_ = self.approximation == "nystroem" or (
            self.approximation == "auto" and X.shape[0] > self.max_exact_rows
        )
        if self.kernel_approximation_:
            self.estimator_ = make_pipeline(
                Nystroem(
                    gamma=self.gamma_,
                    n_components=min(self.n_components, X.shape[0]),
                    random_state=self.random_state,
                ),
                LogisticRegression(C=self.C, max_iter=1000),
            )
        else:
            self.estimator_ = CalibratedClassifierCV(
                SVC(C=self.C, gamma=self.gamma_),
                method="sigmoid",
                cv=calibration_folds(y, groups, self.random_state),
                ensemble=False,
            )
        self.estimator_.fit(Z, y)

    def _positive_probability(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(self.scaler_.transform(X))[:, 1]


def calibration_folds(y: np.ndarray, groups: np.ndarray, random_state) -> list:
    """Up to CALIBRATION_FOLDS stratified (train, test) row splits of (n,) ``y`` by ``groups``."""
    positive = group_classes(y, groups)[1]
    n_folds = min(CALIBRATION_FOLDS, int(positive.sum()), int((~positive).sum()))
    if n_folds < 2:
        raise ValueError(
            "SVM probabilities need at least 2 groups (targets) per class for Platt scaling; "
            f"got {int((~positive).sum())} negative and {int(positive.sum())} positive groups"
        )
    folds = StratifiedGroupKFold(n_folds, shuffle=True, random_state=random_state)
    return list(folds.split(y, y, groups))


def _scale_gamma(Z: np.ndarray) -> float:
    """SVC's ``gamma="scale"``: 1 / (d * variance of all entries of (n, d) ``Z``), 1 if constant."""
    variance = Z.var()
    return 1.0 / (Z.shape[1] * variance) if variance > 0 else 1.0
