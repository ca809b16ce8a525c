"""Bartos-derived HTTP features (METHOD.md §7.2), vectorized over all draws.

Per-request features (36; 35 with ``use_referrer=False``), in output order. On each URL part
``host``, ``path``, ``query`` (the query without its '?'), with s the part's string, L its
number of characters (code points) and every ratio 0 when L = 0:

1. ``length``: L.
2. ``digit_ratio``, ``lower_ratio``, ``upper_ratio``: #[0-9] / L, #[a-z] / L, #[A-Z] / L.
3. ``vowel_change_ratio``: adjacent character pairs that are a vowel (aeiou, any case) and a
   consonant (an ASCII letter that is no vowel), in either order, / L.
4. ``max_char_ratio``: the largest number of occurrences of one character / L.
5. ``max_consonant_run``, ``max_vowel_run``, ``max_digit_run``: longest runs of consecutive
   consonants, vowels, digits.
6. ``non_base64``: characters outside [A-Za-z0-9+/=].

then ``bytes_out``, ``bytes_in``, ``query_params`` (non-empty '&'-separated items of the query),
``path_slashes``, ``query_slashes`` and ``referrer_slashes`` (number of '/'). These never change
under resampling: they are computed once per distinct string of the Bags (numpy over a padded
code-point matrix, in blocks of about ``chunk_records`` characters) and kept per record as a
(36, N) float64 table (rows in :data:`REQUEST_FEATURES` order) in ``bags.cache``, with every
feature's dense ranks into its distinct values. Draws aggregate one feature at a time from
each draw's distinct values and their counts
(:func:`~alchemy_torch.ops.segment.segment_value_runs`: a histogram, or one integer sort for
the few features of many values): no float sort, memory a few (R,) vectors.

Aggregations over the requests of a draw (x = one per-request feature):

* ``aggregation="stats"`` (default): stats5 (mean, population std, min, max, median) of every
  feature, then ``bag_count_requests`` (36 * 5 + 1 = 181 values).
* ``aggregation="bartos"``: per feature, ``bins`` (8) values ``bartos_valhist{b}_{feature}``,
  the histogram of u = (x - min x) / (max x - min x), normalised to sum 1, then ``bins``
  values ``bartos_simhist{b}_{feature}``, the same for the self-similarities d = |x_i - x_j|
  over the pairs i < j, scaled by (d - min d) / (max d - min d) and normalised by the number
  of pairs. u lies in bin b = #{k in 1..bins-1 : u >= k / bins} (equal-width bins on [0, 1],
  the last one closed). The pair histogram is exact, without forming the pairs: from each
  draw's distinct values, the pairs below each edge are those below one difference limit per
  draw and edge, counted per distinct value by one searchsorted (or table look-up) over the
  draws' runs; integer-valued features (byte counts, lengths, runs) need no rounding check.

Empty and tiny draws: an empty draw gives a zero row. A constant feature (max == min, one
request included) puts all of its value mass in bin 0; constant pair differences (two requests
included) put all pair mass in bin 0; a draw of one request has no pairs: zero pair histogram.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.features.base import (
    Behaviour,
    Feature,
    FeatureExtractor,
    Segments,
    require_choice,
    require_integer,
    stats5_features,
)
from alchemy_torch.ops import segment as seg

__all__ = ["HttpFeatures", "PART_FEATURES", "OTHER_FEATURES", "REQUEST_FEATURES", "request_table"]

PARTS = ("host", "path", "query")
#: per URL part: feature -> definition
PART_FEATURES = {
    "length": "number of characters",
    "digit_ratio": "share of digits [0-9]",
    "lower_ratio": "share of lower-case letters [a-z]",
    "upper_ratio": "share of upper-case letters [A-Z]",
    "vowel_change_ratio": "adjacent vowel/consonant pairs per character",
    "max_char_ratio": "share of the most frequent character",
    "max_consonant_run": "longest run of consonants",
    "max_vowel_run": "longest run of vowels",
    "max_digit_run": "longest run of digits",
    "non_base64": "number of characters outside [A-Za-z0-9+/=]",
}
OTHER_FEATURES = {
    "bytes_out": "bytes sent by the client",
    "bytes_in": "bytes received by the client",
    "query_params": "non-empty '&'-separated items of the query",
    "path_slashes": "number of '/' in the path",
    "query_slashes": "number of '/' in the query",
    "referrer_slashes": "number of '/' in the referrer",
}
#: every per-request feature -> definition, in the order of the rows of :func:`request_table`
REQUEST_FEATURES = {
    **{f"{p}_{f}": f"{d} of the {p}" for p in PARTS for f, d in PART_FEATURES.items()},
    **OTHER_FEATURES,
}
#: every per-request feature -> the record columns it reads
INPUTS = {
    **{f"{p}_{f}": (p,) for p in PARTS for f in PART_FEATURES},
    **{c: (c,) for c in ("bytes_out", "bytes_in")},
    "query_params": ("query",),
    **{f"{c}_slashes": (c,) for c in ("path", "query", "referrer")},
}
CACHE_KEY = "http_request_features"
RANKS_KEY = "http_request_ranks"
_OTHER, _VOWEL, _CONSONANT, _DIGIT, _BASE64_SIGN = range(5)


def _char_classes() -> np.ndarray:
    """(129,) uint8 class of every ASCII code point; index 128 stands for any other character."""
    classes = np.full(129, _OTHER, dtype=np.uint8)
    for chars, kind in (
        ("+/=", _BASE64_SIGN),
        ("0123456789", _DIGIT),
        ("aeiouAEIOU", _VOWEL),
        ("bcdfghjklmnpqrstvwxyzBCDFGHJKLMNPQRSTVWXYZ", _CONSONANT),
    ):
        classes[[ord(ch) for ch in chars]] = kind
    return classes


_CLASS = _char_classes()


class HttpFeatures(FeatureExtractor):
    """Bartos-derived features of server bags of HTTP requests: (P, D) per draw.

    ``aggregation``: ``"stats"`` (D = 181) or ``"bartos"`` (D = 36 * 2 * ``bins`` = 576);
    ``use_referrer=False`` drops ``referrer_slashes`` (D = 176 or 560).
    """

    kind = "http"
    AGGREGATIONS = ("stats", "bartos")

    def __init__(
        self,
        aggregation: str = "stats",
        bins: int = 8,
        use_referrer: bool = True,
        chunk_records: int = seg.CHUNK_RECORDS,
        dtype: str | torch.dtype = "float64",
    ):
        super().__init__(chunk_records, dtype)
        require_choice("aggregation", aggregation, self.AGGREGATIONS)
        require_integer("bins", bins, 2)
        self._keep(locals())

    @property
    def request_features(self) -> dict[str, str]:
        """Per-request feature -> definition of the features this extractor aggregates."""
        return {
            name: definition
            for name, definition in REQUEST_FEATURES.items()
            if self.use_referrer or name != "referrer_slashes"
        }

    @property
    def features(self) -> list[Feature]:
        out = []
        for field, definition in self.request_features.items():
            if self.aggregation == "stats":
                out += stats5_features("req", field, f"per-request {definition}", INPUTS[field])
            else:
                out += [
                    Feature(
                        f"bartos_{kind}hist{b}_{field}",
                        Behaviour.CENTRED,
                        f"share of {what} of {definition} in bin {b} of {self.bins}",
                        inputs=INPUTS[field],
                    )
                    for kind, what in (
                        ("val", "min-max scaled values"),
                        ("sim", "min-max scaled pair differences"),
                    )
                    for b in range(self.bins)
                ]
        if self.aggregation == "stats":
            out.append(
                Feature("bag_count_requests", Behaviour.RATE_SENSITIVE, "number of requests")
            )
        return out

    def compute(self, segments: Segments) -> Tensor:
        bags = segments.bags
        table = bags.cached(CACHE_KEY, lambda: request_table(bags, self.chunk_records))
        used = [list(REQUEST_FEATURES).index(name) for name in self.request_features]
        # dense ranks per feature, once per Bags: medians and histograms need no float sort
        ranks = bags.cached(
            RANKS_KEY, lambda: [seg.dense_ranks(table[f]) for f in range(len(table))]
        )
        if self.aggregation == "bartos":
            return _bartos((ranks[f] for f in used), segments, self.bins)
        stats = []
        for f in used:
            rank, uniques = ranks[f]
            level, counts, run_offsets, run = seg.segment_value_runs(
                rank[segments.rows], uniques.numel(), segments.offsets, segments.ids
            )
            stats.append(
                seg.segment_runs_stats5(uniques[level], counts, run_offsets, run, segments.offsets)
            )
        return torch.cat([*stats, segments.lengths.to(torch.float64).unsqueeze(1)], dim=1)


# ---------------------------------------------------------------------- per-request table
def request_table(bags: Bags, block_cells: int = seg.CHUNK_RECORDS) -> Tensor:
    """(36, N) float64 :data:`REQUEST_FEATURES` (rows) of every record, on the bags' device.

    ``block_cells``: characters per block of the padded code-point matrices (memory only).
    """
    distinct: dict[str, tuple[np.ndarray, Tensor]] = {}

    def per_string(column: str, build) -> Tensor:
        """(k, N) ``build`` (k, n) of the n distinct strings of ``column``, at every record."""
        if column not in distinct:
            codes, inverse = torch.unique(bags.columns[column], return_inverse=True)
            distinct[column] = bags.decode(column, codes), inverse
        strings, inverse = distinct[column]
        return torch.from_numpy(np.atleast_2d(build(strings))).to(bags.device)[:, inverse]

    rows: dict[str, Tensor] = {}
    for part in PARTS:
        values = per_string(part, lambda strings: _part_features(strings, block_cells))
        rows.update(zip((f"{part}_{f}" for f in PART_FEATURES), values))
    for column in ("bytes_out", "bytes_in"):
        rows[column] = bags.columns[column].to(torch.float64)
    rows["query_params"] = per_string("query", _params)[0]
    for column in ("path", "query", "referrer"):
        rows[f"{column}_slashes"] = per_string(column, _slashes)[0]
    return torch.stack([rows[name] for name in REQUEST_FEATURES])


def _slashes(strings: np.ndarray) -> np.ndarray:
    """(n,) float64 number of '/' of every string."""
    return np.fromiter((s.count("/") for s in strings), dtype=np.float64, count=len(strings))


def _params(strings: np.ndarray) -> np.ndarray:
    """(n,) float64 number of non-empty '&'-separated items of every string."""
    return np.fromiter(
        (sum(map(bool, s.split("&"))) for s in strings), dtype=np.float64, count=len(strings)
    )


def _part_features(strings: np.ndarray, block_cells: int) -> np.ndarray:
    """(10, n) float64 :data:`PART_FEATURES` of every string, in blocks of similar length.

    A block is the largest run of length-sorted strings whose padded matrix has at most
    ``block_cells`` characters (or a single longer string).
    """
    n = len(strings)
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=n)
    out = np.zeros((len(PART_FEATURES), n))
    order = np.argsort(lengths, kind="stable")
    start = 0
    while start < n:
        stop = min(n, start + max(1, block_cells // max(int(lengths[order[start]]), 1)))
        while stop - start > 1 and (stop - start) * int(lengths[order[stop - 1]]) > block_cells:
            stop = start + max(1, block_cells // int(lengths[order[stop - 1]]))
        rows = order[start:stop]
        width = int(lengths[rows[-1]])
        if width:
            chars = strings[rows].astype(f"<U{width}").view(np.uint32).reshape(len(rows), width)
            out[:, rows] = _block_features(chars, lengths[rows])
        start = stop
    return out


def _block_features(c: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(10, k) features of k strings as a (k, m) code-point matrix padded beyond ``lengths``."""
    valid = np.arange(c.shape[1]) < lengths[:, None]
    kind = _CLASS[np.minimum(c, 128)]
    vowel, consonant, digit = kind == _VOWEL, kind == _CONSONANT, kind == _DIGIT
    changes = ((vowel[:, 1:] & consonant[:, :-1]) | (consonant[:, 1:] & vowel[:, :-1])).sum(1)
    non_base64 = (valid & (kind == _OTHER)).sum(1)
    # characters sorted per string (padding last): equal neighbours form runs of one character
    ordered = np.sort(np.where(valid, c, np.uint32(0xFFFFFFFF)), axis=1)
    same = np.zeros_like(valid)
    same[:, 1:] = (ordered[:, 1:] == ordered[:, :-1]) & valid[:, 1:]
    max_count = np.where(lengths > 0, _longest_run(same) + 1, 0)
    per_char = np.maximum(lengths, 1)
    lower = ((c - np.uint32(ord("a"))) < 26).sum(1)  # unsigned: wraps below "a"
    upper = ((c - np.uint32(ord("A"))) < 26).sum(1)
    return np.stack(
        [
            lengths,
            digit.sum(1) / per_char,
            lower / per_char,
            upper / per_char,
            changes / per_char,
            max_count / per_char,
            _longest_run(consonant),
            _longest_run(vowel),
            _longest_run(digit),
            non_base64,
        ]
    ).astype(np.float64)


