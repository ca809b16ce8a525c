"""Alchemy's four evaluation patterns (METHOD.md §3.7).

=========  =====================  =======================  ============================
pattern    resample in training   resample in prediction   target selection, filtering
=========  =====================  =======================  ============================
1          yes
2                                 yes
3          yes                    yes
4          yes                    yes                      yes
=========  =====================  =======================  ============================

Pattern 4 (METHOD.md §3.3-3.4): an inner stratified CV over the training targets' originals
gives every target an out-of-fold score; only targets whose score lies in ``p_range`` are
regenerated. Each of their pseudo vectors is scored by the inner fold model that did not see
the target; its distance to the original's score is pooled over all pseudo vectors (or per
class) and vectors farther than mean + ``f`` * std are dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from alchemy_torch.methods.base import Method, Rows, fit_model, p_malicious
from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.resample import Resampler, derive_seed

__all__ = ["Alchemy", "PATTERNS"]

#: pattern -> (resample in training, resample in prediction, select and filter)
PATTERNS = {1: (True, False, False), 2: (False, True, False), 3: (True, True, False)}
PATTERNS[4] = (True, True, True)
SCORES = ("p_true", "p_malicious")
POOLING = ("all", "per_class")
_INNER_STREAM = 21  # sub-stream of the method seed for the inner folds


class Alchemy(Method):
    """Alchemy pattern ``pattern`` (1-4) with ``resampler`` (default option 1, K = 20).

    Pattern 4's options: ``p_range`` [P_lower, P_upper] of the selection score;
    ``f`` the filtering threshold in standard deviations; ``selection_score`` "p_true" (out-of-fold
    probability of the true class, METHOD's reading) or "p_malicious"; ``pooling`` of the
    distances "all" (METHOD's reading) or "per_class"; ``augment_classes`` the classes whose
    targets may be regenerated; ``inner_folds`` of the selection CV. ``include_original``:
    the prediction ensemble averages the original's score with its K pseudo scores.

    After fit (pattern 4): ``selection_`` (one row per training target: target, label,
    score, inner fold, selected) and ``threshold_`` (per pooled population); the training
    set's ``distance`` column holds every pseudo vector's distance.
    """

    def __init__(
        self,
        pattern: int = 4,
        resampler: Resampler | None = None,
        p_range: tuple = (0.0, 0.98),
        f: float = 5.0,
        selection_score: str = "p_true",
        pooling: str = "all",
        augment_classes: tuple = (0, 1),
        inner_folds: int = 5,
        include_original: bool = True,
    ):
        if pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {sorted(PATTERNS)}, got {pattern!r}")
        if selection_score not in SCORES:
            raise ValueError(f"selection_score must be one of {SCORES}, got {selection_score!r}")
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got {pooling!r}")
        low, high = p_range
        if not 0.0 <= low <= 1.0 or not 0.0 <= high <= 1.0:
            raise ValueError(f"p_range must lie in [0, 1], got {p_range}")
        if not f >= 0:
            raise ValueError(f"f must be >= 0 (inf keeps every pseudo vector), got {f}")
        if inner_folds < 2:
            raise ValueError(f"inner_folds must be >= 2, got {inner_folds}")
        self.pattern, self.resampler, self.p_range, self.f = pattern, resampler, p_range, f
        self.selection_score, self.pooling = selection_score, pooling
        self.augment_classes = augment_classes
        self.inner_folds, self.include_original = inner_folds, include_original

    @property
    def resamples_in_training(self) -> bool:
        return PATTERNS[self.pattern][0]

    @property
    def resamples_in_prediction(self) -> bool:
        return PATTERNS[self.pattern][1]

    @property
    def selects(self) -> bool:
        return PATTERNS[self.pattern][2]

    def resampler_or_default(self) -> Resampler:
        return self.resampler if self.resampler is not None else Resampler(option=1)

    def augment(self, vectors: Vectors, model, seed: int) -> list[Rows]:
        if not self.resamples_in_training:
            return []
        if not vectors.has_pseudo:
            raise ValueError(f"Alchemy pattern {self.pattern} trains on pseudo vectors: none drawn")
        rows = np.flatnonzero(np.isin(vectors.labels[vectors.owner], list(self.augment_classes)))
        kept = distance = None
        if self.selects:
            selected, fold_of, fold_models, oof = self._select(vectors, model, seed)
            rows = rows[selected[vectors.owner[rows]]]
            distance = self._distances(vectors, rows, fold_of, fold_models, oof)
            kept = self._filter(distance, vectors.labels[vectors.owner[rows]])
        owner = vectors.owner[rows]
        return [
            Rows(
                "pseudo",
                vectors.pseudo[rows],
                owner,
                vectors.labels[owner],
                iteration=vectors.iteration[rows],
                kept=kept,
                distance=distance,
            )
        ]

    # -- pattern 4 ------------------------------------------------------------------------
    def _select(self, vectors: Vectors, model, seed: int):
        """Inner CV on the originals: (B,) selected, (B,) inner fold, fold models, (B,) OOF
        P(malicious)."""
        X, y = vectors.original, vectors.labels
        smallest = int(np.bincount(y, minlength=2).min())
        n_splits = min(int(self.inner_folds), smallest)
        if n_splits < 2:
            raise ValueError(
                f"Alchemy 4's target selection needs >= 2 training targets of each class, "
                f"got {smallest}: use pattern 3 or add data"
            )
        inner = StratifiedKFold(
            n_splits, shuffle=True, random_state=derive_seed(seed, _INNER_STREAM) % 2**32
        )
        fold_of, oof, fold_models = np.empty(len(y), np.int64), np.empty(len(y)), []
        for k, (train, held_out) in enumerate(inner.split(X, y)):
            fitted = fit_model(clone(model), X[train], y[train], groups=train)
            oof[held_out], fold_of[held_out] = p_malicious(fitted, X[held_out]), k
            fold_models.append(fitted)
        score = oof if self.selection_score == "p_malicious" else np.where(y == 1, oof, 1.0 - oof)
        low, high = self.p_range
        selected = (score >= low) & (score <= high) & np.isin(y, list(self.augment_classes))
        self.selection_ = pd.DataFrame(
            {
                "target": vectors.targets,
                "label": y,
                "score": score,
                "inner_fold": fold_of,
                "selected": selected,
            }
        )
        return selected, fold_of, fold_models, oof

    @staticmethod
    def _distances(vectors: Vectors, rows, fold_of, fold_models, oof) -> np.ndarray:
        """|s(pseudo) - s(original)| under the inner model that did not see the target."""
        distance = np.empty(len(rows))
        owner_fold = fold_of[vectors.owner[rows]]
        for k, fitted in enumerate(fold_models):
            mine = np.flatnonzero(owner_fold == k)
            scores = p_malicious(fitted, vectors.pseudo[rows[mine]])
            distance[mine] = np.abs(scores - oof[vectors.owner[rows[mine]]])
        return distance

    def _filter(self, distance: np.ndarray, label: np.ndarray) -> np.ndarray:
        """Keep distances <= mean + f * std (population std), pooled or per class."""
        populations = [np.ones(len(distance), bool)]
        if self.pooling == "per_class":
            populations = [label == c for c in (0, 1)]
        kept = np.ones(len(distance), dtype=bool)
        self.threshold_ = {}
        for members in populations:
            if not members.any():
                continue
            d = distance[members]
            threshold = d.mean() + self.f * d.std() if np.isfinite(self.f) else np.inf
            kept[members] = d <= threshold
            key = "all" if self.pooling == "all" else int(label[members][0])
            self.threshold_[key] = float(threshold)
        return kept
