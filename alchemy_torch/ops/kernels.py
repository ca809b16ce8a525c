"""Compiled (numba) kernels for the passes numpy cannot fuse, on CPU tensors.

Each kernel does in one compiled loop what the torch/numpy code of its caller does in several
vectorised passes; the caller keeps that code as the path for CUDA tensors, for
:func:`~alchemy_torch.ops.segment.device_branches` and for machines without numba, and the
tests hold both equal value by value. :func:`enabled` says whether a CPU tensor takes the
kernel; :func:`compiled_kernels` (or ``ALCHEMY_TORCH_KERNELS=0``) switches them off.

The kernels are compiled on first use (numba ``cache=True``: once per machine, then loaded
from ``__pycache__``) and run on one thread. :func:`compiled` compiles kernels of other
modules the same way (:mod:`alchemy_torch.features.flows_kernel`: whole feature groups).
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from functools import cache
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

import alchemy_torch.ops.segment as _segment

__all__ = [
    "KERNELS_ENV",
    "available",
    "compiled_kernels",
    "enabled",
    "compiled",
    "band_split",
    "select_smallest_keys",
    "segment_value_runs",
    "segment_diff",
]

#: Environment variable: ``0`` starts with the compiled kernels off (the numpy/torch paths)
KERNELS_ENV = "ALCHEMY_TORCH_KERNELS"
_on = os.environ.get(KERNELS_ENV, "1") not in ("", "0")


@cache
def available() -> bool:
    """Whether numba is installed (the kernels can be compiled)."""
    return importlib.util.find_spec("numba") is not None


@contextmanager
def compiled_kernels(on: bool = True) -> Iterator[None]:
    """Within the block, CPU tensors take the compiled kernels (``on``) or the numpy/torch
    paths (``not on``). Process-wide."""
    global _on
    before, _on = _on, on
    try:
        yield
    finally:
        _on = before


def enabled(x: Tensor) -> bool:
    """Whether ``x`` takes a compiled kernel: on the host
    (:func:`~alchemy_torch.ops.segment.on_host`), numba present, kernels on."""
    return _on and _segment.on_host(x) and available()


def _band_split(keys, cand_offsets, low, high, band):
    """The loop of :func:`band_split` (numba-compiled, numpy arrays); ``band`` (E+1,) out."""
    n_draws = low.size
    below, inside = np.zeros(n_draws, np.int64), np.zeros(n_draws, np.int64)
    n_band = 0
    for d in range(n_draws):
        lo, hi = np.int64(low[d]), np.int64(high[d])
        taken, first_band = 0, n_band
        for i in range(cand_offsets[d], cand_offsets[d + 1]):
            key = keys[i]
            taken += key < lo
            band[n_band] = i
            n_band += (key >= lo) & (key <= hi)
        below[d], inside[d] = taken, n_band - first_band
    return below, inside, n_band


def _select_smallest_keys(
    keys, cand_offsets, low, band, band_offsets, need, tie, first, out_offsets, out
):
    """The loop of :func:`select_smallest_keys` (numba-compiled, numpy arrays); ``out``
    (sum m + 1,)."""
    hist = np.zeros(256, np.int64)
    for d in range(need.size):
        in_band = band[band_offsets[d] : band_offsets[d + 1]]
        band_keys = keys[in_band]
        # the level of the need-th smallest band key, and how many of that level to take
        level, left = np.int64(low[d]), need[d]
        hist[level:] = 0
        for key in band_keys:
            hist[key] += 1
        while left > hist[level]:
            left -= hist[level]
            level += 1
        # the `left` smallest tie-breaks of the level win: rewrite the level's keys so that
        # exactly the winners fall below the cut
        at_level = np.flatnonzero(band_keys == level)
        order = np.argsort(tie[band_offsets[d] + at_level], kind="mergesort")
        at_level, cut = in_band[at_level[order]], max(level, 1)
        keys[at_level[:left]] = max(level - 1, 0)
        keys[at_level[left:]] = cut
        start, w = cand_offsets[d], out_offsets[d]
        row = first[d] - start
        for i in range(start, cand_offsets[d + 1]):
            out[w] = row + i
            w += keys[i] < cut


def _value_runs(ranks, n_ranks, offsets, level, counts, run_offsets, run_seg):
    """The loop of :func:`segment_value_runs` (numba-compiled, numpy arrays); ``level``,
    ``counts``, ``run_seg`` (N,) out, ``run_offsets`` (S+1,) out; returns the runs M."""
    hist = np.zeros(n_ranks, np.int64)
    touched = np.empty(ranks.size + 1, ranks.dtype)  # + 1: branch-free writes run one ahead
    m = 0
    run_offsets[0] = 0
    for s in range(offsets.size - 1):
        values = ranks[offsets[s] : offsets[s + 1]]
        if n_ranks <= 4 * values.size:  # count, then read the levels in order
            for r in values:
                if r < 0 or r >= n_ranks:  # never taken: predicted; guards the writes
                    raise ValueError("ranks must lie in [0, n_ranks)")
                hist[r] += 1
            for r in range(n_ranks):
                if hist[r]:
                    level[m], counts[m], run_seg[m] = r, hist[r], s
                    hist[r] = 0
                    m += 1
        else:  # count, then sort the distinct levels only
            distinct = 0
            for r in values:
                if r < 0 or r >= n_ranks:
                    raise ValueError("ranks must lie in [0, n_ranks)")
                touched[distinct] = r
                distinct += hist[r] == 0
                hist[r] += 1
            for r in np.sort(touched[:distinct]):
                level[m], counts[m], run_seg[m] = r, hist[r], s
                hist[r] = 0
                m += 1
        run_offsets[s + 1] = m
    return m


def _segment_diff(x, offsets, out):
    """The loop of :func:`segment_diff` (numba-compiled, numpy arrays); ``out`` (N,) out."""
    w = 0
    for s in range(offsets.size - 1):
        for i in range(offsets[s] + 1, offsets[s + 1]):
            out[w] = x[i] - x[i - 1]
            w += 1
    return w


def _empty(n: int, dtype=np.int64) -> np.ndarray:
    """(n,) uninitialised, allocated by numpy: it asks for huge pages where the kernel offers
    them (first writes to fresh memory fault per page: 4 KiB pages cost the selection about
    2 ns a candidate here, twice its loop)."""
    return np.empty(n, dtype)


def _shrunk(a: np.ndarray, n: int) -> Tensor:
    """The first ``n`` values of a kernel's output ``a``, the rest of its memory given back
    (a reallocation in place, no copy)."""
    a.resize(n, refcheck=False)
    return torch.from_numpy(a)


_COMPILED: dict[tuple[str, str], object] = {}


def compiled(namespace: dict, name: str, helpers: tuple[str, ...] = ()):
    """The numba-compiled function ``namespace[name]`` (``namespace``: its module's
    ``globals()``), compiled on first use. The module-level functions it calls, ``helpers``,
    are compiled first and take their own names' place in the module (numba resolves the
    calls there); they stay callable from Python."""
    key = (namespace["__name__"], name)
    if key not in _COMPILED:
        import numba

        def jit(function):  # a helper of a kernel compiled before is compiled already
            if isinstance(function, numba.core.registry.CPUDispatcher):
                return function
            return numba.njit(cache=True, nogil=True)(function)

        for helper in helpers:
            namespace[helper] = jit(namespace[helper])
        _COMPILED[key] = jit(namespace[name])
    return _COMPILED[key]


def _compiled(name: str):
    return compiled(globals(), name)


def band_split(keys: Tensor, cand_offsets: Tensor, low: Tensor, high: Tensor):
    """(P,) int64 keys below ``low`` and (P,) int64 keys in the band [``low``, ``high``] of
    every draw, and the (sum band,) int64 positions of the band's keys, ascending.

    ``keys`` (E,) uint8 random keys of the candidates, ``cand_offsets`` (P+1,) their draws,
    ``low``/``high`` (P,) uint8 bounds per draw.
    """
    band = _empty(keys.numel() + 1)
    below, inside, n_band = _compiled("_band_split")(
        keys.numpy(), cand_offsets.numpy(), low.numpy(), high.numpy(), band
    )
    return torch.from_numpy(below), torch.from_numpy(inside), _shrunk(band, n_band)


def select_smallest_keys(
    keys: Tensor,
    cand_offsets: Tensor,
    low: Tensor,
    band: Tensor,
    band_offsets: Tensor,
    need: Tensor,
    tie: Tensor,
    first: Tensor,
    out_offsets: Tensor,
) -> Tensor:
    """(sum m,) int64 ``first[d] + position`` of every chosen candidate of every draw d,
    ascending within a draw: every key below ``low[d]`` and the ``need[d]`` smallest of the
    band by (key, tie-break, position). Overwrites ``keys``.

    ``keys`` (E,) uint8, ``cand_offsets`` (P+1,) int64 the draws' candidates; ``low`` (P,)
    uint8 where the band starts, ``band`` the band's positions and ``band_offsets`` (P+1,)
    each draw's share (:func:`band_split`); ``need`` (P,) int64 (at most the band's size);
    ``tie`` (sum band,) float64 the band's tie-breaks; ``first`` (P,) int64; ``out_offsets``
    (P+1,) int64 (``m`` per draw).
    """
    arrays = (keys, cand_offsets, low, band, band_offsets, need, tie, first, out_offsets)
    out = _empty(int(out_offsets[-1]) + 1)  # + 1: branch-free writes run one ahead
    _compiled("_select_smallest_keys")(*(a.numpy() for a in arrays), out)
    return _shrunk(out, out.size - 1)


def segment_value_runs(ranks: Tensor, n_ranks: int, offsets: Tensor):
    """:func:`~alchemy_torch.ops.segment.segment_value_runs` in one pass per segment: a
    histogram of its ranks, read in rank order where ``n_ranks`` is small against its length,
    else by sorting its distinct ranks only."""
    level, counts, run_seg = (_empty(ranks.numel()) for _ in range(3))
    run_offsets = _empty(offsets.numel())
    m = _compiled("_value_runs")(
        ranks.numpy(), n_ranks, offsets.numpy(), level, counts, run_offsets, run_seg
    )
    return _shrunk(level, m), _shrunk(counts, m), torch.from_numpy(run_offsets), _shrunk(run_seg, m)


def segment_diff(x: Tensor, offsets: Tensor) -> Tensor:
    """(N - S_nonempty,) differences of consecutive values within the segments of a 1-d
    ``x`` (:func:`~alchemy_torch.ops.segment.segment_diff`)."""
    out = _empty(x.numel(), x.numpy().dtype)
    return _shrunk(out, _compiled("_segment_diff")(x.numpy(), offsets.numpy(), out))