def _longest_run(mask: np.ndarray) -> np.ndarray:
    """(k,) length of the longest run of True in every row of a (k, m) boolean matrix."""
    count = np.cumsum(mask, axis=1, dtype=np.int32)
    reset = np.maximum.accumulate(np.where(mask, 0, count), axis=1)
    return (count - reset).max(axis=1)


# ---------------------------------------------------------------------- Bartos histograms
def _bartos(ranked: Iterable[tuple[Tensor, Tensor]], segments: Segments, bins: int) -> Tensor:
    """(P, F * 2 * bins): per feature, given as (N,) per-record dense ranks into its (U,)
    ascending distinct values (cached once per Bags), value then pair-difference histogram.

    Both work on the distinct values of each draw with their multiplicities
    (:func:`~alchemy_torch.ops.segment.segment_value_runs`),
    never on sorted records: a value's bin is the same for all its copies.
    """
    offsets = segments.offsets
    edges = torch.arange(1, bins, dtype=torch.float64, device=offsets.device) / bins
    requests = offsets.diff().clamp(min=1).to(torch.float64).unsqueeze(1)
    out = []
    for ranks, uniques in ranked:
        level, counts, run_offsets, run_seg = seg.segment_value_runs(
            ranks[segments.rows], uniques.numel(), offsets, segments.ids
        )
        values = uniques[level]
        lo, hi = seg.segment_first(values, run_offsets), seg.segment_last(values, run_offsets)
        width = hi - lo
        u = (values - lo[run_seg]) / torch.where(width > 0, width, 1.0)[run_seg]
        cell = run_seg * bins + torch.bucketize(u, edges, right=True)
        value_hist = torch.zeros(len(segments) * bins, dtype=torch.float64, device=u.device)
        value_hist.index_add_(0, cell, counts.to(torch.float64))
        out += [
            value_hist.view(-1, bins) / requests,
            _pair_histogram(level, uniques, counts, run_offsets, edges),
        ]
    return torch.cat(out, dim=1)


