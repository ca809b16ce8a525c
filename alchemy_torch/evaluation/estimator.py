"""A scikit-learn classifier over targets, so scikit-learn's model selection tunes Alchemy.

X is a 1-D array of target positions into the bound :class:`Bags` (or the targets' names); y
their labels (or None: the bags' own). Everything fitted (the extractor's corpus context, the
method, the model) sees X's targets only, and a target's draws depend on its records and the
seed alone (:meth:`Vectors.compute` with ``index``), as in :func:`cross_validate`::

    est = TargetClassifier(bags, features.make("flows"), methods.make("alchemy4", kind="flows"),
                           models.make("rf"))
    targets, labels = np.arange(len(bags)), bags.labels.numpy()
    grid = {"method__f": [3, 5], "method__resampler__iterations": [5, 20]}
    GridSearchCV(est, grid, scoring="roc_auc", cv=3).fit(targets, labels)
    cross_val_score(est, targets, labels, groups=capture, cv=StratifiedGroupKFold(5),
                    scoring="roc_auc")
    cross_val_score(GridSearchCV(est, grid, scoring="roc_auc", cv=3), targets, labels,
                    cv=5, scoring="roc_auc")                               # nested CV
"""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from alchemy_torch.bags import Bags
from alchemy_torch.evaluation.protocol import _shared_vectors, fit_fold, repeat_draw_seed
from alchemy_torch.methods.base import Method
from alchemy_torch.methods.vectors import Vectors

__all__ = ["TargetClassifier"]

_CACHED = 8  # vector sets an estimator and its clones keep (the most recent ones)


