"""Online Alchemy: fresh pseudo-bags of the training targets every epoch.

Alchemy 1-4 draw K pseudo-bags per target once, so a model that trains by epochs sees the
same pseudo vectors every epoch. Online draws new ones at the start of every epoch
(``epoch_iterations`` per training target, one seed per epoch derived from the method's
seed), computes their features with the fitted extractor on the bags' device, and the model
trains on them with the originals. The resampler's K fixed draws serve the prediction
ensemble (Alchemy 3) and validation, so early stopping compares epochs on the same draws.

=========  =========================  =======================  ===============================
pattern    fresh draws every epoch    resample in prediction   selection; filtering per epoch
=========  =========================  =======================  ===============================
1          yes
2          (whole bags only)          yes
3          yes                        yes
4          yes                        yes                      yes
=========  =========================  =======================  ===============================

Pattern 4 selects targets once (Alchemy 4's inner CV on the originals) and filters every
epoch's fresh vectors by their distance under the inner models (threshold per epoch).

Models: one whose ``fit`` takes ``epoch_rows`` (the DNN: feature vectors of the fresh draws)
or one with ``fit_bags`` (setnet: the fresh draws themselves, over the raw records). Models
that do not train by epochs (RF, SVM) are refused.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

from alchemy_torch.methods.alchemy import Alchemy
from alchemy_torch.methods.base import Rows, _check_labelled, fit_records, reads_records
from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.resample import Resampler, derive_seed

__all__ = ["Online"]

_EPOCH_STREAM = 41  # sub-stream of the method seed for the draws of an epoch


class Online(Alchemy):
    """Alchemy with fresh draws every epoch: ``pattern`` 1-4 as in the table above.

    ``resampler``: the fixed draws (K = ``iterations``) of the prediction ensemble and of
    validation, and the settings of every epoch's draws. ``epoch_iterations``: pseudo-bags
    per training target and epoch (1: as many fresh vectors as originals). ``rate_schedule``:
    None, or (start, end, epochs): epoch e draws with option 2 at the rate that moves linearly
    from ``start`` to ``end`` over the first ``epochs`` epochs, then stays at ``end``. The rest
    as :class:`Alchemy`.

    After fit: ``training_set_`` (originals and every epoch's fresh draws, ``iteration`` =
    epoch * epoch_iterations + draw; the DNN drops those of its validation targets),
    ``training_vectors_`` None (the epochs' vectors are not kept), ``epochs_`` (per epoch:
    drawn, kept, threshold, seconds), ``model_``; pattern 4 also ``selection_``.
    """

    def __init__(
        self,
        pattern: int = 3,
        resampler: Resampler | None = None,
        epoch_iterations: int = 1,
        rate_schedule: tuple | None = None,
        p_range: tuple = (0.0, 0.98),
        f: float = 5.0,
        selection_score: str = "p_true",
        pooling: str = "all",
        augment_classes: tuple = (0, 1),
        inner_folds: int = 5,
        include_original: bool = True,
    ):
        super().__init__(
            pattern,
            resampler,
            p_range,
            f,
            selection_score,
            pooling,
            augment_classes,
            inner_folds,
            include_original,
        )
        if isinstance(epoch_iterations, bool) or not (
            isinstance(epoch_iterations, int) and epoch_iterations >= 1
        ):
            raise ValueError(f"epoch_iterations must be an int >= 1, got {epoch_iterations!r}")
        if rate_schedule is not None:
            start, end, epochs = rate_schedule
            if not (0 < start <= 1 and 0 < end <= 1 and int(epochs) >= 1):
                raise ValueError(
                    "rate_schedule must be (start, end, epochs) with rates in (0, 1] and "
                    f"epochs >= 1, got {rate_schedule!r}"
                )
        self.epoch_iterations, self.rate_schedule = epoch_iterations, rate_schedule

    def epoch_resampler(self, epoch: int) -> Resampler:
        """The resampler of ``epoch``'s fresh draws."""
        params = {**self.resampler_or_default().get_params(), "iterations": self.epoch_iterations}
        if self.rate_schedule is not None:
            start, end, epochs = self.rate_schedule
            progress = min(epoch / max(int(epochs) - 1, 1), 1.0)
            params.update(option=2, rate=start + (end - start) * progress)
        return Resampler(**params)

    # -- training -----------------------------------------------------------------------
    def fit_vectors(self, vectors: Vectors, model, seed: int = 0) -> "Online":
        """Fit ``model`` (a clone) by epochs on the originals of ``vectors`` and fresh draws of
        their targets (``vectors.source``); the fixed pseudo vectors validate."""
        _check_labelled(vectors)
        model = clone(model)
        records = reads_records(model)
        if not records and "epoch_rows" not in inspect.signature(model.fit).parameters:
            raise ValueError(
                f"method=online trains by epochs and {type(model).__name__} does not: "
                "use model=dnn or model=setnet"
            )
        if records and self.selects:
            raise ValueError(
                "method=online pattern 4 selects with inner models on feature vectors; "
                f"{type(model).__name__} reads records: use method.pattern=3"
            )
        if vectors.source is None:
            raise ValueError(
                "method=online draws from the training targets' records: give it vectors "
                "from Vectors.compute (they carry their source)"
            )
        self._epochs, self._tables = {}, {}
        fresh = _Fresh(self, vectors, model, seed) if self.resamples_in_training else None
        if records:
            features = getattr(model, "with_features", False)
            epoch_draws = None if fresh is None else lambda e: fresh(e, features=features)
            self.model_ = fit_records(model, vectors, epoch_draws)
        else:
            self.model_ = self._fit_rows(vectors, model, fresh)
        originals = Rows("original", None, np.arange(len(vectors)), vectors.labels.copy())
        tables = [originals.table(vectors.targets)]
        tables += [self._tables[e] for e in sorted(self._tables)]
        self.training_set_ = pd.concat(tables, ignore_index=True)
        self.training_vectors_ = None
        self.epochs_ = pd.DataFrame([self._epochs[e] for e in sorted(self._epochs)])
        del self._tables, self._epochs
        return self

    def _fit_rows(self, vectors: Vectors, model, fresh):
        """A feature model: originals and fixed pseudo vectors (validation only) as rows."""
        n = len(vectors)
        X = np.concatenate([vectors.original, vectors.pseudo])
        y = np.concatenate([vectors.labels, vectors.labels[vectors.owner]])
        groups = np.concatenate([np.arange(n), vectors.owner])
        original = np.arange(len(X)) < n

        def epoch_rows(epoch: int):
            draws, x = fresh(epoch, features=True)
            return x, fresh.labels[draws.owner], draws.owner

        return model.fit(
            X, y, groups=groups, original=original, epoch_rows=None if fresh is None else epoch_rows
        )


