"""Random forest on raw (unscaled) features (METHOD.md §5)."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from alchemy_torch.models.base import Model, check_int

__all__ = ["RandomForest"]


class RandomForest(Model):
    """``RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)`` (METHOD.md §5).

    Trees need no scaling and no validation split: ``groups`` and ``original`` are accepted and
    ignored. Fitted: ``estimator_`` (the scikit-learn forest), ``classes_``.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_features="sqrt",
        class_weight=None,
        n_jobs: int | None = -1,
        random_state=0,
    ):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.random_state = random_state
        self._check_params()

    def _check_params(self) -> None:
        check_int(self, "n_estimators")

    def _fit(self, X, y, groups, original) -> None:
        self.estimator_ = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(X, y)

    def _positive_probability(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(X)[:, 1]
