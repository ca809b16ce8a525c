"""DISCLOSURE-derived NetFlow features (METHOD.md §7.1), vectorized over all draws.

A flow of server S is *in* when ``dst == S`` (client -> server) and *out* otherwise (``src ==
S`` in canonical records); its client is the other endpoint. Time bins are ``bin_seconds``
(300) wide, aligned to the draw's first record and span [first_ts, last_ts] including empty
bins: a draw has ``floor((last_ts - first_ts) / bin_seconds) + 1`` bins. ``std`` is the
population std. Features, in output order:

1. packets per flow: stats5 (mean, std, min, max, median) of ``pkts``, in- then out-flows (10).
2. bytes per packet: stats5 of ``bytes / max(pkts, 1)`` per direction (10).
3. unique flow sizes, per direction on ``bytes``: number of distinct sizes, distinct / flows,
   Shannon entropy (natural log) of the size frequencies, share of the most common size,
   Pearson kurtosis m4 / m2**2 (0 when m2 = 0) (10).
4. regular access patterns: for every client with >= 2 in-flows, the inter-arrival times
   (seconds) of its in-flows; their min, max, median, std averaged over those clients (4), and
   the number of those clients / distinct clients of the draw (1).
5. unmatched flow density, ``matching="window"``: per bin, the sum over clients of
   |#in - #out|; its mean and std over bins and the total over bins / flows (3).
   ``matching="5tuple"``: an in-flow c:p -> S:q is matched when an out-flow S:q -> c:p of the
   same protocol starts within ``match_seconds`` (60) of it, and conversely; the unmatched
   share of in-flows and of out-flows (2).
6. flows per bin: stats5 over bins, and the share of non-empty bins (6).
7. distinct clients per bin: stats5 over bins (5; its non-empty share equals 6's).
Option ``disclosure_autocorr``: per direction, the series of mean flow size per bin (0 in bins
without flows of that direction), its normalised autocorrelation r_k for lags
k = 1..min(n_bins - 1, ``autocorr_lags`` (12)) and their mean and std (4).
Option ``cv_instead_of_std`` (as DISCLOSURE does): every std, the per-client ones included, is
divided by its mean's absolute value (0 when the mean is 0), and named ``cv``.

Empty and tiny draws: every statistic of an empty set is 0 (an empty draw gives a zero row);
std, kurtosis and autocorrelation need spread (otherwise 0); a bag of one record has one bin.
Rows of a draw must be in time order (as Bags and Draws keep them). Empty bins are never
materialised: memory follows the records, not the time span.
"""

from __future__ import annotations

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

__all__ = ["FlowFeatures"]

B = Behaviour


