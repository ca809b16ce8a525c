"""Compiled (numba) kernels for the passes numpy cannot fuse, on CPU tensors.

Each kernel does in one compiled loop what the torch/numpy code of its caller does in several
vectorised passes; the caller keeps that code as the path for CUDA tensors, for
:func:`~alchemy_torch.ops.segment.device_branches` and for machines without numba, and the
tests hold both equal value by value. :func:`enabled` says whether a CPU tensor takes the
kernel; :func:`compiled_kernels` (or ``ALCHEMY_TORCH_KERNELS=0``) switches them off.

The kernels are compiled on first use (numba ``cache=True``: once per machine, then loaded
from ``__pycache__``) and run on one thread.
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

from alchemy_torch.ops.segment import on_host

__all__ = [
    "KERNELS_ENV",
    "available",
    "compiled_kernels",
    "enabled",
    "band_split",
    "select_smallest_keys",
]

#: Environment variable: ``0`` starts with the compiled kernels off (the numpy/torch paths)
KERNELS_ENV = "ALCHEMY_TORCH_KERNELS"
_on = os.environ.get(KERNELS_ENV, "1") not in ("", "0")


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
    """Whether ``x`` takes a compiled kernel: on the host (:func:`on_host`), numba present,
    kernels on."""
    return _on and on_host(x) and available()


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


def _empty(n: int) -> np.ndarray:
    """(n,) int64 uninitialised, allocated by numpy: it asks for huge pages where the kernel
    offers them (first writes to fresh memory fault per page: 4 KiB pages cost the selection
    about 2 ns a candidate here, twice its loop)."""
    return np.empty(n, np.int64)


@cache
def _compiled(name: str):
    import numba

    return numba.njit(cache=True, nogil=True)(globals()[name])


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
    return torch.from_numpy(below), torch.from_numpy(inside), torch.from_numpy(band[:n_band])


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
    uint8 where the band starts, ``band`` the
    band's positions and ``band_offsets`` (P+1,) each draw's share (:func:`band_split`);
    ``need`` (P,) int64 (at most the band's size); ``tie`` (sum band,) float64 the band's
    tie-breaks; ``first`` (P,) int64; ``out_offsets`` (P+1,) int64 (``m`` per draw).
    """
    arrays = (keys, cand_offsets, low, band, band_offsets, need, tie, first, out_offsets)
    out = _empty(int(out_offsets[-1]) + 1)  # + 1: branch-free writes run one ahead
    _compiled("_select_smallest_keys")(*(a.numpy() for a in arrays), out)
    return torch.from_numpy(out[:-1])
