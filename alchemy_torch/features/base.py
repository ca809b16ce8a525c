"""The feature-extractor contract shared by the flows, HTTP and DNS feature sets.

An extractor maps pseudo-bags to vectors: ``extractor(bags, draws)`` -> (P, D) float tensor,
one row per draw, on the bags' device. ``draws=None`` means the originals (one draw per
target holding all of its records), so originals and pseudo-bags take the same code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from numbers import Integral
from typing import Iterator

import pandas as pd
import torch
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.io import not_logged
from alchemy_torch.ops import segment as seg
from alchemy_torch.params import Params
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
    ``inputs``: the record columns it reads, where some formats never give one of them
    (:func:`alchemy_torch.io.not_logged`; named by :meth:`FeatureExtractor.describe`).
    """

    name: str
    behaviour: Behaviour
    description: str = ""
    clock: str = ""
    inputs: tuple[str, ...] = ()


STATS5 = ("mean", "std", "min", "max", "median")
_STATS5_BEHAVIOUR = {
    "mean": Behaviour.CENTRED,
    "std": Behaviour.SPREAD,
    "min": Behaviour.RATE_SENSITIVE,
    "max": Behaviour.RATE_SENSITIVE,
    "median": Behaviour.SPREAD,
}


def stats5(
    values: Tensor,
    offsets: Tensor,
    sorted_values: Tensor | None = None,
    median: Tensor | None = None,
) -> Tensor:
    """(S, 5*F) mean, population std, min, max, median of every column of (N, F) ``values``.

    Columns are ordered stat-major within each field: field0 stats5, field1 stats5, ...
    Empty segments give zeros. ``sorted_values``: ``values`` sorted within segments, or
    ``median``: (S,) or (S, F), when the caller has them (no sort then).
    """
    if values.dim() == 1:
        values = values.unsqueeze(1)
    if median is None:
        if sorted_values is None:
            sorted_values = seg.segment_sort(values, offsets)
        elif sorted_values.dim() == 1:
            sorted_values = sorted_values.unsqueeze(1)
        median = seg.segment_median(values, offsets, sorted_x=sorted_values)
    elif median.dim() == 1:
        median = median.unsqueeze(1)
    parts = [
        seg.segment_mean(values, offsets),
        seg.segment_std(values, offsets, correction=0),
        seg.segment_min(values, offsets),
        seg.segment_max(values, offsets),
        median,
    ]
    return torch.stack(parts, dim=2).reshape(offsets.numel() - 1, -1)


def stats5_features(
    scope: str, field: str, description: str = "", inputs: tuple[str, ...] = ()
) -> list[Feature]:
    """The five :func:`stats5` features of one field, named ``{scope}_{stat}_{field}``."""
    return [
        Feature(
            f"{scope}_{stat}_{field}",
            _STATS5_BEHAVIOUR[stat],
            f"{stat} of {description or field}",
            inputs=inputs,
        )
        for stat in STATS5
    ]


def require_integer(name: str, value, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def require_choice(name: str, value, choices: tuple) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


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

    def chunks(self, budget: int) -> list["Segments"]:
        """Consecutive groups of whole draws of about ``budget`` records (one group if it fits)."""
        if self.rows.numel() <= budget or len(self) < 2:
            return [self]
        bounds = seg.chunk_bounds(self.lengths, budget)
        return [self._slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def _slice(self, first: int, end: int) -> "Segments":
        """Draws ``first .. end - 1``."""
        lo, hi = int(self.offsets[first]), int(self.offsets[end])
        return Segments(
            bags=self.bags,
            rows=self.rows[lo:hi],
            offsets=self.offsets[first : end + 1] - lo,
            owner=self.owner[first:end],
        )


class FeatureExtractor(Params):
    """Base class: subclasses set ``kind`` and implement ``features`` and ``compute``.

    Subclasses list ``chunk_records`` and ``dtype`` among their own constructor arguments
    and pass them on here (their arguments are their configuration, see :class:`Params`).

    ``chunk_records``: the memory budget. Draws are computed in groups of whole draws of about
    this many records (a larger draw forms a group of its own), and the extractors' own
    pair-wise steps are chunked by it too; results never depend on it.
    ``dtype``: the output dtype, ``"float64"`` (the default; what scikit-learn wants) or
    ``"float32"`` (a :class:`torch.dtype` works too). Computations happen on the bags' device.
    """

    kind: str = ""
    #: whether ``fit`` learns corpus-wide context (then a target's features depend on the
    #: training corpus; otherwise on its own records alone, and ``fit`` learns nothing)
    corpus_context: bool = False
    DTYPES = {"float64": torch.float64, "float32": torch.float32}

    def __init__(
        self, chunk_records: int = seg.CHUNK_RECORDS, dtype: str | torch.dtype = "float64"
    ):
        require_integer("chunk_records", chunk_records, 1)
        require_choice("dtype", dtype, (*self.DTYPES, *self.DTYPES.values()))
        self.chunk_records = chunk_records
        self.dtype = dtype

    def _keep(self, arguments: dict) -> None:
        """Store every constructor argument verbatim under its own name: ``self._keep(locals())``
        at the end of a subclass's ``__init__``, after validation."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

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
        chunks = Segments.of(bags, draws).chunks(self.chunk_records)
        out = torch.cat([self.compute(chunk) for chunk in chunks])
        out = out.to(self.DTYPES.get(self.dtype, self.dtype))
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
        """One row per feature: name, behaviour under resampling, definition, the time
        alignment it assumes ('' when it reads no absolute time), and ``unknown_from``: the
        formats whose files never give one of its inputs (``eve, squid``; '' for none), where
        the feature is a constant (the reader counts those values in ``attrs["filled"]``)."""
        missing = not_logged(self.kind)
        return pd.DataFrame(
            [
                (
                    f.name,
                    f.behaviour.value,
                    f.description,
                    f.clock,
                    ", ".join(sorted({fmt for c in f.inputs for fmt in missing.get(c, ())})),
                )
                for f in self.features
            ],
            columns=["feature", "behaviour", "description", "clock", "unknown_from"],
        )

    def _check_kind(self, bags: Bags) -> None:
        if bags.kind != self.kind:
            raise ValueError(
                f"{type(self).__name__} extracts {self.kind!r} features, got {bags.kind!r} bags"
            )
