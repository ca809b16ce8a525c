"""The slides' baselines (METHOD.md §4): Original, Noise (uniform or Gaussian copies), SMOTE;
and any imbalanced-learn over-sampler (Oversample: ADASYN, BorderlineSMOTE, ...)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone

from alchemy_torch.methods.base import Method, Rows
from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.resample import derive_seed

__all__ = ["Original", "Noise", "Oversample", "Smote"]

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


class Oversample(Method):
    """Any imbalanced-learn over-sampler adding synthetic malicious vectors. ``sampler``: an
    instance (``ADASYN(n_neighbors=3)``), a class name of ``imblearn.over_sampling``
    (``"BorderlineSMOTE"``) or None for ``SMOTE()``.

    The sampler sees standardised original vectors (``standardise``; the scaler is fitted on
    the training originals) and its synthetic rows are mapped back. Its ``random_state`` comes
    from the fold's seed. Small folds: a neighbour count (``k_neighbors``, ``n_neighbors``)
    above (malicious - 1) is lowered to it with a warning; with fewer than 2 malicious
    training targets, or when the sampler finds nothing to generate from (ADASYN without a
    benign neighbour, SVMSMOTE with only noisy support vectors), nothing is synthesised
    (warned) and the model trains on the originals.
    """

    #: the samplers' neighbour counts among the malicious vectors
    NEIGHBOURS = ("k_neighbors", "n_neighbors")

    def __init__(self, sampler=None, standardise: bool = True):
        _over_sampler(sampler)  # one line on anything that is not an over-sampler
        self.sampler, self.standardise = sampler, standardise

    def over_sampler(self):
        """A fresh (unfitted) copy of the imbalanced-learn sampler this method runs."""
        return _over_sampler(self.sampler)

    def augment(self, vectors: Vectors, model, seed: int) -> list[Rows]:
        X, y = vectors.original, vectors.labels
        sampler = self.over_sampler()
        name, n_malicious = type(sampler).__name__, int((y == 1).sum())
        params = sampler.get_params()
        for key in (k for k in self.NEIGHBOURS if isinstance(params.get(k), int)):
            if n_malicious < 2:
                return _nothing(f"{name}: {n_malicious} malicious training target(s), need >= 2")
            if params[key] > n_malicious - 1:
                warnings.warn(
                    f"{name}: {n_malicious} malicious training targets, {key} lowered "
                    f"from {params[key]} to {n_malicious - 1}",
                    stacklevel=2,
                )
                sampler.set_params(**{key: n_malicious - 1})
        mean, std = (X.mean(axis=0), X.std(axis=0)) if self.standardise else (0.0, 1.0)
        std = np.where(std > 0, std, 1.0)
        sampler.set_params(random_state=derive_seed(seed, _SMOTE_STREAM) % 2**32)
        try:
            X_res, y_res = sampler.fit_resample((X - mean) / std, y)
        except (RuntimeError, ValueError) as error:
            if isinstance(error, TypeError):  # scikit-learn's InvalidParameterError: a bad option
                raise
            return _nothing(f"{name} generates nothing here ({error})")
        synthetic = X_res[len(X) :] * std + mean  # imblearn appends the new rows
        n = len(synthetic)
        return [Rows("synthetic", synthetic, np.full(n, -1), y_res[len(X) :])]


def _over_sampler(sampler):
    """A fresh imbalanced-learn over-sampler from an instance, a class name or None."""
    from imblearn import over_sampling
    from imblearn.over_sampling.base import BaseOverSampler

    if sampler is None or isinstance(sampler, str):
        built = getattr(over_sampling, sampler or "SMOTE", None)
        sampler = built() if isinstance(built, type) else sampler
    if not isinstance(sampler, BaseOverSampler):
        raise ValueError(
            "method.sampler must be an imbalanced-learn over-sampler (e.g. "
            f"imblearn.over_sampling.ADASYN or 'ADASYN'), got {sampler!r}"
        )
    return clone(sampler)


def _nothing(reason: str) -> list[Rows]:
    warnings.warn(f"{reason}: nothing synthesised, training on the originals", stacklevel=3)
    return []


class Smote(Oversample):
    """The slides' SMOTE: :class:`Oversample` with imbalanced-learn's SMOTE, malicious vectors
    up to ``sampling_strategy`` x the benign count, ``k_neighbors`` neighbours."""

    def __init__(self, k_neighbors: int = 5, sampling_strategy: float = 1.0, standardise=True):
        if k_neighbors < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {k_neighbors}")
        self.k_neighbors, self.sampling_strategy, self.standardise = (
            k_neighbors,
            sampling_strategy,
            standardise,
        )

    def over_sampler(self):
        from imblearn.over_sampling import SMOTE

        return SMOTE(sampling_strategy=self.sampling_strategy, k_neighbors=self.k_neighbors)
