"""Alchemy's resampling: K random subsets (pseudo-bags) of every bag, all targets at once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.ops import kernels
from alchemy_torch.ops.segment import (
    CHUNK_RECORDS,
    concat,
    csr_gather,
    expand_ranges,
    nonzero,
    offsets_from_lengths,
    repeat,
    stable_argsort,
)
from alchemy_torch.params import Params

__all__ = ["STREAM_BUCKETS", "Draws", "Resampler", "bucket_of", "derive_seed"]

#: Targets fall into this many buckets by a hash of their name (:func:`bucket_of`), and every
#: random number of a draw comes from its bucket's streams: a target's draws depend on the seed
#: and its bucket's targets only, never on which other buckets are drawn with it (a partition
#: of whole buckets draws exactly as the whole corpus does). Part of what a seed means.
STREAM_BUCKETS = 1024
#: A bucket takes max(1, BLOCK_RECORDS // its records) iterations per random stream, so that
#: small data does not pay per-iteration overhead and memory is chunked without changing the
#: draws. Part of what a seed means (changing it changes every draw), apart from CHUNK_RECORDS.
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


#: stream ids: (seed, _RATES, bucket) the random rates of options 3 and 4; (seed, _DRAWS,
#: bucket, first iteration) the keys, tie-breaks and windows of a bucket's iteration group
_RATES, _DRAWS = 0, 1


def bucket_of(names) -> np.ndarray:
    """(B,) int64 stream bucket of each target name: a stable hash of its utf-8 text (the same
    on every machine and run, ``pandas.util.hash_array``) modulo :data:`STREAM_BUCKETS`."""
    names = np.asarray(names, dtype=object).astype(str).astype(object)
    hashes = pd.util.hash_array(names, categorize=True)
    return (hashes % np.uint64(STREAM_BUCKETS)).astype(np.int64)


def _buckets(bags: Bags) -> Tensor:
    """(B,) int64 :func:`bucket_of` the Bags' targets, on the CPU, computed once per Bags."""
    return bags.cached("resample.buckets", lambda: torch.from_numpy(bucket_of(bags.targets)))


@dataclass
class Draws:
    """Pseudo-bags as CSR over a Bags' records.

    owner: (P,) int64 target index of every draw. offsets: (P+1,) int64. rows: (R,) int64
    indices into the Bags' records, each within its draw's owner's bag (a pseudo-bag is drawn
    from its own bag: the compiled flow features read per-bag codes and refuse other rows),
    in time order within each draw. iteration: (P,) int64 resampling iteration of every draw
    (-1 for the originals).
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

    def take(self, index: Tensor) -> "Draws":
        """The draws at positions ``index`` (P',), in that order."""
        rows, offsets = csr_gather(self.offsets, index)
        return Draws(self.owner[index], offsets, self.rows[rows], self.iteration[index])

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
        offsets = concat(
            [parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shifts)]
        )
        return cls(
            owner=concat([p.owner for p in parts]),
            offsets=offsets,
            rows=concat([p.rows for p in parts]),
            iteration=concat([p.iteration for p in parts]),
        )