class FlowFeatures(FeatureExtractor):
    """DISCLOSURE-derived flow features of server bags: (P, D) per draw, D = 49 by default."""

    kind = "flows"
    MATCHINGS = ("window", "5tuple")

    def __init__(
        self,
        bin_seconds: float = 300.0,
        cv_instead_of_std: bool = False,
        matching: str = "window",
        match_seconds: float = 60.0,
        disclosure_autocorr: bool = False,
        autocorr_lags: int = 12,
        chunk_records: int = seg.CHUNK_RECORDS,
        dtype: str | torch.dtype = "float64",
    ):
        super().__init__(chunk_records, dtype)
        require_choice("matching", matching, self.MATCHINGS)
        if not bin_seconds > 0 or match_seconds < 0:
            raise ValueError(
                f"bin_seconds must be > 0 and match_seconds >= 0, "
                f"got {bin_seconds}, {match_seconds}"
            )
        require_integer("autocorr_lags", autocorr_lags, 1)
        self._keep(locals())

    # ------------------------------------------------------------------ names
    @property
    def features(self) -> list[Feature]:
        per_dir = lambda make: [f for d in ("in", "out") for f in make(d)]  # noqa: E731
        feats = per_dir(lambda d: stats5_features(d, "pkts", f"packets per {d}-flow"))
        feats += per_dir(
            lambda d: stats5_features(d, "bytes_per_pkt", f"bytes per packet of {d}-flows")
        )
        feats += per_dir(
            lambda d: [
                Feature(
                    f"{d}_nunique_bytes",
                    B.RATE_SENSITIVE,
                    f"number of distinct {d}-flow byte sizes",
                ),
                Feature(
                    f"{d}_unique_ratio_bytes",
                    B.RATE_SENSITIVE,
                    f"distinct {d}-flow sizes / {d}-flows",
                ),
                Feature(
                    f"{d}_entropy_bytes",
                    B.SPREAD,
                    f"entropy (nats) of the {d}-flow size frequencies",
                ),
                Feature(
                    f"{d}_mode_share_bytes", B.SPREAD, f"share of the most common {d}-flow size"
                ),
                Feature(f"{d}_kurtosis_bytes", B.SPREAD, f"Pearson kurtosis of {d}-flow sizes"),
            ]
        )
        feats += [
            Feature(
                f"access_{s}_interarrival",
                B.RATE_SENSITIVE,
                f"mean over clients with >= 2 in-flows of the {s} of their inter-arrival times (s)",
            )
            for s in ("min", "max", "median", "std")
        ]
        feats.append(
            Feature(
                "access_ratio_clients", B.RATE_SENSITIVE, "clients with >= 2 in-flows / clients"
            )
        )
        if self.matching == "window":
            feats += [
                Feature(
                    "bin_mean_unmatched",
                    B.RATE_SENSITIVE,
                    "mean over bins of sum over clients |#in - #out|",
                ),
                Feature(
                    "bin_std_unmatched",
                    B.RATE_SENSITIVE,
                    "std over bins of sum over clients |#in - #out|",
                ),
                Feature(
                    "all_ratio_unmatched", B.RATE_SENSITIVE, "sum over bins of unmatched / flows"
                ),
            ]
        else:
            feats += [
                Feature(
                    f"{d}_ratio_unmatched",
                    B.RATE_SENSITIVE,
                    f"share of {d}-flows without a reverse 5-tuple flow "
                    f"within {self.match_seconds:g} s",
                )
                for d in ("in", "out")
            ]
        feats += [
            Feature(f.name, B.RATE_SENSITIVE, f.description)
            for f in stats5_features("bin", "flows", "flows per bin")
        ]
        feats.append(
            Feature("bin_share_nonempty", B.RATE_SENSITIVE, "share of bins holding a flow")
        )
        feats += [
            Feature(f.name, B.RATE_SENSITIVE, f.description)
            for f in stats5_features("bin", "clients", "distinct clients per bin")
        ]
        if self.disclosure_autocorr:
            feats += per_dir(
                lambda d: [
                    Feature(
                        f"{d}_{s}_acf",
                        B.SPREAD,
                        f"{s} over lags of the autocorrelation of mean {d}-flow size per bin",
                    )
                    for s in ("mean", "std")
                ]
            )
        if self.cv_instead_of_std:
            feats = [
                Feature(
                    f.name.replace("_std_", "_cv_"),
                    f.behaviour,
                    f.description.replace("std", "std / mean"),
                )
                for f in feats
            ]
        return feats

    # ------------------------------------------------------------------ compute
    def compute(self, segments: Segments) -> Tensor:
        """(P, D) features of the gathered draws."""
        bags, rows, offsets = segments.bags, segments.rows, segments.offsets
        n_draws, n_rec = len(segments), rows.numel()
        device = offsets.device
        if n_rec == 0:
            return torch.zeros(n_draws, len(self.features), dtype=torch.float64, device=device)
        per_record = _per_record(bags)
        layout = per_record["layout"]
        ids = seg.segment_ids(offsets, n_rec)
        ts = bags.columns["ts"].index_select(0, rows)
        words = [w.index_select(0, rows) for w in per_record["words"]]
        inbound = _field(words, layout, "inbound").bool()
        client = _field(words, layout, "client")

        # direction split: segments (in, draw 0..P-1), then (out, draw 0..P-1), time order kept
        dir_order = torch.cat([seg.nonzero(inbound), seg.nonzero(~inbound)])
        n_in = int(inbound.sum())
        dir_ids = ids.index_select(0, dir_order)
        dir_ids[n_in:] += n_draws
        dir_offsets = seg.offsets_from_ids(dir_ids, 2 * n_draws)
        dir_words = [w.index_select(0, dir_order) for w in words]

        # bins: index within the draw, non-empty bins as CSR over draws
        first = ts.index_select(0, offsets[:-1].clamp(max=n_rec - 1))
        bin_index = torch.floor((ts - first.index_select(0, ids)) / float(self.bin_seconds)).long()
        nonempty_draw = offsets.diff() > 0
        n_bins = torch.where(
            nonempty_draw, bin_index.index_select(0, (offsets[1:] - 1).clamp(min=0)) + 1, 0
        )
        bin_id, bin_start = _runs(ids, bin_index)
        n_nonempty = bin_start.numel()
        bin_offsets = seg.offsets_from_ids(ids.index_select(0, bin_start), n_draws)
        flows_per_bin = _run_lengths(bin_start, n_rec)

        # one stable sort by (draw, client): time order within a client
        n_clients = per_record["n_clients"]
        key_s, perm = seg.stable_argsort(ids * n_clients + client, n_draws * n_clients)
        bin_in = ((bin_id << 1) | inbound).index_select(0, perm)  # one random gather for both
        in_s, bin_s = (bin_in & 1).bool(), bin_in >> 1
        new = torch.ones(n_rec, dtype=torch.bool, device=device)
        torch.ne(key_s[1:], key_s[:-1], out=new[1:])
        client_start = seg.nonzero(new)  # first flow of every (draw, client)
        distinct = torch.bincount(
            torch.div(key_s.index_select(0, client_start), n_clients, rounding_mode="floor").long(),
            minlength=n_draws,
        ).to(torch.float64)

        in_pos = seg.nonzero(in_s)
        parts = [
            self._flow_sizes(per_record, dir_words, dir_ids, dir_offsets, n_draws),
            self._access(
                key_s.index_select(0, in_pos),
                ts.index_select(0, perm.index_select(0, in_pos)),
                distinct,
                n_clients,
                n_draws,
            ),
        ]
        # (draw, client, bin) triples: clients per bin and their |#in - #out|
        new[1:] |= bin_s[1:] != bin_s[:-1]
        triple_start = seg.nonzero(new)
        triple_bin = bin_s.index_select(0, triple_start)
        clients_per_bin = torch.bincount(triple_bin, minlength=n_nonempty)
        n_in_before = torch.cat([torch.zeros(1, dtype=torch.int64, device=device), in_s.cumsum(0)])
        n_in_triple = n_in_before.index_select(
            0, torch.cat([triple_start[1:], triple_start.new_full((1,), n_rec)])
        ) - n_in_before.index_select(0, triple_start)
        balance = 2 * n_in_triple - _run_lengths(triple_start, n_rec)
        unmatched = torch.zeros(n_nonempty, dtype=torch.int64, device=device).index_add_(
            0, triple_bin, balance.abs()
        )
        bin_values = torch.stack([flows_per_bin, clients_per_bin, unmatched], 1)
        mean, std, low, high, median = _padded_stats5(bin_values, bin_offsets, n_bins).unbind(2)
        std = self._spread(std, mean)
        if self.matching == "window":
            parts.append(
                torch.stack(
                    [
                        mean[:, 2],
                        std[:, 2],
                        seg.segment_sum(unmatched, bin_offsets) / offsets.diff().clamp(min=1),
                    ],
                    1,
                )
            )
        else:
            parts.append(self._unmatched_5tuple(_tuples(bags), rows, ids, ts, inbound, n_draws))
        share = bin_offsets.diff().to(torch.float64) / n_bins.clamp(min=1)
        parts.append(
            torch.stack([mean[:, 0], std[:, 0], low[:, 0], high[:, 0], median[:, 0], share], 1)
        )
        parts.append(torch.stack([mean[:, 1], std[:, 1], low[:, 1], high[:, 1], median[:, 1]], 1))
        if self.disclosure_autocorr:
            sizes = per_record["levels"][2].index_select(0, _field(dir_words, layout, "rank2"))
            parts.append(
                self._autocorrelation(
                    sizes, bin_index.index_select(0, dir_order), dir_ids, n_bins.repeat(2), n_draws
                )
            )
        return torch.cat([p.to(torch.float64) for p in parts], 1)

    def _spread(self, std: Tensor, mean: Tensor) -> Tensor:
        """std, or std / |mean| (0 where mean is 0) under ``cv_instead_of_std``."""
        if not self.cv_instead_of_std:
            return std
        return torch.where(
            mean != 0,
            std / mean.abs().clamp(min=torch.finfo(std.dtype).tiny),
            torch.zeros_like(std),
        )

    def _flow_sizes(
        self, per_record: dict, words: list[Tensor], ids: Tensor, offsets: Tensor, n_draws: int
    ) -> Tensor:
        """(P, 30) features 1-3 over 2P direction segments: ``words`` the records' packed per-record
        fields, ``ids`` (R,) the segment of each.

        The per-record ranks of [pkts, bytes_per_pkt, bytes] into the sorted distinct ``levels``
        of each column make one integer sort per column order every segment; min, median and
        max only read the sorted ranks at a few positions per segment.
        """
        n = offsets.diff()
        n_seg, n_rec = n.numel(), ids.numel()
        levels = per_record["levels"]
        ranks = [_field(words, per_record["layout"], f"rank{c}") for c in range(3)]
        values = [lv.index_select(0, r) for lv, r in zip(levels, ranks)]
        mean = [seg.segment_mean(v, offsets) for v in values]
        squares = [(v - m.index_select(0, ids)) ** 2 for v, m in zip(values, mean)]
        m2 = [seg.segment_mean(sq, offsets) for sq in squares]

        # min, the two middle values (numpy's linear interpolation) and max of every segment
        pos = (n - 1).clamp(min=0).to(torch.float64) * 0.5
        below = pos.floor()
        i_lo = offsets[:-1] + below.long()
        i_hi = torch.minimum(i_lo + 1, offsets[1:] - 1)
        at = torch.stack([offsets[:-1], i_lo, i_hi, offsets[1:] - 1]).clamp(0, n_rec - 1).flatten()
        nonempty = n > 0
        zero = torch.zeros((), dtype=torch.float64, device=n.device)
        stats = []
        ids32 = ids.int()
        for c in range(2):
            width = levels[c].numel()
            base = (ids32 if n_seg * width <= 2**31 else ids) * width
            ordered = seg.sort_values(base + ranks[c], n_seg * width).sub_(base)
            low, lo, hi, high = (
                levels[c].index_select(0, ordered.index_select(0, at)).view(4, n_seg)
            )
            median = lo + (hi - lo) * (pos - below)
            stats.append(
                torch.stack(
                    [
                        mean[c],
                        self._spread(m2[c].sqrt(), mean[c]),
                        torch.where(nonempty, low, zero),
                        torch.where(nonempty, high, zero),
                        torch.where(nonempty, median, zero),
                    ],
                    1,
                )
            )
        stats = (
            torch.stack(stats, 1).reshape(2, n_draws, 2, 5).permute(1, 2, 0, 3).reshape(n_draws, 20)
        )

        # distinct sizes: runs of equal (segment, bytes rank) keys, sorted
        width = levels[2].numel()
        key = seg.sort_values(
            (ids32 if n_seg * width <= 2**31 else ids) * width + ranks[2], n_seg * width
        )
        start = _run_starts(key)
        run_seg = ids.index_select(0, start)
        n_f = n.clamp(min=1).to(torch.float64)
        p = _run_lengths(start, n_rec) / n_f.index_select(0, run_seg)
        nunique = torch.bincount(run_seg, minlength=n_seg).to(torch.float64)
        entropy = torch.zeros_like(n_f).index_add_(0, run_seg, -p * p.log())
        mode = torch.zeros_like(n_f).scatter_reduce_(
            0, run_seg, p, reduce="amax", include_self=True
        )
        # squares of squares: exact in every position, where pow(x, 4) is not (SIMD vs scalar)
        m4 = seg.segment_mean(squares[2] * squares[2], offsets)
        var = m2[2]
        kurtosis = torch.where(
            var > 0, m4 / var.clamp(min=torch.finfo(var.dtype).tiny) ** 2, torch.zeros_like(var)
        )
        unique = torch.stack([nunique, nunique / n_f, entropy, mode, kurtosis], 1)
        return torch.cat(
            [stats, unique.reshape(2, n_draws, 5).permute(1, 0, 2).reshape(n_draws, 10)], 1
        )

    def _access(
        self, key: Tensor, ts: Tensor, clients: Tensor, n_clients: int, n_draws: int
    ) -> Tensor:
        """(P, 5) feature 4 from in-flows sorted by (draw, client) then time; ``clients`` (P,)."""
        device = ts.device
        if key.numel() < 2:
            return torch.zeros(n_draws, 5, dtype=torch.float64, device=device)
        same = key[1:] == key[:-1]
        start = seg.nonzero(torch.cat([torch.ones(1, dtype=torch.bool, device=device), ~same]))
        counts = _run_lengths(start, key.numel())
        regular = seg.nonzero(counts >= 2)
        # inter-arrival times of the regular groups (clients with >= 2 in-flows), in time order
        diffs = (ts[1:] - ts[:-1])[same]
        n_diffs = counts.index_select(0, regular) - 1
        diff_offsets = seg.offsets_from_lengths(n_diffs)
        group = torch.repeat_interleave(
            torch.arange(n_diffs.numel(), device=device), n_diffs, output_size=diffs.numel()
        )
        ordered = _sort_within(group, n_diffs.numel(), diffs)
        mean = seg.segment_mean(diffs, diff_offsets)
        stats = torch.stack(
            [
                ordered.index_select(0, diff_offsets[:-1]),
                ordered.index_select(0, diff_offsets[1:] - 1),
                seg.segment_median(ordered, diff_offsets, sorted_x=ordered),
                self._spread(seg.segment_std(diffs, diff_offsets, correction=0), mean),
            ],
            1,
        )
        draw = torch.div(
            key.index_select(0, start.index_select(0, regular)), n_clients, rounding_mode="floor"
        ).long()
        n_regular = torch.bincount(draw, minlength=n_draws).to(torch.float64)
        total = torch.zeros(n_draws, 4, dtype=torch.float64, device=device).index_add_(
            0, draw, stats
        )
        return torch.cat(
            [
                total / n_regular.clamp(min=1).unsqueeze(1),
                (n_regular / clients.clamp(min=1)).unsqueeze(1),
            ],
            1,
        )

    def _unmatched_5tuple(
        self,
        tuples: tuple[Tensor, int],
        rows: Tensor,
        ids: Tensor,
        ts: Tensor,
        inbound: Tensor,
        n_draws: int,
    ) -> Tensor:
        """(P, 2) unmatched share of in- and out-flows (5-tuple match within ``match_seconds``)."""
        tuple_index, n_tuples = tuples
        key, perm = seg.stable_argsort(
            ids * n_tuples + tuple_index.index_select(0, rows), n_draws * n_tuples
        )
        t, inb = ts.index_select(0, perm), inbound.index_select(0, perm)
        n = key.numel()
        pos = torch.arange(n, device=key.device)
        matched = torch.zeros(n, dtype=torch.bool, device=key.device)
        for reverse in (inb, ~inb):  # the flows that can match the others
            own = ~reverse
            before = torch.where(reverse, pos, -1).cummax(0).values
            after = torch.where(reverse, pos, n).flip(0).cummin(0).values.flip(0)
            for other in (before, after):
                j = other.clamp(0, n - 1)
                ok = (
                    (other >= 0)
                    & (other < n)
                    & (key[j] == key)
                    & ((t[j] - t).abs() <= self.match_seconds)
                )
                matched |= own & ok
        draw = torch.div(key, n_tuples, rounding_mode="floor")
        out = []
        for direction in (inb, ~inb):
            flows = torch.bincount(draw[direction], minlength=n_draws)
            lone = torch.bincount(draw[direction & ~matched], minlength=n_draws)
            out.append(lone.to(torch.float64) / flows.clamp(min=1))
        return torch.stack(out, 1)

    def _autocorrelation(
        self, sizes: Tensor, bin_index: Tensor, ids: Tensor, n_bins: Tensor, n_draws: int
    ) -> Tensor:
        """(P, 4) mean and std of r_1..r_L of the mean-size-per-bin series of 2P direction segments.

        ``ids`` (R,) is the segment (series) of every size, non-decreasing.

        With x_t = 0 in bins without flows, S = sum x, mu = S / n, V = sum (x - mu)^2:
        sum_{t<n-k} (x_t - mu)(x_{t+k} - mu)
            = sum x_t x_{t+k} - mu (2S - head_k - tail_k) + (n-k) mu^2
        with head_k / tail_k the sums of the first / last k values; only non-empty bins are visited.
        """
        lags = self.autocorr_lags
        device = sizes.device
        run = _runs(ids, bin_index)[0]
        n_runs = int(run[-1]) + 1
        series = torch.zeros(n_runs, dtype=torch.int64, device=device).scatter_(0, run, ids)
        t = torch.zeros(n_runs, dtype=torch.int64, device=device).scatter_(0, run, bin_index)
        x = torch.zeros(n_runs, dtype=torch.float64, device=device).index_add_(0, run, sizes)
        x = x / torch.bincount(run, minlength=n_runs)
        n_series = n_bins.numel()
        n = n_bins.to(torch.float64)
        total = torch.zeros(n_series, dtype=torch.float64, device=device).index_add_(0, series, x)
        mu = total / n.clamp(min=1)
        empty = n - torch.bincount(series, minlength=n_series)
        var = torch.zeros_like(total).index_add_(0, series, (x - mu[series]) ** 2) + empty * mu * mu

        width = lags + 1
        cross = torch.zeros(n_series * width, dtype=torch.float64, device=device)
        for j in range(
            1, min(lags, n_runs - 1) + 1
        ):  # pairs of non-empty bins at most `lags` apart
            a, b = torch.arange(n_runs - j, device=device), torch.arange(j, n_runs, device=device)
            lag = t[b] - t[a]
            ok = (series[a] == series[b]) & (lag <= lags)
            cross.index_add_(0, (series[a] * width + lag)[ok], (x[a] * x[b])[ok])
        edge = []
        for position in (t, n_bins[series] - 1 - t):  # head: first k values; tail: last k values
            near = position < lags
            sums = torch.zeros(n_series * width, dtype=torch.float64, device=device)
            sums.index_add_(0, (series * width + position + 1)[near], x[near])
            edge.append(sums.view(n_series, width).cumsum(1)[:, 1:])
        k = torch.arange(1, width, device=device, dtype=torch.float64)
        cov = (
            cross.view(n_series, width)[:, 1:]
            - mu[:, None] * (2 * total[:, None] - edge[0] - edge[1])
            + (n[:, None] - k) * mu[:, None] ** 2
        )
        valid = (k <= n[:, None] - 1) & (var[:, None] > 0)
        r = torch.where(
            valid, cov / var.clamp(min=torch.finfo(var.dtype).tiny)[:, None], torch.zeros_like(cov)
        )
        count = valid.sum(1).clamp(min=1)
        mean = r.sum(1) / count
        std = (
            (torch.where(valid, r - mean[:, None], torch.zeros_like(r)) ** 2)
            .sum(1)
            .div(count)
            .sqrt()
        )
        out = torch.stack([mean, self._spread(std, mean)], 1)
        return out.reshape(2, n_draws, 2).permute(1, 0, 2).reshape(n_draws, 4)


