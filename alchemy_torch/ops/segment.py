"""Reductions over CSR segments, in native torch.

A segmentation of ``N`` values into ``S`` segments is given by ``offsets`` (S+1,) int64,
non-decreasing, ``offsets[0] == 0`` and ``offsets[-1] == N``: segment ``s`` holds the values
``x[offsets[s]:offsets[s+1]]``. ``x`` is (N,) or (N, F); every reduction returns (S,) or
(S, F) on ``x``'s device.

Empty-segment policy: every statistic of an empty segment is ``0`` (as torch_scatter does),
never NaN or inf. Statistics that need more values than a segment has (``std`` with
``correction=1`` on one value) are ``0`` too. Inputs are assumed finite.

Offsets are trusted (``unsafe=True``): validate them once where they are built
(:func:`check_offsets`).

Work that grows with the data is cut into chunks of about :data:`CHUNK_RECORDS` values
(:func:`chunk_bounds`); chunks never change results.

Sorting, ``nonzero``, ``argsort``, ``concat`` and ``repeat`` go through the primitives below:
on CPU they call numpy, whose SIMD sort and ``flatnonzero`` are several times faster than
torch's on the same data (a 4M int64 sort: 49 ms against 264 ms; ``nonzero``: 4 ms against
24 ms) and whose concatenation of 1-d pieces is much faster than torch 2.13's ``cat`` here
(14 pieces, 4.2M bytes: 0.6 ms against 100 ms); on CUDA they call torch. Results are
identical on both. :func:`device_branches` (or the environment variable
``ALCHEMY_TORCH_DEVICE_BRANCHES=1``) makes CPU tensors take the CUDA branches, so that the
tests run them without a GPU.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from alchemy_torch.ops import kernels as _kernels  # the compiled paths, on the host

__all__ = [
    "CHUNK_RECORDS",
    "DEVICE_BRANCHES_ENV",
    "device_branches",
    "on_host",
    "chunk_bounds",
    "nonzero",
    "argsort",
    "concat",
    "repeat",
    "stable_argsort",
    "sort_values",
    "check_offsets",
    "segment_ids",
    "segment_lengths",
    "segment_count",
    "segment_sum",
    "segment_mean",
    "segment_std",
    "segment_min",
    "segment_max",
    "segment_first",
    "segment_last",
    "segment_sort",
    "segment_sort_codes",
    "dense_ranks",
    "segment_order",
    "quantile_positions",
    "segment_quantile",
    "segment_quantile_ranked",
    "segment_runs_stats5",
    "segment_value_runs",
    "group_value_runs",
    "segment_sort_grid",
    "gather_columns",
    "histogram_fits",
    "HISTOGRAM_CELLS_PER_VALUE",
    "GROUP_HISTOGRAM_CELLS_PER_VALUE",
    "segment_median",
    "segment_nunique",
    "segment_runs",
    "segment_mode_share",
    "segment_bincount",
    "segment_histogram",
    "segment_diff",
    "csr_gather",
    "expand_ranges",
    "offsets_from_lengths",
    "offsets_from_ids",
    "run_starts",
    "run_offsets",
]

#: Default memory budget of one chunk, in records (or pairs, characters): 4M values keep the
#: working set of a chunk (a few (R,) int64/float64 vectors per step) to some hundred MB,
#: while the per-chunk overhead stays negligible.
CHUNK_RECORDS = 1 << 22

#: Environment variable: set to ``1`` to start with :func:`device_branches` on
DEVICE_BRANCHES_ENV = "ALCHEMY_TORCH_DEVICE_BRANCHES"
_device_branches = os.environ.get(DEVICE_BRANCHES_ENV, "0") not in ("", "0")


@contextmanager
def device_branches(enabled: bool = True) -> Iterator[None]:
    """Within the block, CPU tensors take the branches written for CUDA (torch where the CPU
    calls numpy): their logic then runs, and is tested, without a GPU. Process-wide."""
    global _device_branches
    before, _device_branches = _device_branches, enabled
    try:
        yield
    finally:
        _device_branches = before


def on_host(x: Tensor) -> bool:
    """Whether ``x`` takes the CPU (numpy) branches: on the CPU, outside :func:`device_branches`."""
    return x.device.type == "cpu" and not _device_branches


def nonzero(mask: Tensor) -> Tensor:
    """(K,) int64 positions of the True values of a 1-d bool ``mask``, ascending."""
    if on_host(mask):
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask).squeeze(1)


def argsort(x: Tensor) -> Tensor:
    """(N,) int64 permutation sorting a 1-d ``x`` ascending (ties in any order)."""
    if on_host(x):
        return torch.from_numpy(np.argsort(x.numpy()))
    return torch.sort(x).indices


def concat(parts: list[Tensor]) -> Tensor:
    """1-d tensors of one dtype and device, end to end (at least one)."""
    if on_host(parts[0]):
        return torch.from_numpy(np.concatenate([p.numpy() for p in parts]))
    return torch.cat(parts)


def repeat(values: Tensor, repeats: Tensor, total: int | None = None) -> Tensor:
    """(sum(repeats),) ``values[i]`` repeated ``repeats[i]`` times, in order (1-d, one device);
    ``total``: sum(repeats) when known (saves a device sync on CUDA)."""
    if on_host(values):
        return torch.from_numpy(np.repeat(values.numpy(), repeats.numpy()))
    return torch.repeat_interleave(values, repeats, output_size=total)


def sort_values(key: Tensor, bound: int) -> Tensor:
    """Ascending values of 1-d integer ``key`` in [0, bound); int32 when ``bound <= 2**31``."""
    dtype = torch.int32 if bound <= 2**31 else torch.int64
    if not on_host(key):
        return torch.sort(key.to(dtype)).values
    return torch.from_numpy(
        np.sort(key.numpy().astype(np.int32 if dtype == torch.int32 else np.int64, copy=False))
    )


def stable_argsort(key: Tensor, bound: int) -> tuple[Tensor, Tensor]:
    """(sorted keys, permutation) of a stable sort of 1-d integer ``key`` in [0, bound).

    The position rides in the low bits of one int64, so sorting values alone is stable and
    yields the permutation; keys too wide for that fall back to torch's stable sort.
    """
    n = key.numel()
    shift = max(n - 1, 1).bit_length()
    if max(bound, 1) << shift > 2**63 - 1:
        ordered = torch.sort(key, stable=True)
        return ordered.values, ordered.indices
    packed = sort_values(
        (key.long() << shift) | torch.arange(n, device=key.device), max(bound, 1) << shift
    ).long()
    return packed >> shift, packed & ((1 << shift) - 1)


def check_offsets(offsets: Tensor, n: int) -> None:
    """Raise ``ValueError`` unless ``offsets`` is a valid CSR pointer over ``n`` values."""
    if offsets.dim() != 1 or offsets.numel() < 1 or offsets.dtype != torch.int64:
        raise ValueError(
            f"offsets must be a 1-d int64 tensor of length S+1, "
            f"got {tuple(offsets.shape)} {offsets.dtype}"
        )
    if int(offsets[0]) != 0 or int(offsets[-1]) != n:
        raise ValueError(
            f"offsets must start at 0 and end at {n}, got {int(offsets[0])}..{int(offsets[-1])}"
        )
    if bool((offsets.diff() < 0).any()):
        raise ValueError("offsets must be non-decreasing")


def segment_lengths(offsets: Tensor) -> Tensor:
    """(S,) int64 number of values per segment."""
    return offsets.diff()


segment_count = segment_lengths


def segment_ids(offsets: Tensor, n: int | None = None) -> Tensor:
    """(N,) int64 segment index of every value."""
    lengths = offsets.diff()
    if n is None:
        n = int(offsets[-1])
    return torch.repeat_interleave(
        torch.arange(lengths.numel(), device=offsets.device), lengths, output_size=n
    )


def _as_float(x: Tensor) -> Tensor:
    return x if x.is_floating_point() else x.to(torch.float64)


def _expand(per_segment: Tensor, like: Tensor) -> Tensor:
    """Broadcast an (S,) tensor against (S,) or (S, F) results."""
    return per_segment.view(-1, *([1] * (like.dim() - 1)))


def segment_sum(x: Tensor, offsets: Tensor) -> Tensor:
    """Sum per segment; empty segments give 0."""
    return torch.segment_reduce(
        _as_float(x), "sum", offsets=offsets, axis=0, unsafe=True, initial=0.0
    )


def segment_mean(x: Tensor, offsets: Tensor) -> Tensor:
    """Mean per segment; empty segments give 0."""
    total = segment_sum(x, offsets)
    return total / _expand(offsets.diff().clamp(min=1), total).to(total.dtype)


def segment_std(x: Tensor, offsets: Tensor, correction: int = 1) -> Tensor:
    """Standard deviation per segment, two-pass (no E[x^2]-E[x]^2 cancellation).

    ``correction=1`` is the sample std (the default), ``0`` the population std. Segments with
    ``length <= correction`` give 0.
    """
    x = _as_float(x)
    mean = segment_mean(x, offsets)
    lengths = offsets.diff()
    dev = x - torch.repeat_interleave(mean, lengths, dim=0, output_size=x.shape[0])
    ss = segment_sum(dev * dev, offsets)
    denom = _expand((lengths - correction).clamp(min=1), ss).to(ss.dtype)
    var = torch.where(_expand(lengths > correction, ss), ss / denom, torch.zeros_like(ss))
    return var.sqrt()


def _extreme(x: Tensor, offsets: Tensor, reduce: str) -> Tensor:
    x = _as_float(x)
    fill = float("inf") if reduce == "min" else float("-inf")
    out = torch.segment_reduce(x, reduce, offsets=offsets, axis=0, unsafe=True, initial=fill)
    return torch.where(_expand(offsets.diff() > 0, out), out, torch.zeros_like(out))


def segment_min(x: Tensor, offsets: Tensor) -> Tensor:
    """Minimum per segment; empty segments give 0."""
    return _extreme(x, offsets, "min")


def segment_max(x: Tensor, offsets: Tensor) -> Tensor:
    """Maximum per segment; empty segments give 0."""
    return _extreme(x, offsets, "max")


def _at(x: Tensor, offsets: Tensor, index: Tensor) -> Tensor:
    """Values of ``x`` at one ``index`` (S,) per segment; empty segments give 0."""
    if x.shape[0] == 0:
        return x.new_zeros((offsets.numel() - 1, *x.shape[1:]))
    out = x[index.clamp(0, x.shape[0] - 1)]
    return torch.where(_expand(offsets.diff() > 0, out), out, torch.zeros_like(out))


def segment_first(x: Tensor, offsets: Tensor) -> Tensor:
    """First value per segment (the smallest of a sorted segment); empty segments give 0."""
    return _at(x, offsets, offsets[:-1])


def segment_last(x: Tensor, offsets: Tensor) -> Tensor:
    """Last value per segment (the largest of a sorted segment); empty segments give 0."""
    return _at(x, offsets, offsets[1:] - 1)


def segment_sort(x: Tensor, offsets: Tensor, ids: Tensor | None = None) -> Tensor:
    """Values sorted ascending within each segment (segments stay in place); (N,) or (N, F).

    Per column: one sort by value, then a stable integer sort by segment. ``ids`` may pass a
    precomputed :func:`segment_ids`.
    """
    ids = segment_ids(offsets, x.shape[0]) if ids is None else ids
    if x.dim() == 2:
        return torch.stack(
            [segment_sort(x[:, j].contiguous(), offsets, ids) for j in range(x.shape[1])], dim=1
        )
    order = argsort(x)
    _, within = stable_argsort(ids[order], offsets.numel() - 1)
    return x[order[within]]


def segment_sort_codes(codes: Tensor, n_codes: int, ids: Tensor, n_seg: int) -> Tensor:
    """(N,) integer ``codes`` in [0, n_codes) sorted within the segments ``ids`` (non-decreasing).

    One integer sort of ``segment * n_codes + code`` (int32 when it fits, and then returned as
    int32): the fast path for values cached as dense codes (:func:`dense_ranks`).
    """
    bound = n_seg * n_codes
    base = (ids.int() if bound <= 2**31 else ids.long()) * n_codes
    return sort_values(base + codes, bound).sub_(base)


def dense_ranks(x: Tensor) -> tuple[Tensor, Tensor]:
    """(N,) int64 rank of every value among the distinct values of 1-d ``x``, and those (U,)
    distinct values in ascending order: ``uniques[ranks] == x``."""
    uniques, inverse = torch.unique(x, return_inverse=True)
    return inverse, uniques


def segment_order(
    ranks: Tensor, n_ranks: int, offsets: Tensor, ids: Tensor | None = None
) -> Tensor:
    """(N,) permutation that sorts every segment by ``ranks`` (ints in [0, n_ranks)).

    One integer sort of the key ``segment * n_ranks + rank``: with ranks cached per record
    (:func:`dense_ranks` once), sorting many draws costs one radix-friendly sort.
    """
    ids = segment_ids(offsets, ranks.shape[0]) if ids is None else ids
    n_seg = offsets.numel() - 1
    if n_seg * max(n_ranks, 1) >= 2**62:
        raise ValueError(f"{n_seg} segments x {n_ranks} ranks overflow an int64 sort key")
    return stable_argsort(ids.long() * n_ranks + ranks, n_seg * max(n_ranks, 1))[1]


def quantile_positions(lengths: Tensor, q: float) -> tuple[Tensor, Tensor, Tensor]:
    """Where quantile ``q`` of sorted segments of ``lengths`` (S,) lies, numpy's linear rule.

    Returns ``(lo, hi, frac)``: (S,) int64 positions within each segment of the two values to
    blend and the (S,) float64 weight of the upper one, ``v[lo] + (v[hi] - v[lo]) * frac``.
    Empty segments give ``lo = 0, hi = -1``: the caller masks them.
    """
    pos = (lengths - 1).clamp(min=0).to(torch.float64) * q
    below = pos.floor()
    lo = below.long()
    return lo, torch.minimum(lo + 1, lengths - 1), pos - below


def segment_quantile(
    x: Tensor, offsets: Tensor, q: float, sorted_x: Tensor | None = None
) -> Tensor:
    """Quantile ``q`` per segment with linear interpolation (numpy's default); empty give 0.

    Pass ``sorted_x = segment_sort(x, offsets)`` to share one sort between several quantiles.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must lie in [0, 1], got {q}")
    xs = _as_float(segment_sort(x, offsets) if sorted_x is None else sorted_x)
    lengths = offsets.diff()
    if xs.shape[0] == 0:
        return xs.new_zeros((lengths.numel(), *xs.shape[1:]))
    lo_pos, hi_pos, frac = quantile_positions(lengths, q)
    lo = xs[(offsets[:-1] + lo_pos).clamp(0, xs.shape[0] - 1)]
    hi = xs[(offsets[:-1] + hi_pos).clamp(0, xs.shape[0] - 1)]
    out = lo + (hi - lo) * _expand(frac.to(xs.dtype), lo)
    return torch.where(_expand(lengths > 0, out), out, torch.zeros_like(out))


#: :func:`segment_value_runs` counts rather than sorts while its histogram has at most this many
#: cells per value
HISTOGRAM_CELLS_PER_VALUE = 2


#: :func:`group_value_runs` counts rather than sorts while its histogram has at most this many
#: cells per value: its key sorts by value only, so the sort wins sooner (measured at 600k
#: flows x K = 20: 0.25 takes ~15 % less time than 2 in ``features.flows``' sizes)
GROUP_HISTOGRAM_CELLS_PER_VALUE = 0.25


def histogram_fits(
    n_seg: int, n_ranks: int, n_values: int, cells_per_value: float | None = None
) -> bool:
    """Whether a (segment, rank) histogram should replace a sort of ``n_values`` values of
    ``n_ranks`` levels in ``n_seg`` segments (it is small enough): at most ``cells_per_value``
    (default :data:`HISTOGRAM_CELLS_PER_VALUE`) cells per value."""
    if cells_per_value is None:
        cells_per_value = HISTOGRAM_CELLS_PER_VALUE
    return n_seg * n_ranks <= cells_per_value * n_values


def segment_value_runs(
    ranks: Tensor, n_ranks: int, offsets: Tensor, ids: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The distinct values of every segment, ascending, and how often each occurs.

    ``ranks`` (N,) are ints in [0, n_ranks) (:func:`dense_ranks`, cached once). Returns the
    (M,) int64 ranks of the runs (ascending within each segment), their (M,) int64 counts, the
    (S+1,) CSR offsets of the runs per segment and the (M,) segment of each run: from a
    (segment, rank) histogram when it is small enough (:func:`histogram_fits`), else from one
    integer sort. Every order statistic, distinct count or frequency of a segment reads them.
    """
    if _kernels.enabled(ranks):
        return _kernels.segment_value_runs(ranks, n_ranks, offsets)
    n_seg = offsets.numel() - 1
    ids = segment_ids(offsets, ranks.shape[0]) if ids is None else ids
    if histogram_fits(n_seg, n_ranks, ranks.numel()):
        histogram = torch.bincount(ids * n_ranks + ranks, minlength=n_seg * n_ranks)
        cells = nonzero(histogram > 0)
        width = max(n_ranks, 1)
        run_seg, level, counts = cells // width, cells % width, histogram[cells]
    else:
        ordered = segment_sort_codes(ranks, n_ranks, ids, n_seg).long()
        runs = run_offsets(ids, ordered)
        run_seg, level, counts = ids[runs[:-1]], ordered[runs[:-1]], runs.diff()
    return level, counts, offsets_from_ids(run_seg, n_seg), run_seg


def group_value_runs(
    ranks: Tensor, n_ranks: int, groups: Tensor, n_groups: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """:func:`segment_value_runs` of records in any order: ``groups`` (N,) ints in
    [0, n_groups) need not be sorted, so a draw's records can stay in bag order.

    The group and the rank share one integer key ``group << b | rank`` (int32 when it fits),
    counted by a histogram (:func:`histogram_fits`, :data:`GROUP_HISTOGRAM_CELLS_PER_VALUE`)
    or sorted by value only; group and rank
    are read back with a shift and a mask. Returns the (M,) int64 ranks and counts of the runs,
    ascending within each group, the (n_groups+1,) CSR offsets of the runs per group, the (M,)
    group of every run and the (n_groups+1,) offsets of the records had they been sorted by
    group (what :func:`segment_runs_stats5` takes as ``offsets``).
    """
    bits = max(n_ranks - 1, 1).bit_length()
    bound = max(n_groups, 1) << bits
    dtype = torch.int32 if bound <= 2**31 else torch.int64
    key = (groups.to(dtype) << bits) | ranks.to(dtype)
    if histogram_fits(n_groups, 1 << bits, ranks.numel(), GROUP_HISTOGRAM_CELLS_PER_VALUE):
        histogram = torch.bincount(key, minlength=bound)
        cells = nonzero(histogram > 0)
        counts = histogram.index_select(0, cells)
    else:
        ordered = sort_values(key, bound)
        runs = run_offsets(ordered)
        cells, counts = ordered.index_select(0, runs[:-1]).long(), runs.diff()
    run_group, level = cells >> bits, cells & ((1 << bits) - 1)
    run_offsets_ = offsets_from_ids(run_group, n_groups)
    ends = offsets_from_lengths(counts)  # (M+1,) records before every run
    return level, counts, run_offsets_, run_group, ends.index_select(0, run_offsets_)


def segment_sort_grid(x: Tensor, offsets: Tensor, quantum: float) -> Tensor:
    """:func:`segment_sort` of float ``x`` (N,) >= 0 on the grid of ``quantum`` (a power of two):
    one integer sort of ``segment << b | x / quantum``, values only, where every value is an
    integer multiple of ``quantum`` and the key fits 63 bits (then exact); otherwise, or for
    negative values, :func:`segment_sort` itself. Time gaps of float timestamps lie on such a
    grid: the spacing of the smallest timestamp (see ``features.flows``)."""
    n_seg = offsets.numel() - 1
    if x.numel() == 0:
        return x
    steps = x / quantum  # exact: a power-of-two scale
    bits = max(n_seg - 1, 1).bit_length()
    low, top = (float(v) for v in torch.aminmax(steps))
    if not 0.0 <= low <= top < 2.0 ** (63 - bits):  # also False for NaN
        return segment_sort(x, offsets)
    whole = steps.long()
    if not bool((whole == steps).all()):
        return segment_sort(x, offsets)
    shift = max(int(top), 1).bit_length()
    ids = repeat(torch.arange(n_seg, device=x.device), offsets.diff(), x.numel())
    ordered = sort_values((ids << shift) | whole, n_seg << shift).long()
    return (ordered & ((1 << shift) - 1)).to(x.dtype) * quantum


def gather_columns(block: Tensor, rows: Tensor) -> Tensor:
    """(F, R) the columns of ``block`` (F, N) at ``rows`` (R,): one gather, one contiguous
    block (numpy's ``take`` on the CPU, several times faster than torch's ``index_select``
    along dim 1 there)."""
    if on_host(block):
        return torch.from_numpy(np.take(block.numpy(), rows.numpy(), axis=1))
    return block.index_select(1, rows)


def _runs_quantile(values: Tensor, counts: Tensor, offsets: Tensor, q: float) -> Tensor:
    """(S,) :func:`segment_quantile` of segments (``offsets`` over the records) given by their
    runs (:func:`segment_value_runs`): the two middle positions fall in runs found by one
    searchsorted over the cumulative counts."""
    lengths = offsets.diff()
    if values.numel() == 0:
        return values.new_zeros(lengths.numel())
    lo_pos, hi_pos, frac = quantile_positions(lengths, q)
    ends = counts.cumsum(0)  # (M,) records up to the end of every run
    at = torch.searchsorted(ends, offsets[:-1, None] + torch.stack([lo_pos, hi_pos], 1), right=True)
    lo, hi = values[at.clamp(max=values.numel() - 1)].unbind(1)
    out = lo + (hi - lo) * frac.to(values.dtype)
    return torch.where(lengths > 0, out, torch.zeros_like(out))


def segment_runs_stats5(
    values: Tensor, counts: Tensor, run_offsets: Tensor, run: Tensor, offsets: Tensor
) -> Tensor:
    """(S, 5) float64 mean, population std, min, max, median of segments given by their runs:
    ``values`` (M,) ascending within each segment, ``counts`` (M,), ``run_offsets`` (S+1,) and
    ``run`` (M,) as :func:`segment_value_runs` returns them, ``offsets`` (S+1,) over the
    records. One pass over the runs per statistic, none over the records; empty give 0."""
    values = _as_float(values)
    weight, n = counts.to(values.dtype), offsets.diff().clamp(min=1).to(values.dtype)
    mean = segment_sum(values * weight, run_offsets) / n
    var = segment_sum((values - mean.index_select(0, run)) ** 2 * weight, run_offsets) / n
    low, high = segment_first(values, run_offsets), segment_last(values, run_offsets)
    median = _runs_quantile(values, counts, offsets, 0.5)
    return torch.stack([mean, var.sqrt(), low, high, median], 1)


def segment_quantile_ranked(
    ranks: Tensor, uniques: Tensor, offsets: Tensor, q: float, ids: Tensor | None = None
) -> Tensor:
    """:func:`segment_quantile` of ``uniques[ranks]`` without a float sort: (S,) float.

    ``ranks`` (N,) int64 index the ascending distinct values ``uniques`` (U,)
    (:func:`dense_ranks`); the runs of every segment come from :func:`segment_value_runs`.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must lie in [0, 1], got {q}")
    level, counts, _, _ = segment_value_runs(ranks, uniques.numel(), offsets, ids)
    return _runs_quantile(_as_float(uniques)[level], counts, offsets, q)


def segment_median(x: Tensor, offsets: Tensor, sorted_x: Tensor | None = None) -> Tensor:
    """Median per segment (mean of the two middle values for even lengths); empty give 0."""
    return segment_quantile(x, offsets, 0.5, sorted_x)


def segment_runs(x: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """Runs of equal values after sorting each segment of a 1-d ``x``.

    Returns ``(run_segment, run_length)``, both (U,) int64: one entry per distinct value of
    every segment, in segment order. Their counts are the segment's value frequencies.
    """
    if x.dim() != 1:
        raise ValueError("segment_runs takes a 1-d tensor")
    ids = segment_ids(offsets, x.shape[0])
    runs = run_offsets(ids, segment_sort(x, offsets, ids))
    return ids[runs[:-1]], runs.diff()


def segment_nunique(x: Tensor, offsets: Tensor) -> Tensor:
    """(S,) int64 number of distinct values per segment of a 1-d ``x``; empty give 0."""
    run_segment, _ = segment_runs(x, offsets)
    return torch.bincount(run_segment, minlength=offsets.numel() - 1)


def segment_mode_share(x: Tensor, offsets: Tensor) -> Tensor:
    """(S,) float64 share of the most frequent value per segment of a 1-d ``x``; empty give 0."""
    run_segment, run_length = segment_runs(x, offsets)
    n_seg = offsets.numel() - 1
    top = torch.zeros(n_seg, dtype=torch.int64, device=x.device)
    top.scatter_reduce_(0, run_segment, run_length, reduce="amax", include_self=True)
    return top.to(torch.float64) / offsets.diff().clamp(min=1).to(torch.float64)


def segment_bincount(codes: Tensor, offsets: Tensor, n_bins: int) -> Tensor:
    """(S, n_bins) int64 counts of integer ``codes`` in ``[0, n_bins)`` per segment."""
    ids = segment_ids(offsets, codes.shape[0])
    n_seg = offsets.numel() - 1
    return torch.bincount(ids * n_bins + codes, minlength=n_seg * n_bins).view(n_seg, n_bins)


def segment_histogram(x: Tensor, offsets: Tensor, edges: Tensor) -> Tensor:
    """(S, len(edges)-1) int64 histogram counts per segment of a 1-d ``x``.

    Bins are ``[edges[i], edges[i+1])``, the last one closed; values outside the edges are
    clamped into the first or last bin.
    """
    n_bins = edges.numel() - 1
    codes = torch.bucketize(_as_float(x), edges[1:-1].to(_as_float(x).dtype), right=True)
    return segment_bincount(codes.clamp(0, n_bins - 1), offsets, n_bins)


def segment_diff(x: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
    """Differences of consecutive values within each segment.

    Returns ``(diffs, diff_offsets)``: (N - S_nonempty,) values and (S+1,) offsets, segment
    ``s`` holding ``max(length_s - 1, 0)`` differences.
    """
    diff_offsets = offsets_from_lengths((offsets.diff() - 1).clamp(min=0))
    if x.dim() == 1 and _kernels.enabled(x):
        return _kernels.segment_diff(x, offsets), diff_offsets
    if x.shape[0] < 2:
        return x[:0], diff_offsets
    ids = segment_ids(offsets, x.shape[0])
    keep = ids[1:] == ids[:-1]
    return (x[1:] - x[:-1])[keep], diff_offsets


def csr_gather(offsets: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of the segments ``index`` (in that order) and their new offsets.

    Returns ``(rows, new_offsets)``: ``rows`` (R,) int64 positions into the values,
    ``new_offsets`` (len(index)+1,).
    """
    lengths = offsets.diff()[index]
    return expand_ranges(offsets[:-1][index], lengths), offsets_from_lengths(lengths)


def expand_ranges(first: Tensor, length: Tensor) -> Tensor:
    """(sum(length),) int64 concatenation of ``first[i] + arange(length[i])``."""
    total = int(length.sum())
    starts = torch.cumsum(length, 0) - length
    return torch.arange(total, device=first.device) + torch.repeat_interleave(
        first - starts, length, output_size=total
    )


def offsets_from_lengths(lengths: Tensor) -> Tensor:
    """(S+1,) int64 CSR offsets of segments of ``lengths`` (S,)."""
    offsets = torch.zeros(lengths.numel() + 1, dtype=torch.int64, device=lengths.device)
    offsets[1:] = lengths.cumsum(0)
    return offsets


def offsets_from_ids(ids: Tensor, n_seg: int) -> Tensor:
    """(S+1,) int64 CSR offsets of values whose non-decreasing segment index is ``ids``."""
    return torch.searchsorted(ids, torch.arange(n_seg + 1, device=ids.device, dtype=ids.dtype))


def run_starts(*keys: Tensor) -> Tensor:
    """(N,) bool: True where any of the equal-length 1-d ``keys`` differs from the previous one."""
    start = torch.ones(keys[0].numel(), dtype=torch.bool, device=keys[0].device)
    if keys[0].numel() > 1:
        torch.ne(keys[0][1:], keys[0][:-1], out=start[1:])
        for key in keys[1:]:
            start[1:] |= key[1:] != key[:-1]
    return start


def run_offsets(*keys: Tensor) -> Tensor:
    """(U+1,) int64 CSR offsets of the runs of equal consecutive ``keys`` (see :func:`run_starts`).

    ``offsets[:-1]`` are the runs' first positions, ``offsets.diff()`` their lengths and
    :func:`segment_ids` the run of every position.
    """
    starts = nonzero(run_starts(*keys))
    return torch.cat([starts, starts.new_full((1,), keys[0].numel())])


def chunk_bounds(sizes: Tensor, budget: int, allowed: Tensor | None = None) -> list[int]:
    """Cut points ``0 = c0 < c1 < ... = n`` of ``sizes`` (n,) into chunks of about ``budget``.

    A chunk starts where the running total of ``sizes`` enters a new multiple of ``budget``,
    at the first position there where ``allowed`` (n,) bool is True (default: anywhere); a
    chunk exceeds the budget only by what cannot be cut.
    """
    n = sizes.numel()
    at = torch.arange(n, device=sizes.device) if allowed is None else nonzero(allowed)
    bucket = torch.div((torch.cumsum(sizes, 0) - sizes)[at], budget, rounding_mode="floor")
    cuts = at[run_starts(bucket)].tolist()
    return sorted({0, *cuts, n})
