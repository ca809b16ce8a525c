"""Feature vectors of a set of targets: each target's original vector and its pseudo vectors.

What every method trains and scores on. Computed once per (bags, resampler, seed) and sliced by
target (:meth:`Vectors.take`), so cross-validation can share one computation across folds when
an extractor needs no corpus context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from alchemy_torch.bags import Bags
from alchemy_torch.resample import Draws, Resampler

__all__ = ["Vectors"]


@dataclass
class Vectors:
    """Original and pseudo feature vectors of B targets (D features, P pseudo vectors).

    original: (B, D) float64. labels: (B,) int64 (1, 0, or -1 unlabelled). targets: (B,)
    names. pseudo: (P, D) float64. owner: (P,) int64 index into the B targets. iteration:
    (P,) int64 resampling iteration of every pseudo vector.
    """

    original: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    pseudo: np.ndarray
    owner: np.ndarray
    iteration: np.ndarray

    @classmethod
    def compute(
        cls, extractor, bags: Bags, resampler: Resampler | None = None, seed: int = 0
    ) -> "Vectors":
        """Originals of every target and, with ``resampler``, its draws' vectors (seeded)."""
        original = extractor(bags)
        parts, draws = [], []
        if resampler is not None:
            for x, d in extractor.iter_draws(bags, resampler, seed):
                parts.append(x)
                draws.append(d)
        dims = original.shape[1]
        pseudo = torch.cat(parts) if parts else original.new_zeros((0, dims))
        drawn = Draws.cat(draws) if draws else None
        empty = np.zeros(0, dtype=np.int64)
        return cls(
            original=_numpy(original),
            labels=bags.labels.cpu().numpy().astype(np.int64),
            targets=np.asarray(bags.targets, dtype=object),
            pseudo=_numpy(pseudo),
            owner=empty if drawn is None else drawn.owner.cpu().numpy(),
            iteration=empty if drawn is None else drawn.iteration.cpu().numpy(),
        )

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def has_pseudo(self) -> bool:
        return len(self.pseudo) > 0

    def take(self, index) -> "Vectors":
        """The vectors of targets ``index`` (positions, in that order), owners renumbered."""
        index = np.asarray(index, dtype=np.int64)
        position = np.full(len(self), -1, dtype=np.int64)
        position[index] = np.arange(len(index))
        # pseudo vectors of the kept targets, grouped in the order of ``index``
        rows = np.flatnonzero(position[self.owner] >= 0)
        rows = rows[np.argsort(position[self.owner[rows]], kind="stable")]
        return Vectors(
            original=self.original[index],
            labels=self.labels[index],
            targets=self.targets[index],
            pseudo=self.pseudo[rows],
            owner=position[self.owner[rows]],
            iteration=self.iteration[rows],
        )


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()