# ---------------------------------------------------------------------- helpers
def _per_record(bags: Bags) -> dict:
    """Per-record values that never change under resampling, computed once per Bags.

    Fields, bit-packed into as few (N,) int64 ``words`` as fit (one gather per word serves them
    all; ``layout`` maps a field to (word, shift, mask), read with :func:`_field`): inbound (0/1);
    client, the dense client index (n_clients of them); rank0..rank2, the index of each of
    [pkts, bytes / max(pkts, 1), bytes] into ``levels``, the sorted distinct float64 values of
    that column (so ``levels[c][rank_c]`` is the value itself).
    """

    def build() -> dict:
        c = bags.columns
        inbound = c["dst"] == c["server"]
        client, clients = _dense_codes(torch.where(inbound, c["src"], c["dst"]))
        n_clients = clients.numel()
        levels_p, rank_p = _levels(c["pkts"].to(torch.float64), c["pkts"])
        levels_b, rank_b = _levels(c["bytes"].to(torch.float64), c["bytes"])
        # bytes / max(pkts, 1) takes one value per distinct (pkts, bytes) pair: rank those only
        pair, pairs = _dense_codes(rank_p.long() * levels_b.numel() + rank_b)
        per_pair = levels_b.index_select(0, pairs % levels_b.numel()) / levels_p.index_select(
            0, pairs // levels_b.numel()
        ).clamp(min=1)
        levels_r, rank_r = torch.unique(per_pair, return_inverse=True)
        levels = (levels_p, levels_r, levels_b)
        ranks = (rank_p, rank_r.int().index_select(0, pair), rank_b)
        fields = {"inbound": (inbound, 2), "client": (client, n_clients)}
        fields.update(
            {f"rank{i}": (rank, lv.numel()) for i, (rank, lv) in enumerate(zip(ranks, levels))}
        )
        words, layout = _pack(fields)
        return {
            "words": words,
            "layout": layout,
            "n_clients": max(n_clients, 1),
            "levels": list(levels),
        }

    return bags.cached("flows.per_record", build)