class _Fresh:
    """``fresh(epoch, features)`` -> (draws, (P, D) tensor or None): the epoch's fresh
    pseudo-bags of the training targets over ``vectors.source.bags()``, restricted to the
    augmented classes (and, pattern 4, the selected targets and the kept vectors); records
    each epoch in the method's training table."""

    def __init__(self, method: Online, vectors: Vectors, model, seed: int):
        self.method, self.seed, self.vectors = method, seed, vectors
        self.source = vectors.source
        self.bags = self.source.bags()
        self.labels = self.bags.labels
        classes = torch.as_tensor(list(method.augment_classes), device=self.bags.device)
        self.allowed = torch.isin(self.labels, classes)
        if method.selects:
            selected, self.fold_of, self.fold_models, self.oof = method._select(
                vectors, model, seed
            )
            self.allowed &= torch.as_tensor(selected, device=self.bags.device)

    def __call__(self, epoch: int, features: bool):
        start = time.perf_counter()
        method = self.method
        draws = method.epoch_resampler(epoch).draw(
            self.bags, derive_seed(self.seed, _EPOCH_STREAM, epoch)
        )
        draws = draws.take(torch.nonzero(self.allowed[draws.owner]).squeeze(1))
        owner = draws.owner.cpu().numpy()
        iteration = epoch * method.epoch_iterations + draws.iteration.cpu().numpy()
        x = self.source.extractor(self.bags, draws) if features or method.selects else None
        kept = distance = None
        if method.selects:
            epoch_vectors = replace(self.vectors, pseudo=x.cpu().numpy(), owner=owner)
            distance = method._distances(
                epoch_vectors, np.arange(len(owner)), self.fold_of, self.fold_models, self.oof
            )
            kept = method._filter(distance, self.vectors.labels[owner])
            keep = torch.as_tensor(np.flatnonzero(kept), device=self.bags.device)
            draws, x = draws.take(keep), x[keep]
        rows = Rows("pseudo", None, owner, self.vectors.labels[owner], iteration, kept, distance)
        method._tables[epoch] = rows.table(self.vectors.targets)
        method._epochs[epoch] = {
            "epoch": epoch,
            "drawn": len(owner),
            "kept": len(draws),
            "threshold": method.__dict__.pop("threshold_", None),
            "seconds": time.perf_counter() - start,
        }
        return draws, x