class Resampler(Params):
    """Draw ``iterations`` random subsets of every bag (METHOD.md §3.1).

    Options: 1 static number (m = ``size``), 2 one ``rate`` for all targets, 3 one random rate
    per target, 4 one random rate per draw (random rates uniform on ``rate_range``). For rates
    m = round(rate * n) (halves up); m is clamped to [min(min_size, n), n].

    ``mode="random"``: a uniform subset of exactly m records, without replacement.
    ``mode="contiguous"``: a random window of m consecutive records in time order.

    Randomness: every random number comes from the streams of the target's bucket
    (:func:`bucket_of`), targets in Bags order within it, so a target's draws depend on the seed
    and on the targets of its bucket only: drawing any set of whole buckets (e.g. one partition
    of :mod:`alchemy_torch.scale`) gives each of its targets the draws of the whole corpus.

    ``chunk_records`` bounds the candidate records (sum of the drawn bags' sizes) per chunk of
    :meth:`iter_draws`; the smallest chunk is one work unit (buckets of about BLOCK_RECORDS
    candidates together, or one larger bucket's iteration). Working memory is about 20 bytes
    per candidate record plus the drawn rows. Chunking never changes the draws.
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
    def subset_sizes(self, lengths: Tensor, buckets: Tensor, seed: int) -> Tensor:
        """(B, K) int64 subset size of every draw for bags of ``lengths`` (B,) whose targets are
        in stream ``buckets`` (B,) (:func:`bucket_of`; the random rates of options 3 and 4)."""
        n_bags, k = lengths.numel(), self.iterations
        n = lengths.to(torch.float64).unsqueeze(1).expand(n_bags, k)
        if self.option == 1:
            m = torch.full_like(n, float(self.size))
        else:
            if self.option == 2:
                rate = torch.full_like(n, float(self.rate))
            else:
                low, high = map(float, self.rate_range)
                layout = _BucketLayout.of(buckets.cpu(), lengths.cpu())
                u = _bucket_uniforms(layout, 1 if self.option == 3 else k, seed)
                rate = (low + (high - low) * u).to(lengths.device).expand(n_bags, k)
            m = torch.floor(rate * n + 0.5)
        m = torch.maximum(m, torch.minimum(n, torch.full_like(n, float(self.min_size))))
        return torch.minimum(m, n).long()

    # ------------------------------------------------------------------ draws
    def draw(self, bags: Bags, seed: int) -> Draws:
        """All B * iterations draws; ``owner`` and ``iteration`` say whose each one is."""
        return Draws.cat(list(self.iter_draws(bags, seed)))

    def iter_draws(self, bags: Bags, seed: int) -> Iterator[Draws]:
        """The draws of :meth:`draw` in memory-bounded chunks of whole work units."""
        buckets = _buckets(bags)
        sizes = self.subset_sizes(bags.lengths, buckets, seed)
        layout = _BucketLayout.of(buckets, bags.lengths.cpu())
        chunk: list[_Item] = []  # whole units, drawn together (one call, no concatenation)
        records = 0
        for unit in _units(layout.items(self.iterations)):
            unit_records = sum(item.candidates for item in unit)
            if chunk and records + unit_records > self.chunk_records:
                yield self._draw_items(bags.offsets, sizes, layout, chunk, seed)
                chunk, records = [], 0
            chunk.extend(unit)
            records += unit_records
        if chunk:
            yield self._draw_items(bags.offsets, sizes, layout, chunk, seed)

    def _draw_items(
        self, offsets: Tensor, sizes: Tensor, layout: _BucketLayout, items: list[_Item], seed: int
    ) -> Draws:
        """Draws of the items: per item its bucket's targets (Bags order) x its iterations,
        iteration-major; every random number from the item's own stream."""
        device = offsets.device
        owner, iteration = layout.draws(items)
        owner, iteration = owner.to(device), iteration.to(device)
        gens = [_generator(device, seed, _DRAWS, item.bucket, item.k0) for item in items]
        item_draws = [item.draws for item in items]
        m = sizes[owner, iteration]
        n = offsets[owner + 1] - offsets[owner]
        if self.mode == "contiguous":
            u = _uniforms(gens, item_draws, device)
            window = torch.minimum(torch.floor(u * (n - m + 1).to(torch.float64)).long(), n - m)
            rows, draw_offsets = _windows(offsets[owner] + window, m)
        else:
            keys = _random_bytes(gens, [item.candidates for item in items], device)
            item_start = torch.tensor([0, *item_draws], device=device).cumsum(0)

            def tie_breaks(n_band: Tensor) -> Tensor:
                # every item's draws are contiguous: its band candidates are too
                counts = offsets_from_lengths(n_band)[item_start].diff()
                return _uniforms(gens, counts.tolist(), device)

            rows = _smallest_keys(n, m, keys, tie_breaks, offsets[owner])
            draw_offsets = offsets_from_lengths(m)
        return Draws(owner=owner, offsets=draw_offsets, rows=rows, iteration=iteration)


# ---------------------------------------------------------------------- streams
@dataclass(frozen=True)
class _Item:
    """Iterations k0..k1-1 of one bucket's targets: one random stream."""

    bucket: int
    k0: int
    k1: int
    draws: int  # targets in the bucket * (k1 - k0)
    candidates: int  # records in the bucket * (k1 - k0)