def _pack(
    fields: dict[str, tuple[Tensor, int]],
) -> tuple[list[Tensor], dict[str, tuple[int, int, int]]]:
    """Bit-pack non-negative integer fields (values, exclusive bound) into <= 63-bit int64 words."""
    words: list[Tensor] = []
    layout: dict[str, tuple[int, int, int]] = {}
    used = 63
    for name, (values, bound) in fields.items():
        bits = max(int(bound) - 1, 1).bit_length()
        if used + bits > 63:
            words.append(torch.zeros(values.numel(), dtype=torch.int64, device=values.device))
            used = 0
        words[-1] |= values.long() << used
        layout[name] = (len(words) - 1, used, (1 << bits) - 1)
        used += bits
    return words, layout


def _field(words: list[Tensor], layout: dict, name: str) -> Tensor:
    """(R,) int64 field ``name`` of the gathered packed ``words``."""
    word, shift, mask = layout[name]
    return (words[word] >> shift) & mask if shift else words[word] & mask


def _dense_codes(codes: Tensor) -> tuple[Tensor, Tensor]:
    """(N,) int64 index of every integer code among the sorted distinct ``codes``, and those.

    Codes in [0, 4N] take a presence table (linear time); others ``torch.unique``.
    """
    if (
        codes.numel()
        and codes.device.type == "cpu"
        and 0 <= int(codes.min())
        and int(codes.max()) <= 4 * codes.numel()
    ):
        present = torch.zeros(int(codes.max()) + 1, dtype=torch.bool)
        present[codes] = True
        index = present.cumsum(0) - 1
        return index.index_select(0, codes), seg.nonzero(present)
    distinct, index = torch.unique(codes, return_inverse=True)
    return index, distinct


