"""The method contract: a training set with provenance, and a per-target ensemble score.

A method turns the :class:`Vectors` of training targets into a training set (originals plus
the rows it adds: pseudo vectors of resampled bags, or synthetic vectors of a baseline), fits a
model on the rows it keeps, and scores a target as the mean P(malicious) over its vectors (the
original alone, or the original and its pseudo vectors when it resamples in prediction).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone

from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.params import Params
from alchemy_torch.provenance import package_versions, version_differences
from alchemy_torch.resample import Resampler

__all__ = [
    "DETECTOR_FORMAT",
    "Method",
    "Rows",
    "ORIGINS",
    "fit_model",
    "load",
    "p_malicious",
    "reads_records",
]

#: the layout of a detector file (:meth:`Method.save`); :func:`load` reads this one only
DETECTOR_FORMAT = 1

#: Where a training row came from: a target's own bag, a resampled subset of it, or a
#: baseline's synthetic vector (noise copy, SMOTE interpolation).
ORIGINS = ("original", "pseudo", "synthetic")


@dataclass
class Rows:
    """Training rows a method adds to the originals (n rows, D features).

    X: (n, D). owner: (n,) index of the training target a row derives from (-1: several, e.g.
    a SMOTE interpolation). label: (n,). iteration: (n,) resampling iteration (-1 if none).
    kept: (n,) bool, False for rows a filter removed. distance: (n,) filtering distance (NaN
    where none was computed).
    """

    origin: str
    X: np.ndarray
    owner: np.ndarray
    label: np.ndarray
    iteration: np.ndarray | None = None
    kept: np.ndarray | None = None
    distance: np.ndarray | None = None

    def table(self, targets: np.ndarray) -> pd.DataFrame:
        n = len(self.owner)
        name = np.where(self.owner >= 0, targets[np.maximum(self.owner, 0)] if n else [], "")
        return pd.DataFrame(
            {
                "target": pd.Series(name, dtype=object),
                "owner": self.owner,
                "label": self.label,
                "origin": pd.Categorical([self.origin] * n, categories=ORIGINS),
                "iteration": _or(self.iteration, np.full(n, -1, dtype=np.int64)),
                "kept": _or(self.kept, np.ones(n, dtype=bool)),
                "distance": _or(self.distance, np.full(n, np.nan)),
            }
        )


def _or(value, default):
    return default if value is None else value


class Method(Params):
    """Base class of the methods; subclasses add rows in :meth:`augment`.

    After :meth:`fit` (or :meth:`fit_vectors`): ``training_set_`` (one row per candidate
    training vector: target, owner, label, origin, iteration, kept, distance),
    ``training_vectors_`` (its (n, D) matrix), ``model_`` (fitted on the kept rows) and, with
    :meth:`fit`, ``extractor_``.
    """

    #: whether training targets are resampled (their pseudo vectors join the training set)
    resamples_in_training: bool = False
    #: whether a scored target's pseudo vectors join its ensemble
    resamples_in_prediction: bool = False
    #: whether the ensemble averages the original's score with its pseudo vectors' scores
    include_original: bool = True

    # -- to implement -------------------------------------------------------------------
    def augment(self, vectors: Vectors, model, seed: int) -> list[Rows]:
        """Rows added to the originals of the training ``vectors`` (default: none)."""
        return []

    def resampler_or_default(self) -> Resampler | None:
        """The resampler drawing pseudo vectors, or None for a method that never resamples."""
        return None

    # -- training -----------------------------------------------------------------------
    @property
    def resampler_for_training(self) -> Resampler | None:
        return self.resampler_or_default() if self.resamples_in_training else None

    @property
    def resampler_for_prediction(self) -> Resampler | None:
        return self.resampler_or_default() if self.resamples_in_prediction else None

    def fit(self, bags, extractor, model, seed: int = 0) -> "Method":
        """Fit ``extractor`` (a clone) and ``model`` (a clone) on the training ``bags``."""
        self.extractor_ = clone(extractor).fit(bags)
        vectors = Vectors.compute(self.extractor_, bags, self.resampler_for_training, seed)
        return self.fit_vectors(vectors, model, seed)

    def fit_vectors(self, vectors: Vectors, model, seed: int = 0) -> "Method":
        """Build the training set from precomputed training ``vectors`` and fit the model (a
        record model, such as setnet, on the training targets' whole bags)."""
        _check_labelled(vectors)
        if reads_records(model):
            return self._fit_whole_bags(vectors, model)
        originals = Rows(
            "original", vectors.original, np.arange(len(vectors)), vectors.labels.copy()
        )
        rows = [originals, *self.augment(vectors, model, seed)]
        table = pd.concat([r.table(vectors.targets) for r in rows], ignore_index=True)
        X = np.concatenate([r.X for r in rows])
        kept = table["kept"].to_numpy()
        groups = table["owner"].to_numpy().copy()
        unowned = groups < 0  # a synthetic row from several targets is a group of its own
        groups[unowned] = len(vectors) + np.arange(int(unowned.sum()))
        self.model_ = fit_model(
            clone(model),
            X[kept],
            table["label"].to_numpy()[kept],
            groups=groups[kept],
            original=(table["origin"] == "original").to_numpy()[kept],
        )
        self.training_set_, self.training_vectors_ = table, X
        return self

    def _fit_whole_bags(self, vectors: Vectors, model) -> "Method":
        """A record model on the originals' bags; only a method that adds no vectors has them."""
        if type(self).augment is not Method.augment:
            raise ValueError(
                f"{type(model).__name__} reads a bag's records and {type(self).__name__} adds "
                "feature vectors: use method=original (whole bags) or method=online (fresh "
                "draws every epoch)"
            )
        self.model_ = fit_records(clone(model), vectors)
        originals = Rows("original", None, np.arange(len(vectors)), vectors.labels.copy())
        self.training_set_, self.training_vectors_ = originals.table(vectors.targets), None
        return self

    # -- scoring ------------------------------------------------------------------------
    def score(self, bags, seed: int = 1, return_spread: bool = False):
        """(B,) float64 P(malicious) per target of ``bags``; with ``return_spread`` also the
        (B,) population std of each target's ensemble (0 for a single vector)."""
        if not hasattr(self, "extractor_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(bags, ...) first")
        vectors = Vectors.compute(self.extractor_, bags, self.resampler_for_prediction, seed)
        return self.score_vectors(vectors, return_spread)

    def score_vectors(self, vectors: Vectors, return_spread: bool = False):
        """:meth:`score` on precomputed ``vectors`` (their pseudo vectors are used only by
        methods that resample in prediction)."""
        if not hasattr(self, "model_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        scores = self._p_malicious(vectors, pseudo=False)
        members = [(scores, np.arange(len(vectors)))]
        if self.resamples_in_prediction:
            if not vectors.has_pseudo:
                raise ValueError(
                    f"{type(self).__name__} ensembles pseudo vectors, but none were drawn"
                )
            members.append((self._p_malicious(vectors, pseudo=True), vectors.owner))
            if not self.include_original:
                members = members[1:]
        mean, spread = _ensemble(members, len(vectors), fallback=scores)
        return (mean, spread) if return_spread else mean

    # -- a detector file ----------------------------------------------------------------
    def save(self, path, **about) -> Path:
        """Write this method, fitted with :meth:`fit`, to ``path`` (joblib): its extractor,
        model and training-set provenance (not the training vectors), the package versions,
        :data:`DETECTOR_FORMAT` and ``about`` (e.g. ``config=``, ``data=``: what trained it).
        The file is a pickle: :func:`load` only files you trust."""
        if not hasattr(self, "extractor_"):
            raise RuntimeError(
                f"{type(self).__name__} is not fitted with its extractor: call fit(bags, ...) "
                "before save"
            )
        method = copy.copy(self)
        vars(method).pop("training_vectors_", None)
        vars(method).pop("saved_", None)
        content = {
            "format": DETECTOR_FORMAT,
            "kind": self.extractor_.kind,
            "versions": package_versions(),
            **about,
            "method": method,
        }
        path = Path(path)
        joblib.dump(content, path, compress=3)
        return path

    def _p_malicious(self, vectors: Vectors, pseudo: bool) -> np.ndarray:
        """(n,) P(malicious) under ``model_`` of the originals, or of the pseudo vectors (a
        record model scores their bags and draws)."""
        if not reads_records(self.model_):
            return p_malicious(self.model_, vectors.pseudo if pseudo else vectors.original)
        features = self.model_.with_features
        source = _source_of(vectors)
        draws = source.draws() if pseudo else None
        X = (vectors.pseudo if pseudo else vectors.original) if features else None
        return self.model_.predict_bags(source.bags(), draws, X=X)


def _ensemble(members, n_targets: int, fallback: np.ndarray):
    """Per-target mean and population std of the scores in ``members`` [(scores, owner)]."""
    score = np.concatenate([s for s, _ in members])
    owner = np.concatenate([o for _, o in members])
    count = np.bincount(owner, minlength=n_targets)
    mean = np.bincount(owner, weights=score, minlength=n_targets) / np.maximum(count, 1)
    deviation = np.bincount(owner, weights=(score - mean[owner]) ** 2, minlength=n_targets)
    spread = np.sqrt(deviation / np.maximum(count, 1))
    mean = np.where(count > 0, mean, fallback)  # a target whose draws were all empty
    return mean, spread


def load(path) -> Method:
    """The fitted method a :meth:`Method.save` wrote, with what was saved beside it in
    ``saved_`` (format, kind, versions, and ``about``: config, data, ...).

    Warns when a package version differs from the saving one and names them; refuses
    another :data:`DETECTOR_FORMAT`. A detector file is a pickle: load only files you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such detector file")
    try:
        content = joblib.load(path)
    except Exception as error:
        raise ValueError(f"{path}: not a detector file ({type(error).__name__})") from error
    if not isinstance(content, dict) or not isinstance(content.get("method"), Method):
        raise ValueError(
            f"{path}: not a detector file (Method.save or 'alchemy mode=fit' write one)"
        )
    if content.get("format") != DETECTOR_FORMAT:
        raise ValueError(
            f"{path}: detector format {content.get('format')}, this alchemy_torch reads "
            f"format {DETECTOR_FORMAT}: fit the detector again"
        )
    differ = version_differences(content.get("versions", {}))
    if differ:
        warnings.warn(
            f"{path} was saved with other package versions ({differ}): scores may differ; "
            "fit it again with these versions to be sure",
            stacklevel=2,
        )
    method = content.pop("method")
    method.saved_ = content
    return method


def _check_labelled(vectors: Vectors) -> None:
    unlabelled = int((vectors.labels < 0).sum())
    if unlabelled:
        raise ValueError(
            f"{unlabelled} training targets are unlabelled (-1): drop them before training "
            "(datasets.from_files(..., unknown='drop'))"
        )
    if len(np.unique(vectors.labels)) < 2:
        raise ValueError("training targets hold one class only: need malicious and benign")


def reads_records(model) -> bool:
    """Whether ``model`` trains on the records of bags and draws (``fit_bags``), not vectors."""
    return hasattr(model, "fit_bags")


def _source_of(vectors: Vectors):
    if vectors.source is None:
        raise ValueError(
            "a record model (setnet) reads the targets' records: give it vectors from "
            "Vectors.compute (they carry their source)"
        )
    return vectors.source


def fit_records(model, vectors: Vectors, epoch_draws=None):
    """``model.fit_bags`` on the bags of the training ``vectors``' targets: their fixed draws
    (if any) validate; ``epoch_draws`` (epoch -> (Draws, (P, D) features or None)) adds fresh
    draws every epoch. The feature vectors join with the model's ``with_features``."""
    source = _source_of(vectors)
    features = getattr(model, "with_features", False)
    return model.fit_bags(
        source.bags(),
        X=vectors.original if features else None,
        fixed=source.draws(),
        fixed_X=vectors.pseudo if features else None,
        epoch_draws=epoch_draws,
    )


def p_malicious(model, X: np.ndarray) -> np.ndarray:
    """(n,) float64 P(malicious) of the rows of ``X`` under a fitted classifier."""
    if len(X) == 0:
        return np.zeros(0)
    column = list(model.classes_).index(1)
    return np.asarray(model.predict_proba(X)[:, column], dtype=np.float64)


#: Fit parameters passed to a model whose ``fit`` accepts them (others get X and y only):
#: ``groups`` (target of every row: validation splits by target) and ``original`` (mask of
#: original vectors: scalers are fitted on those only).
FIT_PARAMS = ("groups", "original")


def fit_model(model, X: np.ndarray, y: np.ndarray, **fit_params):
    """``model.fit(X, y, ...)`` with the :data:`FIT_PARAMS` its signature accepts."""
    accepted = inspect.signature(model.fit).parameters
    extra = {k: v for k, v in fit_params.items() if k in accepted}
    return model.fit(X, y, **extra)