@dataclass
class _BucketLayout:
    """Targets grouped by stream bucket (B targets, on the CPU).

    by_bucket: (B,) int64 target indices sorted by bucket, Bags order within a bucket.
    starts: (STREAM_BUCKETS+1,) int64 CSR pointer into ``by_bucket``. records: (STREAM_BUCKETS,)
    int64 records per bucket.
    """

    by_bucket: Tensor
    starts: Tensor
    records: Tensor

    @classmethod
    def of(cls, buckets: Tensor, lengths: Tensor) -> "_BucketLayout":
        """Layout of targets in ``buckets`` (B,) with ``lengths`` (B,) records."""
        records = torch.zeros(STREAM_BUCKETS, dtype=torch.int64).index_add_(0, buckets, lengths)
        return cls(
            by_bucket=torch.argsort(buckets, stable=True),
            starts=offsets_from_lengths(torch.bincount(buckets, minlength=STREAM_BUCKETS)),
            records=records,
        )

    def items(self, iterations: int) -> list[_Item]:
        """The streams of every bucket that holds targets, by bucket then first iteration; a
        bucket takes max(1, BLOCK_RECORDS // its records) iterations per stream."""
        targets = self.starts.diff()
        items = []
        for bucket in nonzero(targets > 0).tolist():
            records = int(self.records[bucket])
            group = max(1, BLOCK_RECORDS // max(records, 1))
            for k0 in range(0, iterations, group):
                k1 = min(k0 + group, iterations)
                repeats = k1 - k0
                items.append(
                    _Item(bucket, k0, k1, int(targets[bucket]) * repeats, records * repeats)
                )
        return items

    def draws(self, unit: list[_Item]) -> tuple[Tensor, Tensor]:
        """(P,) owner and (P,) iteration of the unit's draws, item by item, iteration-major."""
        owners, iterations = [], []
        for item in unit:
            targets = self.by_bucket[self.starts[item.bucket] : self.starts[item.bucket + 1]]
            owners.append(targets.repeat(item.k1 - item.k0))
            iterations.append(torch.arange(item.k0, item.k1).repeat_interleave(targets.numel()))
        return concat(owners), concat(iterations)


def _units(items: list[_Item]) -> list[list[_Item]]:
    """Consecutive items batched up to BLOCK_RECORDS candidates (a larger item alone)."""
    units: list[list[_Item]] = []
    candidates = 0
    for item in items:
        if units and candidates + item.candidates <= BLOCK_RECORDS:
            units[-1].append(item)
            candidates += item.candidates
        else:
            units.append([item])
            candidates = item.candidates
    return units


def _bucket_uniforms(layout: _BucketLayout, columns: int, seed: int) -> Tensor:
    """(B, columns) float64 uniforms on [0, 1) on the CPU: bucket b's targets, in Bags order,
    take the rows of stream (seed, _RATES, b)."""
    counts = layout.starts.diff()
    present = nonzero(counts > 0).tolist()
    gens = [_generator(torch.device("cpu"), seed, _RATES, b) for b in present]
    out = torch.empty((layout.by_bucket.numel(), columns), dtype=torch.float64)
    if present:
        drawn = [
            torch.rand((int(counts[b]), columns), generator=g, dtype=torch.float64)
            for b, g in zip(present, gens)
        ]
        out[layout.by_bucket] = torch.cat(drawn)  # (targets in bucket, columns) blocks
    return out


def _uniforms(gens: list[torch.Generator], counts: list[int], device) -> Tensor:
    """(sum counts,) float64 uniforms on [0, 1): counts[i] of them from gens[i], in order."""
    parts = [
        torch.rand(c, generator=g, device=device, dtype=torch.float64) for g, c in zip(gens, counts)
    ]
    return parts[0] if len(parts) == 1 else concat(parts)


def _random_bytes(gens: list[torch.Generator], counts: list[int], device) -> Tensor:
    """(sum counts,) uint8 uniform random bytes: counts[i] of them from gens[i] (drawn as
    64-bit words, 8 bytes a word), in order."""
    parts = [
        torch.empty((c + 7) // 8, dtype=torch.int64, device=device)
        .random_(-(2**63), 2**63 - 1, generator=g)
        .view(torch.uint8)[:c]
        for g, c in zip(gens, counts)
    ]
    return parts[0] if len(parts) == 1 else concat(parts)


# ---------------------------------------------------------------------- kernels
def _windows(first_rows: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """Rows ``first_rows[d] + arange(m[d])`` for every draw d, and their (P+1,) offsets."""
    return expand_ranges(first_rows, m), offsets_from_lengths(m)


def _smallest_keys(
    n: Tensor, m: Tensor, keys: Tensor, tie_breaks: Callable[[Tensor], Tensor], first: Tensor
) -> Tensor:
    """Rows of a uniform m[d]-subset of draw d's n[d] candidates, ascending; (sum m,) int64.

    The candidates of draw d are contiguous in ``keys`` (E,) uint8, their random keys, and are
    the rows ``first[d] + arange(n[d])``. The m smallest keys win, ties broken by
    ``tie_breaks(n_band)``: (sum n_band,) uniforms for the band's candidates, ``n_band[d]`` of
    them per draw, draw by draw in candidate order; the order (key, tie-break, position) is a
    uniform subset. Instead of sorting, keys below the expected threshold t = m/n minus a
    ``BAND_SIGMAS`` band are taken outright and only the few keys inside the band are ranked.
    A draw whose band misses its m-th key (about 1e-9 of draws) falls back to a band covering
    every key. Exact either way. On the host one compiled kernel
    (:mod:`alchemy_torch.ops.kernels`) counts and another selects; elsewhere torch does.
    """
    cand_offsets = offsets_from_lengths(n)
    nf = n.to(torch.float64).clamp(min=1)
    t = m.to(torch.float64) / nf
    delta = (BAND_SIGMAS * torch.sqrt(nf * t * (1 - t)) + 2.0) / nf
    # key < low: taken; low <= key <= high: in the band (keys are uniform on [0, 256))
    low = torch.floor((t - delta).clamp(0, 1) * 256).clamp(0, 255)
    high = torch.floor((t + delta).clamp(0, 1) * 256).clamp(0, 255)
    low = torch.where(m >= n, torch.full_like(low, 255), low).to(torch.uint8)
    high = torch.where(m >= n, torch.full_like(high, 255), high).to(torch.uint8)
    fused = kernels.enabled(keys)
    if fused:
        split = partial(kernels.band_split, keys, cand_offsets)
    else:
        draw_of = repeat(
            torch.arange(n.numel(), dtype=torch.int32, device=n.device), n, keys.numel()
        )
        split = partial(_band_split, keys, draw_of, cand_offsets)
    below, n_band, band, *taken = split(low, high)
    failed = (below > m) | (below + n_band < m)
    if bool(failed.any()):
        low = torch.where(failed, torch.zeros_like(low), low)
        high = torch.where(failed, torch.full_like(high, 255), high)
        below, n_band, band, *taken = split(low, high)
    need = m - below
    tie_break = tie_breaks(n_band)
    band_offsets = offsets_from_lengths(n_band)
    if fused:
        return kernels.select_smallest_keys(
            keys, cand_offsets, low, band, band_offsets, need, tie_break, first,
            offsets_from_lengths(m),
        )  # fmt: skip
    taken = taken[0]
    band_draw = draw_of[band].long()
    by_tie = torch.sort(tie_break, stable=True).indices
    _, within = stable_argsort((band_draw * 256 + keys[band])[by_tie], n.numel() * 256)
    order = by_tie[within]
    band, band_draw = band[order], band_draw[order]
    rank = torch.arange(band.numel(), device=n.device) - band_offsets[band_draw]
    taken[band[rank < need[band_draw]]] = True
    positions = nonzero(taken)
    return positions + repeat(first - cand_offsets[:-1], m, positions.numel())


def _band_split(
    keys: Tensor, draw_of: Tensor, cand_offsets: Tensor, low: Tensor, high: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`alchemy_torch.ops.kernels.band_split` in torch, and the (E,) bool mask of the
    keys below the band; ``draw_of`` (E,) int32 the draw of every candidate."""
    n_cand = keys.numel()
    count_dtype = torch.float32 if n_cand < 2**24 else torch.float64
    # one gather of (low, high) byte pairs per candidate
    packed = torch.stack([low, high], 1).view(torch.int16).squeeze(1)
    bounds = packed.index_select(0, draw_of).view(torch.uint8)
    low_k, high_k = bounds[0::2], bounds[1::2]
    taken = keys < low_k
    band = nonzero((keys >= low_k) & (keys <= high_k))
    below = torch.segment_reduce(
        taken.to(count_dtype), "sum", offsets=cand_offsets, unsafe=True, initial=0.0
    )
    n_band = torch.bincount(draw_of[band].long(), minlength=low.numel())
    return below.round().long(), n_band, band, taken
