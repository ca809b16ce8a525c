"""The slides' baselines (METHOD.md §4): Original, Noise (uniform or Gaussian copies), SMOTE."""

from __future__ import annotations

import warnings

import numpy as np

from alchemy_torch.methods.base import Method, Rows
from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.resample import derive_seed

__all__ = ["Original", "Noise", "Smote"]

#: sub-stream of the method seed for the baselines' random numbers
_NOISE_STREAM, _SMOTE_STREAM = 11, 12


class Original(Method):
    """No extra data: the model is trained and scored on the original vectors."""

    def __init__(self):
        pass


class Noise(Method):
    """``copies`` noisy copies of every training vector of ``classes`` (METHOD.md §4).

    A copy is x + u * sigma, sigma the per-feature std of the original training vectors and u
    drawn per value from U(-scale, scale) (``distribution="uniform"``, the slides' Noise) or
    N(0, scale^2) (``"gaussian"``). Originals are kept; test vectors are untouched.
    """

    DISTRIBUTIONS = ("uniform", "gaussian")

    def __init__(
        self,
        copies: int = 20,
        scale: float = 0.1,
        distribution: str = "uniform",
        classes: tuple = (0, 1),
    ):
        if distribution not in self.DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {self.DISTRIBUTIONS}, got {distribution!r}"
            )
        if copies < 0 or scale < 0:
            raise ValueError(f"copies and scale must be >= 0, got {copies}, {scale}")
        self.copies, self.scale, self.distribution, self.classes = (
            copies,
            scale,
            distribution,
            classes,
        )

    def augment(self, vectors: Vectors, model, seed: int) -> list[Rows]:
        source = np.flatnonzero(np.isin(vectors.labels, list(self.classes)))
        owner = np.repeat(source, int(self.copies))
        sigma = vectors.original.std(axis=0)
        rng = np.random.default_rng(derive_seed(seed, _NOISE_STREAM))
        shape = (len(owner), vectors.original.shape[1])
        if self.distribution == "uniform":
            u = rng.uniform(-self.scale, self.scale, shape)
        else:
            u = rng.normal(0.0, self.scale, shape)
        X = vectors.original[owner] + u * sigma
        return [Rows("synthetic", X, owner, vectors.labels[owner])]


class Smote(Method):
    """imbalanced-learn's SMOTE: malicious vectors up to ``sampling_strategy`` x the benign count.

    Interpolates between standardised original vectors (``standardise``; the scaler is fitted
    on the training originals) with ``k_neighbors`` neighbours. When a training set has fewer
    than k+1 malicious targets, k drops to (malicious - 1) with a warning; with fewer than 2,
    nothing is synthesised (warned) and the model trains on the originals.
    """

    def __init__(self, k_neighbors: int = 5, sampling_strategy: float = 1.0, standardise=True):
        if k_neighbors < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {k_neighbors}")
        self.k_neighbors, self.sampling_strategy, self.standardise = (
            k_neighbors,
            sampling_strategy,
            standardise,
        )

    def augment(self, vectors: Vectors, model, seed: int) -> list[Rows]:
        from imblearn.over_sampling import SMOTE

        X, y = vectors.original, vectors.labels
        n_malicious = int((y == 1).sum())
        k = min(int(self.k_neighbors), n_malicious - 1)
        if k < 1:
            warnings.warn(
                f"SMOTE: {n_malicious} malicious training target(s), need >= 2: "
                "nothing synthesised, training on the originals",
                stacklevel=2,
            )
            return []
        if k < self.k_neighbors:
            warnings.warn(
                f"SMOTE: {n_malicious} malicious training targets, k_neighbors lowered "
                f"from {self.k_neighbors} to {k}",
                stacklevel=2,
            )
        mean, std = (X.mean(axis=0), X.std(axis=0)) if self.standardise else (0.0, 1.0)
        std = np.where(std > 0, std, 1.0)
        smote = SMOTE(
            sampling_strategy=self.sampling_strategy,
            k_neighbors=k,
            random_state=derive_seed(seed, _SMOTE_STREAM) % 2**32,
        )
        X_res, y_res = smote.fit_resample((X - mean) / std, y)
        synthetic = X_res[len(X) :] * std + mean  # imblearn appends the new rows
        n = len(synthetic)
        return [Rows("synthetic", synthetic, np.full(n, -1), y_res[len(X) :])]