class TargetClassifier(ClassifierMixin, BaseEstimator):
    """``method`` with ``model`` on ``extractor``'s vectors of the targets X of ``bags``.

    Parameters reach the objects' own: ``method__f``, ``method__resampler__iterations``,
    ``method__resampler__option``, ``model__n_estimators``, ``extractor__bin_seconds``.
    ``bags`` is data, not configuration: clones share it (it is never copied).

    Seeds follow :func:`cross_validate`'s derivation from ``seed``: the draws of ``repeat``
    (:func:`repeat_draw_seed`), and the method and model of (repeat, fold)
    (:func:`fit_fold`). ``splits``: the (train, test) target positions also given as ``cv=``
    (e.g. :func:`repeat_splits`); a fit on exactly split k's training targets takes fold k's
    seeds, so ``cross_val_score(est, targets, labels, cv=splits, scoring="roc_auc")`` equals
    cross_validate's per-fold ROC-AUC. Any other fit (a search's inner folds, a fit without
    ``splits``) takes fold ``len(splits)``'s seeds.

    ``cache``: for an extractor without corpus context (flows, http), every target's vectors
    are computed once per (extractor, resampler, seed) and shared by the estimator's clones,
    as :func:`cross_validate` shares them across folds: a search over the method's or the
    model's parameters computes them once. ``cache=False`` computes only the targets a fit or
    a prediction needs (less memory, more time); the results are the same.

    After fit: ``method_`` (the fitted method), ``extractor_`` (fitted on X's targets),
    ``fold_`` (the fold whose seeds it took), ``classes_`` ([0, 1]).
    """

    def __init__(
        self,
        bags: Bags | None = None,
        extractor=None,
        method: Method | None = None,
        model=None,
        seed: int = 0,
        repeat: int = 0,
        splits=None,
        cache: bool = True,
    ):
        self.bags, self.extractor, self.method, self.model = bags, extractor, method, model
        self.seed, self.repeat, self.splits, self.cache = seed, repeat, splits, cache
        self._cached = {}  # vector sets by key: (bags, vectors), shared with clones

    def __sklearn_clone__(self) -> "TargetClassifier":
        """Configuration cloned; the bound Bags and the vector cache shared, never copied."""
        params = self.get_params(deep=False)
        bags = params.pop("bags")
        twin = type(self)(bags=bags, **{k: clone(v, safe=False) for k, v in params.items()})
        twin._cached = self._cached
        return twin

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # X: target positions or names, not features
        tags.input_tags.one_d_array = tags.input_tags.string = True
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X, y=None) -> "TargetClassifier":
        """Fit on the targets X, (n,) positions or names; y: (n,) their labels or None."""
        if y is not None and type_of_target(y, input_name="y") != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{type_of_target(y)}."
            )
        self._check_bound()
        index = self.positions(X)
        if len(np.unique(index)) < len(index):
            raise ValueError("X repeats targets: pass each training target once")
        labels = self.bags.labels.cpu().numpy()[index]
        if y is not None and len(y) != len(labels):
            raise ValueError(f"y has {len(y)} labels for X's {len(labels)} targets")
        if y is not None and not np.array_equal(np.asarray(y), labels):
            raise ValueError(
                f"y disagrees with the bound bags' labels at {int((np.asarray(y) != labels).sum())}"
                f" of X's {len(labels)} targets: pass y=None or bags.labels at X"
            )
        self.fold_ = self._fold_of(index)
        self.extractor_ = clone(self.extractor).fit(self.bags[index])
        vectors = self._vectors(index, self.method.resampler_for_training)
        self.method_ = fit_fold(
            self.method, self.model, vectors, self.seed, self.repeat, self.fold_
        )
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) [P(benign), P(malicious)] of the targets X (the method's ensemble score)."""
        check_is_fitted(self, "method_")
        index, inverse = np.unique(self.positions(X), return_inverse=True)
        vectors = self._vectors(index, self.method_.resampler_for_prediction)
        score = self.method_.score_vectors(vectors)[inverse]
        return np.column_stack([1.0 - score, score])

    def predict(self, X) -> np.ndarray:
        """(n,) 1 where P(malicious) >= 0.5, else 0."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def positions(self, X) -> np.ndarray:
        """(n,) int64 positions in the bound bags of X: positions, or target names."""
        self._check_bound()
        X = np.asarray(X)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"X must be 1-D target positions or names, got shape {X.shape}")
        if X.dtype.kind in "iu":
            bad = X[(X < 0) | (X >= len(self.bags))]
            if len(bad):
                raise ValueError(
                    f"X holds target position {bad[0]} but the bound bags hold {len(self.bags)} "
                    f"targets (0..{len(self.bags) - 1}): pass positions into bags or names"
                )
            return X.astype(np.int64)
        if X.dtype.kind not in "OUS":
            raise ValueError(
                f"X must hold target positions (integers) or names, got dtype {X.dtype}"
            )
        index = pd.Index(self.bags.targets).get_indexer(X.astype(str))
        if (index < 0).any():
            unknown = X[index < 0]
            raise ValueError(
                f"X names {len(unknown)} target(s) not in the bound bags, e.g. {unknown[0]!r}"
            )
        return index.astype(np.int64)

    def _check_bound(self) -> None:
        missing = [
            name for name in ("bags", "extractor", "method", "model") if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"TargetClassifier needs {', '.join(missing)}: pass them to it")
        if self.bags.kind != self.extractor.kind:
            raise ValueError(
                f"bags are {self.bags.kind!r} but the extractor is for {self.extractor.kind!r}: "
                f"use features.make({self.bags.kind!r})"
            )

    def _fold_of(self, index: np.ndarray) -> int:
        """k when ``index`` holds exactly split k's training targets, else len(splits)."""
        splits = list(self.splits or [])
        for fold, (train, _) in enumerate(splits):
            if len(train) == len(index) and np.array_equal(np.sort(train), np.sort(index)):
                return fold
        return len(splits)

    def _vectors(self, index: np.ndarray, resampler) -> Vectors:
        """The vectors of the targets ``index``: sliced from every target's (cached), or
        computed for them alone with the fitted extractor (same draws either way)."""
        draw_seed = repeat_draw_seed(self.seed, self.repeat)
        if not self.cache or self.extractor.corpus_context:
            return Vectors.compute(self.extractor_, self.bags, resampler, draw_seed, index=index)
        key = joblib.hash((self.extractor, resampler, draw_seed))
        bags, shared = self._cached.pop(key, (None, None))
        if bags is not self.bags:
            shared = _shared_vectors(self.extractor, self.bags, resampler, draw_seed)
        self._cached[key] = (self.bags, shared)  # most recent last
        while len(self._cached) > _CACHED:
            self._cached.pop(next(iter(self._cached)))
        return shared.vectors.take(index)
