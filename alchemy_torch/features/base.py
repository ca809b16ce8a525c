"""The feature-extractor contract shared by the flows, HTTP and DNS feature sets.

An extractor maps pseudo-bags to vectors: ``extractor(bags, draws)`` -> (P, D) float tensor,
one row per draw, on the bags' device. ``draws=None`` means the originals (one draw per
target holding all of its records), so originals and pseudo-bags take the same code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Iterator

import pandas as pd
import torch
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.ops import segment as seg
from alchemy_torch.resample import Draws, Resampler

__all__ = ["Behaviour", "Feature", "FeatureExtractor", "Segments", "stats5", "STATS5"]


class Behaviour(str, Enum):
    """How a feature reacts when a bag is replaced by a random subset of rate rho (METHOD.md §8)."""

    INVARIANT = "invariant"  # exactly unchanged (e.g. % digits of the domain name)
    CENTRED = "centred"  # unbiased or approximately invariant: means, ratios, fractions
    SPREAD = "spread"  # variance-inflated but roughly centred: std, median, entropy, kurtosis
    RATE_SENSITIVE = (
        "rate-sensitive"  # systematically shifted by rho: counts, extremes, lifetimes, gaps
    )
    GLOBAL = "global"  # depends on corpus-wide context learnt in fit()


@dataclass(frozen=True)
class Feature:
    """One output column: name (``{scope}_{stat}_{field}``), behaviour, short definition.

    ``clock``: for a feature that reads absolute time, the time alignment it assumes
    (``datasets.load(..., align_time=)``); '' when it uses only time differences in a draw.
    """

    name: str
    behaviour: Behaviour
    description: str = ""
    clock: str = ""


STATS5 = ("mean", "std", "min", "max", "median")
_STATS5_BEHAVIOUR = {
    "mean": Behaviour.CENTRED,
    "std": Behaviour.SPREAD,
    "min": Behaviour.RATE_SENSITIVE,
    "max": Behaviour.RATE_SENSITIVE,
    "median": Behaviour.SPREAD,
}


def stats5(values: Tensor, offsets: Tensor, sorted_values: Tensor | None = None) -> Tensor:
    """(S, 5*F) mean, population std, min, max, median of every column of (N, F) ``values``.

    Columns are ordered stat-major within each field: field0 stats5, field1 stats5, ...
    Empty segments give zeros. ``sorted_values``: ``values`` sorted within segments, when
    the caller has them.
    """
    if values.dim() == 1:
        values = values.unsqueeze(1)
    if sorted_values is None:
        sorted_values = seg.segment_sort(values, offsets)
    elif sorted_values.dim() == 1:
        sorted_values = sorted_values.unsqueeze(1)
    parts = [
        seg.segment_mean(values, offsets),
        seg.segment_std(values, offsets, correction=0),
        seg.segment_min(values, offsets),
        seg.segment_max(values, offsets),
        seg.segment_median(values, offsets, sorted_x=sorted_values),
    ]
    return torch.stack(parts, dim=2).reshape(offsets.numel() - 1, -1)


def stats5_features(scope: str, field: str, description: str = "") -> list[Feature]:
    """The five :func:`stats5` features of one field, named ``{scope}_{stat}_{field}``."""
    return [
        Feature(
            f"{scope}_{stat}_{field}", _STATS5_BEHAVIOUR[stat], f"{stat} of {description or field}"
        )
        for stat in STATS5
    ]


@dataclass
class Segments:
    """The records of a set of draws, gathered: what every extractor computes on.

    rows: (R,) record indices into the Bags; offsets: (P+1,); owner: (P,) target of every
    draw; ids: (R,) draw of every gathered record.
    """

    bags: Bags
    rows: Tensor
    offsets: Tensor
    owner: Tensor

    @classmethod
    def of(cls, bags: Bags, draws: Draws | None) -> "Segments":
        draws = Draws.originals(bags) if draws is None else draws
        return cls(bags=bags, rows=draws.rows, offsets=draws.offsets, owner=draws.owner)

    def __len__(self) -> int:
        return self.owner.numel()

    def column(self, name: str) -> Tensor:
        """(R,) the Bags column ``name`` at the draws' records."""
        return self.bags.columns[name][self.rows]

    @cached_property
    def ids(self) -> Tensor:
        """(R,) draw of every gathered record (computed once)."""
        return seg.segment_ids(self.offsets, self.rows.numel())

    @property
    def lengths(self) -> Tensor:
        return self.offsets.diff()


class FeatureExtractor:
    """Base class: subclasses set ``kind`` and implement ``features`` and ``compute``.

    ``dtype`` (default float64) is the output dtype; computations happen on the bags' device.
    """

    kind: str = ""
    #: whether ``fit`` learns corpus-wide context (then a target's features depend on the
    #: training corpus; otherwise on its own records alone, and ``fit`` learns nothing)
    corpus_context: bool = False

    def __init__(self, dtype: torch.dtype = torch.float64):
        self.dtype = dtype

    # -- to implement ---------------------------------------------------------------
    @property
    def features(self) -> list[Feature]:
        raise NotImplementedError

    def compute(self, segments: Segments) -> Tensor:
        """(P, D) features of the gathered draws."""
        raise NotImplementedError

    # -- contract -------------------------------------------------------------------
    def fit(self, bags: Bags) -> "FeatureExtractor":
        """Learn corpus-wide context from TRAINING bags only (default: nothing)."""
        self._check_kind(bags)
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def __call__(self, bags: Bags, draws: Draws | None = None) -> Tensor:
        """(P, D) one row per draw (per target when ``draws`` is None), finite, on bags' device."""
        self._check_kind(bags)
        out = self.compute(Segments.of(bags, draws)).to(self.dtype)
        if out.shape[1] != len(self.features):
            raise RuntimeError(
                f"{type(self).__name__} computed {out.shape[1]} columns "
                f"for {len(self.features)} names"
            )
        return out

    def iter_draws(
        self, bags: Bags, resampler: Resampler, seed: int
    ) -> Iterator[tuple[Tensor, Draws]]:
        """(features, draws) per memory chunk of ``resampler``'s draws."""
        for draws in resampler.iter_draws(bags, seed):
            yield self(bags, draws), draws

    def describe(self) -> pd.DataFrame:
        """One row per feature: name, behaviour under resampling, definition, and the time
        alignment it assumes ('' when it reads no absolute time)."""
        return pd.DataFrame(
            [(f.name, f.behaviour.value, f.description, f.clock) for f in self.features],
            columns=["feature", "behaviour", "description", "clock"],
        )

    def _check_kind(self, bags: Bags) -> None:
        if bags.kind != self.kind:
            raise ValueError(
                f"{type(self).__name__} extracts {self.kind!r} features, got {bags.kind!r} bags"
            )