def _levels(values: Tensor, integers: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Sorted distinct float64 ``values`` and the (N,) int32 index of every value among them.

    ``integers``, when given, is an integer column with ``values == integers.double()``: its
    dense codes give the same levels in linear time (when exact in float64).
    """
    if integers is not None and (integers.numel() == 0 or int(integers.abs().max()) < 2**53):
        index, distinct = _dense_codes(integers)
        if distinct.numel() < 2**31:
            return distinct.to(torch.float64), index.int()
    if values.device.type != "cpu" or values.numel() >= 2**31:
        levels, index = torch.unique(values, return_inverse=True)
        return levels, (index.int() if levels.numel() < 2**31 else index)
    ordered = np.sort(values.numpy())
    keep = np.ones(ordered.size, dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    levels = ordered[keep]
    return torch.from_numpy(levels), torch.from_numpy(
        np.searchsorted(levels, values.numpy()).astype(np.int32)
    )


def _tuples(bags: Bags) -> tuple[Tensor, int]:
    """(N,) dense index of every record's (proto, client, client port, server port); count."""

    def build() -> tuple[Tensor, int]:
        c = bags.columns
        inbound = c["dst"] == c["server"]
        index = torch.zeros_like(c["proto"])
        for part in (
            c["proto"],
            torch.where(inbound, c["src"], c["dst"]),
            torch.where(inbound, c["sport"], c["dport"]),
            torch.where(inbound, c["dport"], c["sport"]),
        ):
            _, part = torch.unique(part, return_inverse=True)
            distinct, index = torch.unique(
                index * (int(part.max()) + 1 if part.numel() else 1) + part, return_inverse=True
            )
        return index, max(distinct.numel(), 1)

    return bags.cached("flows.tuples", build)


def _sorted_within(ids: Tensor, n_seg: int, values: Tensor, width: int) -> Tensor:
    """Integer ``values`` in [0, width) sorted within the segments of non-decreasing ``ids``."""
    return seg.sort_values(ids * width + values, n_seg * width) - ids * width


def _sort_within(ids: Tensor, n_seg: int, values: Tensor) -> Tensor:
    """Float ``values`` sorted within the segments ``ids`` (non-decreasing) holds."""
    if values.numel() == 0:
        return values
    order = seg.argsort(values)
    _, within = seg.stable_argsort(ids.index_select(0, order), n_seg)
    return values.index_select(0, order.index_select(0, within))


def _runs(*keys: Tensor) -> tuple[Tensor, Tensor]:
    """(N,) run index of every position, (U,) first position of every run of equal keys (N > 0)."""
    new = seg.run_starts(*keys)
    return new.cumsum(0) - 1, seg.nonzero(new)


def _run_starts(key: Tensor) -> Tensor:
    """(U,) first position of every run of equal values of a 1-d ``key`` (N > 0)."""
    return seg.nonzero(seg.run_starts(key))


def _run_lengths(starts: Tensor, n: int) -> Tensor:
    """(U,) int64 lengths of the runs starting at ``starts`` over n positions."""
    return torch.diff(starts, append=starts.new_full((1,), n))


def _padded_stats5(values: Tensor, offsets: Tensor, n_bins: Tensor) -> Tensor:
    """(P, F, 5) float64 mean, std, min, max, median over every draw's ``n_bins`` bins.

    ``values`` (nb, F) int64 >= 0 are the non-empty bins of each draw (CSR ``offsets``); the
    other bins count as 0 without being materialised (memory follows the records, not the span).
    """
    k = offsets.diff()
    ids = seg.segment_ids(offsets, values.shape[0])
    width = (values.max(0).values + 1).tolist()
    ordered = torch.stack(
        [_sorted_within(ids, k.numel(), values[:, c], width[c]) for c in range(values.shape[1])], 1
    ).to(torch.float64)
    values = values.to(torch.float64)
    n = n_bins.clamp(min=1).to(torch.float64)[:, None]
    zeros = (n_bins - k).to(torch.float64)[:, None]
    mean = seg.segment_sum(values, offsets) / n
    dev = values - mean[ids]
    std = ((seg.segment_sum(dev * dev, offsets) + zeros * mean * mean) / n).sqrt()
    low = torch.where(zeros > 0, torch.zeros_like(mean), seg.segment_min(values, offsets))
    high = seg.segment_max(values, offsets)
    pos = (n_bins - 1).clamp(min=0).to(torch.float64) * 0.5
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, (n_bins - 1).clamp(min=0))

    def at(i: Tensor) -> Tensor:  # value at position i of a draw's ascending bins (zeros first)
        j = i - (n_bins - k)
        v = ordered[(offsets[:-1] + j).clamp(0, values.shape[0] - 1)]
        return torch.where(((j >= 0) & (n_bins > 0))[:, None], v, torch.zeros_like(v))

    median = at(lo) + (at(hi) - at(lo)) * (pos - lo)[:, None]
    return torch.stack([mean, std, low, high, median], 2)
