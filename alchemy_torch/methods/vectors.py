"""Feature vectors of a set of targets: each target's original vector and its pseudo vectors.

What every method trains and scores on. Computed once per (bags, resampler, seed) and sliced by
target (:meth:`Vectors.take`), so cross-validation can share one computation across folds when
an extractor needs no corpus context.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from alchemy_torch.bags import Bags
from alchemy_torch.ops.segment import csr_gather, nonzero, offsets_from_lengths
from alchemy_torch.resample import Draws, Resampler

__all__ = ["Source", "Vectors", "restrict_draws"]


@dataclass
class Source:
    """Where :class:`Vectors` came from, so a method can draw more of the same targets.

    Holds the Bags the vectors were computed over, the positions of the vectors' targets there
    (``index``), the fitted extractor, and the resampler and seed of the pseudo vectors. Use
    :meth:`bags` and :meth:`draws`: they give these targets' records only, never the others'
    (in cross-validation, the test targets'). Each is built once per Source and kept (a
    :meth:`Vectors.take` makes a new Source).
    """

    all_bags: Bags
    index: np.ndarray
    extractor: object
    resampler: Resampler | None
    seed: int
    _built: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def bags(self) -> Bags:
        """The Bags of these targets alone, in the vectors' order."""
        if "bags" not in self._built:
            self._built["bags"] = self.all_bags[self.index]
        return self._built["bags"]

    def draws(self) -> Draws | None:
        """The pseudo vectors' draws over :meth:`bags`, in the vectors' (owner, iteration)
        order (drawn again from the seed: the same draws), or None without a resampler."""
        if "draws" not in self._built:
            self._built["draws"] = self._draw()
        return self._built["draws"]

    def _draw(self) -> Draws | None:
        if self.resampler is None:
            return None
        parts = [
            restrict_draws(d, self.all_bags, self.index)
            for d in self.resampler.iter_draws(self.all_bags, self.seed)
        ]
        draws = Draws.cat(parts)
        order = np.lexsort((draws.iteration.cpu().numpy(), draws.owner.cpu().numpy()))
        return draws.take(torch.as_tensor(order, device=draws.owner.device))


@dataclass
class Vectors:
    """Original and pseudo feature vectors of B targets (D features, P pseudo vectors).

    original: (B, D) float64. labels: (B,) int64 (1, 0, or -1 unlabelled). targets: (B,)
    names. pseudo: (P, D) float64, ordered by (owner, iteration). owner: (P,) int64 index
    into the B targets. iteration: (P,) int64 resampling iteration of every pseudo vector.
    """

    original: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    pseudo: np.ndarray
    owner: np.ndarray
    iteration: np.ndarray
    source: Source | None = None

    @classmethod
    def compute(
        cls,
        extractor,
        bags: Bags,
        resampler: Resampler | None = None,
        seed: int = 0,
        index=None,
    ) -> "Vectors":
        """Originals of every target and, with ``resampler``, its draws' vectors (seeded).

        ``index``: only the targets at these positions of ``bags``, with the draws they get
        when all of ``bags`` is drawn: a target's draws never depend on which others are
        computed with it. Draws are produced and turned into vectors chunk by chunk.
        """
        part = bags if index is None else bags[index]
        original = extractor(part)
        parts, owners, iterations = [], [], []
        if resampler is not None:
            for draws in resampler.iter_draws(bags, seed):
                if index is not None:
                    draws = restrict_draws(draws, bags, index)
                parts.append(extractor(part, draws))
                owners.append(draws.owner.cpu().numpy())
                iterations.append(draws.iteration.cpu().numpy())
        empty = [np.zeros(0, dtype=np.int64)]
        owner, iteration = np.concatenate(owners or empty), np.concatenate(iterations or empty)
        order = np.lexsort((iteration, owner))  # by target, then iteration: chunk-invariant
        pseudo = _numpy(torch.cat(parts)) if parts else np.zeros((0, original.shape[1]))
        return cls(
            original=_numpy(original),
            labels=part.labels.cpu().numpy().astype(np.int64),
            targets=np.asarray(part.targets, dtype=object),
            pseudo=pseudo[order],
            owner=owner[order],
            iteration=iteration[order],
            source=Source(
                bags,
                np.arange(len(bags)) if index is None else np.asarray(index, dtype=np.int64),
                extractor,
                resampler,
                seed,
            ),
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
            source=None
            if self.source is None
            else replace(self.source, index=self.source.index[index]),
        )


def restrict_draws(draws: Draws, bags: Bags, index) -> Draws:
    """The draws of the targets ``index`` (positions) re-expressed over ``bags[index]``.

    Owners become positions in ``index``; rows move to the sub-Bags' record numbering (a
    target's records stay contiguous and in order there, so each draw keeps its time order).
    """
    index = torch.as_tensor(np.asarray(index, dtype=np.int64), device=bags.device)
    position = torch.full((len(bags),), -1, dtype=torch.int64, device=bags.device)
    position[index] = torch.arange(index.numel(), device=bags.device)
    keep = nonzero(position[draws.owner] >= 0)
    rows, offsets = csr_gather(draws.offsets, keep)
    owner = draws.owner[keep]
    row_owner = torch.repeat_interleave(owner, offsets.diff(), output_size=rows.numel())
    sub_offsets = offsets_from_lengths(bags.lengths[index])
    shift = sub_offsets[:-1][position[row_owner]] - bags.offsets[row_owner]
    return Draws(
        owner=position[owner],
        offsets=offsets,
        rows=draws.rows[rows] + shift,
        iteration=draws.iteration[keep],
    )


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()