def _pair_histogram(
    level: Tensor, uniques: Tensor, counts: Tensor, run_offsets: Tensor, edges: Tensor
) -> Tensor:
    """(P, bins) normalised histogram of scaled pair differences of every draw, exact.

    A draw is given by its distinct values ``uniques[level]``, ``level`` (M,) ascending within
    the draw, their ``counts`` (M,) and the (P+1,) CSR ``run_offsets`` (see
    :func:`~alchemy_torch.ops.segment.segment_value_runs`). A pair's difference d lies below
    edge e when (d - dmin) / (dmax - dmin) < e, that is when d is below one float per draw and
    edge (:func:`_difference_limits`). The c_k copies of v_k, at sorted positions
    C_k .. C_k + c_k - 1, pair below the edge with the records before the first run l where
    v_l - v_k reaches that limit (:func:`_first_runs_beyond`): c_k (C_l - C_k - 1)
    - c_k (c_k - 1) / 2 pairs.
    """
    values = uniques[level]
    run = seg.segment_ids(run_offsets, level.numel())
    n = seg.segment_sum(counts, run_offsets).long()  # records per draw
    pairs = n * (n - 1) // 2
    gaps, gap_offsets = seg.segment_diff(values, run_offsets)
    repeated = seg.segment_max(counts, run_offsets) > 1  # then the smallest difference is 0
    dmin = torch.where(repeated, 0.0, seg.segment_min(gaps, gap_offsets))
    spread = (seg.segment_last(values, run_offsets) - seg.segment_first(values, run_offsets)) - dmin
    varied = (n > 1) & (spread > 0)
    limit = _difference_limits(dmin, torch.where(varied, spread, 1.0), edges)
    at = _first_runs_beyond(level, uniques, run, limit)
    start = seg.offsets_from_lengths(counts)  # (M+1,) sorted position of every run's first record
    reach = seg.segment_sum(start.to(torch.float64)[at] * counts.unsqueeze(1), run_offsets)
    own = seg.segment_sum(counts * (start[:-1] + 1) + counts * (counts - 1) // 2, run_offsets)
    below_edge = (reach - own.unsqueeze(1)).long()
    cumulative = torch.cat([below_edge.new_zeros(n.numel(), 1), below_edge, pairs.unsqueeze(1)], 1)
    hist = cumulative.diff(dim=1)
    constant = torch.zeros_like(hist)
    constant[:, 0] = cumulative[:, -1]
    return torch.where(varied.unsqueeze(1), hist, constant) / cumulative[:, -1:].clamp(min=1)


def _difference_limits(dmin: Tensor, scale: Tensor, edges: Tensor) -> Tensor:
    """(P, E) the smallest float d of every draw with (d - dmin) / scale >= edge, for (P,)
    ``dmin``, ``scale`` > 0 and (E,) ``edges`` > 0: the test rises with d, so a difference is
    below an edge exactly when it is below the limit. dmin + edge * scale, moved by ulps until
    the test agrees."""
    dmin, scale = dmin.unsqueeze(1), scale.unsqueeze(1)
    limit, inf = dmin + edges * scale, dmin.new_tensor(float("inf"))
    while True:
        before = torch.nextafter(limit, -inf)
        up = (limit - dmin) / scale < edges  # the limit is still below the edge
        down = (before - dmin) / scale >= edges  # the float before it is not
        if not bool((up | down).any()):
            return limit
        limit = torch.where(up, torch.nextafter(limit, inf), torch.where(down, before, limit))


def _first_runs_beyond(level: Tensor, uniques: Tensor, run: Tensor, limit: Tensor) -> Tensor:
    """(M, E) position of the first run l of every run k's draw with v_l - v_k >= the draw's
    limit (the draw's end where none), for runs given by ``level`` (M,) (ranks into the (U,)
    ascending ``uniques``, ascending within each draw), ``run`` (M,) their draws and (P, E)
    ``limit`` > 0.

    Integer values (byte counts, lengths, runs): differences are exact, so v_l - v_k >= limit
    when v_l >= v_k + ceil(limit), found among the int64 keys draw * width + v - min. Other
    values: the rank of v_k + limit among the uniques, moved until its neighbours pass the
    exact test, then the keys draw * U + rank. Either is counted from a table over the keys or
    searched (:func:`_count_below`).
    """
    n_uniques, n_draws = uniques.numel(), limit.shape[0]
    if level.numel() == 0:
        return level.new_zeros(0, limit.shape[1])
    span = float(uniques[-1] - uniques[0])
    if _integral(uniques) and n_draws * (2 * span + 2) < 2**62:
        width = 2 * int(span) + 2  # v_k - lo + ceil(limit) stays below it: keys keep to the draw
        key = run * width + (uniques - uniques[0]).long()[level]
        step = limit.ceil().clamp(max=span + 1).long()
        return _count_below(key, key.unsqueeze(1) + step[run], n_draws * width)
    values, lim = uniques[level].unsqueeze(1), limit[run]
    inf = uniques.new_tensor([float("inf")])
    bounded = torch.cat([-inf, uniques, inf])  # bounded[r + 1] = uniques[r], any r in [-1, U]

    def shift(rank: Tensor, v: Tensor, lim: Tensor) -> Tensor:
        """+1 where uniques[rank] is still below the limit, -1 where uniques[rank - 1] is not."""
        return (bounded[rank + 1] - v < lim).long() - (bounded[rank] - v >= lim).long()

    rank = torch.searchsorted(uniques, values + lim)
    moved = shift(rank, values, lim)
    rank += moved
    flat, n_edges, todo = rank.view(-1), lim.shape[1], seg.nonzero(moved.view(-1) != 0)
    while todo.numel():  # the rounding of v_k + limit: rarely more than one step
        moved = shift(flat[todo], values[todo // n_edges, 0], lim.view(-1)[todo])
        flat[todo] += moved
        todo = todo[seg.nonzero(moved != 0)]
    key = run * n_uniques  # + rank: a rank of U is the next draw's first key, its end
    return _count_below(key + level, key.unsqueeze(1) + rank, n_draws * n_uniques)


def _count_below(keys: Tensor, queries: Tensor, bound: int) -> Tensor:
    """How many of the ascending ``keys`` (M,) in [0, bound) lie below each of the ``queries``
    (any shape, in [0, bound]): read from a cumulative count over the bound where that table
    is small enough (:func:`~alchemy_torch.ops.segment.histogram_fits`), else searched."""
    if seg.histogram_fits(1, bound, queries.numel()):
        return seg.offsets_from_lengths(torch.bincount(keys, minlength=bound))[queries]
    return torch.searchsorted(keys, queries)


def _integral(x: Tensor) -> bool:
    """Whether every value of ``x`` is an integer of magnitude at most 2**52 (their differences
    are then exact in float64)."""
    return bool(((x == x.round()) & (x.abs() <= 2**52)).all())
