"""Alchemy's resampling: K random subsets (pseudo-bags) of every bag, all targets at once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.ops.segment import (
    CHUNK_RECORDS,
    argsort,
    expand_ranges,
    nonzero,
    offsets_from_lengths,
    segment_ids,
)
from alchemy_torch.params import Params

__all__ = ["Draws", "Resampler", "derive_seed"]

#: Targets are cut into blocks of about this many records; each (iteration, block) has its own
#: random stream, so the draws do not depend on how they are chunked for memory. Part of what a
#: seed means (changing it changes every draw), so it is fixed here, apart from CHUNK_RECORDS.
BLOCK_RECORDS = 1 << 22
#: Half-width of the acceptance band around the expected threshold, in binomial std units.
BAND_SIGMAS = 5.0


def derive_seed(seed: int, *stream: int) -> int:
    """A 63-bit seed for the sub-stream ``stream`` of ``seed`` (numpy SeedSequence)."""
    return int(
        np.random.SeedSequence([int(seed) & (2**63 - 1), *stream]).generate_state(1, np.uint64)[0]
        >> np.uint64(1)
    )


def _generator(device: torch.device, seed: int, *stream: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *stream))


@dataclass
class Draws:
    """Pseudo-bags as CSR over a Bags' records.

    owner: (P,) int64 target index of every draw. offsets: (P+1,) int64. rows: (R,) int64
    indices into the Bags' records, in time order within each draw. iteration: (P,) int64
    resampling iteration of every draw (-1 for the originals).
    """

    owner: Tensor
    offsets: Tensor
    rows: Tensor
    iteration: Tensor

    @classmethod
    def originals(cls, bags: Bags) -> "Draws":
        """The trivial resampling: one draw per target holding all of its records."""
        b = torch.arange(len(bags), device=bags.device)
        return cls(
            owner=b,
            offsets=bags.offsets,
            rows=torch.arange(bags.num_records, device=bags.device),
            iteration=torch.full_like(b, -1),
        )

    def __len__(self) -> int:
        return self.owner.numel()

    @property
    def lengths(self) -> Tensor:
        """(P,) int64 records per draw."""
        return self.offsets.diff()

    def to(self, device) -> "Draws":
        return replace(
            self,
            owner=self.owner.to(device),
            offsets=self.offsets.to(device),
            rows=self.rows.to(device),
            iteration=self.iteration.to(device),
        )

    @classmethod
    def cat(cls, parts: list["Draws"]) -> "Draws":
        """Concatenate draws (e.g. memory chunks) in order."""
        if not parts:
            raise ValueError("nothing to concatenate")
        if len(parts) == 1:
            return parts[0]
        shifts = torch.tensor([0] + [int(p.offsets[-1]) for p in parts[:-1]]).cumsum(0).tolist()
        offsets = torch.cat(
            [parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shifts)]
        )
        return cls(
            owner=torch.cat([p.owner for p in parts]),
            offsets=offsets,
            rows=torch.cat([p.rows for p in parts]),
            iteration=torch.cat([p.iteration for p in parts]),
        )


class Resampler(Params):
    """Draw ``iterations`` random subsets of every bag (METHOD.md §3.1).

    Options: 1 static number (m = ``size``), 2 one ``rate`` for all targets, 3 one random rate
    per target, 4 one random rate per draw (random rates uniform on ``rate_range``). For rates
    m = round(rate * n) (halves up); m is clamped to [min(min_size, n), n].

    ``mode="random"``: a uniform subset of exactly m records, without replacement.
    ``mode="contiguous"``: a random window of m consecutive records in time order.

    ``chunk_records`` bounds the candidate records (sum of the drawn bags' sizes) per chunk of
    :meth:`iter_draws`; the smallest chunk is one work unit (a block of about BLOCK_RECORDS
    records, or one larger bag). Working memory is about 20 bytes per candidate record plus the
    drawn rows. Chunking never changes the draws.
    """

    OPTIONS = (1, 2, 3, 4)
    MODES = ("random", "contiguous")

    def __init__(
        self,
        option: int,
        iterations: int = 20,
        size: int = 30,
        rate: float = 0.5,
        rate_range: tuple[float, float] = (0.2, 0.8),
        mode: str = "random",
        min_size: int = 2,
        chunk_records: int = CHUNK_RECORDS,
    ):
        if option not in self.OPTIONS:
            raise ValueError(f"option must be one of {self.OPTIONS}, got {option!r}")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if size < 1 or min_size < 1:
            raise ValueError(f"size and min_size must be >= 1, got {size}, {min_size}")
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"rate must lie in (0, 1], got {rate}")
        low, high = map(float, rate_range)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"rate_range must satisfy 0 < low <= high <= 1, got {rate_range}")
        if chunk_records < 1:
            raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
        self.option, self.iterations, self.size, self.rate = option, iterations, size, rate
        self.rate_range, self.mode, self.min_size = rate_range, mode, min_size
        self.chunk_records = chunk_records

    # ------------------------------------------------------------------ sizes
    def subset_sizes(self, lengths: Tensor, seed: int) -> Tensor:
        """(B, K) int64 subset size of every draw for bags of ``lengths`` (B,)."""
        n_bags, k = lengths.numel(), self.iterations
        n = lengths.to(torch.float64).unsqueeze(1).expand(n_bags, k)
        if self.option == 1:
            m = torch.full_like(n, float(self.size))
        else:
            if self.option == 2:
                rate = torch.full_like(n, float(self.rate))
            else:
                shape = (n_bags, 1) if self.option == 3 else (n_bags, k)
                low, high = map(float, self.rate_range)
                # drawn on the CPU so that every device gets the same subset sizes
                gen = _generator(torch.device("cpu"), seed, 0)
                rate = low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)
                rate = rate.to(lengths.device).expand(n_bags, k)
            m = torch.floor(rate * n + 0.5)
        m = torch.maximum(m, torch.minimum(n, torch.full_like(n, float(self.min_size))))
        return torch.minimum(m, n).long()

    # ------------------------------------------------------------------ draws
    def draw(self, bags: Bags, seed: int) -> Draws:
        """All B * iterations draws; ``owner`` and ``iteration`` say whose each one is."""
        return Draws.cat(list(self.iter_draws(bags, seed)))

    def iter_draws(self, bags: Bags, seed: int) -> Iterator[Draws]:
        """The draws of :meth:`draw` in memory-bounded chunks of whole (block, iterations) units."""
        offsets = bags.offsets
        sizes = self.subset_sizes(offsets.diff(), seed)
        record_target = segment_ids(offsets).int() if self.mode == "random" else None
        chunk: list[Draws] = []
        records = 0
        for k0, k1, blk, t0, t1, unit_records in _units(offsets.cpu(), self.iterations):
            if chunk and records + unit_records > self.chunk_records:
                yield Draws.cat(chunk)
                chunk, records = [], 0
            gen = _generator(offsets.device, seed, 1, blk, k0)
            chunk.append(self._draw_unit(offsets, record_target, sizes, k0, k1, t0, t1, gen))
            records += unit_records
        if chunk:
            yield Draws.cat(chunk)

    def _draw_unit(
        self,
        offsets: Tensor,
        record_target: Tensor | None,
        sizes: Tensor,
        k0: int,
        k1: int,
        t0: int,
        t1: int,
        gen: torch.Generator,
    ) -> Draws:
        """Draws of iterations k0..k1-1 for targets t0..t1-1 (whose records are contiguous)."""
        device = offsets.device
        repeats = k1 - k0
        owner = torch.arange(t0, t1, device=device).repeat(repeats)
        iteration = torch.arange(k0, k1, device=device).repeat_interleave(t1 - t0)
        m = sizes[owner, iteration]
        n = offsets[owner + 1] - offsets[owner]
        if self.mode == "contiguous":
            u = torch.rand(owner.numel(), generator=gen, device=device, dtype=torch.float64)
            window = torch.minimum(torch.floor(u * (n - m + 1).to(torch.float64)).long(), n - m)
            rows, draw_offsets = _windows(offsets[owner] + window, m)
        else:
            r0, r1 = int(offsets[t0]), int(offsets[t1])
            if repeats == 1:  # the common large-data case: candidates are the rows themselves
                rows = _smallest_keys(n, m, record_target[r0:r1], t0, gen).add_(r0)
            else:
                local = record_target[r0:r1] - t0
                draw_of = torch.cat([local + j * (t1 - t0) for j in range(repeats)])
                positions = _smallest_keys(n, m, draw_of, 0, gen)
                cand_start = torch.cumsum(n, 0) - n
                rows = positions + (offsets[owner] - cand_start).repeat_interleave(
                    m, output_size=positions.numel()
                )
            draw_offsets = offsets_from_lengths(m)
        return Draws(owner=owner, offsets=draw_offsets, rows=rows, iteration=iteration)


# ---------------------------------------------------------------------- kernels
def _units(offsets: Tensor, iterations: int) -> list[tuple[int, int, int, int, int, int]]:
    """(first iteration, end iteration, block, first target, end target, candidates) work units.

    Targets are cut into blocks of about BLOCK_RECORDS records; a small block takes several
    iterations at once so that small data does not pay per-iteration overhead.
    """
    starts = offsets[:-1]
    block_of = torch.div(starts, BLOCK_RECORDS, rounding_mode="floor")
    _, counts = torch.unique_consecutive(block_of, return_counts=True)
    bounds = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)]).tolist()
    units = []
    for blk in range(len(bounds) - 1):
        t0, t1 = bounds[blk], bounds[blk + 1]
        records = int(offsets[t1] - offsets[t0])
        group = max(1, BLOCK_RECORDS // max(records, 1))
        for k0 in range(0, iterations, group):
            k1 = min(k0 + group, iterations)
            units.append((k0, k1, blk, t0, t1, records * (k1 - k0)))
    return units


def _windows(first_rows: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """Rows ``first_rows[d] + arange(m[d])`` for every draw d, and their (P+1,) offsets."""
    return expand_ranges(first_rows, m), offsets_from_lengths(m)


def _smallest_keys(
    n: Tensor, m: Tensor, draw_of: Tensor, first: int, gen: torch.Generator
) -> Tensor:
    """Positions of a uniform m[d]-subset of draw d's n[d] candidates, ascending; (sum m,) int64.

    Candidates of draw d are contiguous; ``draw_of`` (E,) gives each candidate's draw plus
    ``first``. Every candidate gets a random 8-bit key and the m smallest keys win (ties
    broken by a second random key), which is a uniform subset. Instead of sorting, keys below
    the expected threshold t = m/n minus a ``BAND_SIGMAS`` band are taken outright and only the
    few keys inside the band are sorted. A draw whose band misses its m-th key (about 1e-9 of
    draws) falls back to a band covering every key. Exact either way.
    """
    device = n.device
    n_cand = draw_of.numel()
    words = torch.empty((n_cand + 7) // 8, dtype=torch.int64, device=device).random_(
        -(2**63), 2**63 - 1, generator=gen
    )
    keys = words.view(torch.uint8)[:n_cand]
    cand_offsets = offsets_from_lengths(n)
    nf = n.to(torch.float64).clamp(min=1)
    t = m.to(torch.float64) / nf
    delta = (BAND_SIGMAS * torch.sqrt(nf * t * (1 - t)) + 2.0) / nf
    # key < low: taken; low <= key <= high: in the band (keys are uniform on [0, 256))
    low = torch.floor((t - delta).clamp(0, 1) * 256).clamp(0, 255)
    high = torch.floor((t + delta).clamp(0, 1) * 256).clamp(0, 255)
    low = torch.where(m >= n, torch.full_like(low, 255), low)
    high = torch.where(m >= n, torch.full_like(high, 255), high)
    count_dtype = torch.float32 if n_cand < 2**24 else torch.float64

    def split(low: Tensor, high: Tensor):
        # one gather of (low, high) byte pairs; the table is indexed by draw + first
        packed = torch.stack([low, high], 1).to(torch.uint8).view(torch.int16).squeeze(1)
        bounds = F.pad(packed, (first, 0)).index_select(0, draw_of).view(torch.uint8)
        low_k, high_k = bounds[0::2], bounds[1::2]
        taken = keys < low_k
        band = nonzero((keys >= low_k) & (keys <= high_k))
        n_taken = torch.segment_reduce(
            taken.to(count_dtype), "sum", offsets=cand_offsets, unsafe=True, initial=0.0
        )
        n_band = torch.bincount(draw_of[band].long() - first, minlength=n.numel())
        return taken, band, m - n_taken.round().long(), n_band

    taken, band, need, n_band = split(low, high)
    failed = (need < 0) | (need > n_band)
    if bool(failed.any()):
        taken, band, need, n_band = split(
            torch.where(failed, torch.zeros_like(low), low),
            torch.where(failed, torch.full_like(high, 255), high),
        )
    band_draw = draw_of[band].long() - first
    tie_break = torch.rand(band.numel(), generator=gen, device=device, dtype=torch.float64)
    sort_key = band_draw.to(torch.float64) + (keys[band].to(torch.float64) + tie_break) / 512
    order = argsort(sort_key)
    band, band_draw = band[order], band_draw[order]
    band_start = offsets_from_lengths(n_band)
    rank = torch.arange(band.numel(), device=device) - band_start[band_draw]
    taken[band[rank < need[band_draw]]] = True
    return nonzero(taken)
