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

import torch
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.features.base import Behaviour, Feature, FeatureExtractor, Segments, stats5_features
from alchemy_torch.ops import segment as seg

__all__ = ["FlowFeatures"]

B = Behaviour


class FlowFeatures(FeatureExtractor):
    """DISCLOSURE-derived flow features of server bags: (P, D) per draw, D = 49 by default."""

    kind = "flows"
    MATCHINGS = ("window", "5tuple")

    def __init__(self, bin_seconds: float = 300.0, cv_instead_of_std: bool = False, matching: str = "window",
                 match_seconds: float = 60.0, disclosure_autocorr: bool = False, autocorr_lags: int = 12,
                 dtype: torch.dtype = torch.float64):
        super().__init__(dtype)
        if matching not in self.MATCHINGS:
            raise ValueError(f"matching must be one of {self.MATCHINGS}, got {matching!r}")
        if not bin_seconds > 0 or match_seconds < 0:
            raise ValueError(f"bin_seconds must be > 0 and match_seconds >= 0, got {bin_seconds}, {match_seconds}")
        if autocorr_lags < 1:
            raise ValueError(f"autocorr_lags must be >= 1, got {autocorr_lags}")
        self.bin_seconds, self.cv = float(bin_seconds), bool(cv_instead_of_std)
        self.matching, self.match_seconds = matching, float(match_seconds)
        self.autocorr, self.autocorr_lags = bool(disclosure_autocorr), int(autocorr_lags)

    # ------------------------------------------------------------------ names
    @property
    def features(self) -> list[Feature]:
        per_dir = lambda make: [f for d in ("in", "out") for f in make(d)]  # noqa: E731
        feats = per_dir(lambda d: stats5_features(d, "pkts", f"packets per {d}-flow"))
        feats += per_dir(lambda d: stats5_features(d, "bytes_per_pkt", f"bytes per packet of {d}-flows"))
        feats += per_dir(lambda d: [
            Feature(f"{d}_nunique_bytes", B.RATE_SENSITIVE, f"number of distinct {d}-flow byte sizes"),
            Feature(f"{d}_unique_ratio_bytes", B.RATE_SENSITIVE, f"distinct {d}-flow sizes / {d}-flows"),
            Feature(f"{d}_entropy_bytes", B.SPREAD, f"entropy (nats) of the {d}-flow size frequencies"),
            Feature(f"{d}_mode_share_bytes", B.SPREAD, f"share of the most common {d}-flow size"),
            Feature(f"{d}_kurtosis_bytes", B.SPREAD, f"Pearson kurtosis of {d}-flow sizes")])
        feats += [Feature(f"access_{s}_interarrival", B.RATE_SENSITIVE,
                          f"mean over clients with >= 2 in-flows of the {s} of their inter-arrival times (s)")
                  for s in ("min", "max", "median", "std")]
        feats.append(Feature("access_ratio_clients", B.RATE_SENSITIVE, "clients with >= 2 in-flows / clients"))
        if self.matching == "window":
            feats += [Feature("bin_mean_unmatched", B.RATE_SENSITIVE, "mean over bins of sum over clients |#in - #out|"),
                      Feature("bin_std_unmatched", B.RATE_SENSITIVE, "std over bins of sum over clients |#in - #out|"),
                      Feature("all_ratio_unmatched", B.RATE_SENSITIVE, "sum over bins of unmatched / flows")]
        else:
            feats += [Feature(f"{d}_ratio_unmatched", B.RATE_SENSITIVE,
                              f"share of {d}-flows without a reverse 5-tuple flow within {self.match_seconds:g} s")
                      for d in ("in", "out")]
        feats += [Feature(f.name, B.RATE_SENSITIVE, f.description) for f in stats5_features("bin", "flows", "flows per bin")]
        feats.append(Feature("bin_share_nonempty", B.RATE_SENSITIVE, "share of bins holding a flow"))
        feats += [Feature(f.name, B.RATE_SENSITIVE, f.description)
                  for f in stats5_features("bin", "clients", "distinct clients per bin")]
        if self.autocorr:
            feats += per_dir(lambda d: [
                Feature(f"{d}_{s}_acf", B.SPREAD, f"{s} over lags of the autocorrelation of mean {d}-flow size per bin")
                for s in ("mean", "std")])
        if self.cv:
            feats = [Feature(f.name.replace("_std_", "_cv_"), f.behaviour, f.description.replace("std", "std / mean"))
                     for f in feats]
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
        ids = segments.ids
        ts = bags.columns["ts"][rows]
        inbound = per_record["inbound"][rows]
        client = per_record["client"][rows]
        values = per_record["sizes"][rows]
        ranks = per_record["ranks"][rows]

        # direction split: segments (in, draw 0..P-1), then (out, draw 0..P-1), time order kept
        dir_order = torch.cat([torch.nonzero(inbound).squeeze(1), torch.nonzero(~inbound).squeeze(1)])
        dir_offsets = _offsets(torch.cat([torch.bincount(ids[inbound], minlength=n_draws),
                                          torch.bincount(ids[~inbound], minlength=n_draws)]))

        # bins: index within the draw, non-empty bins as CSR over draws
        first = ts[offsets[:-1].clamp(max=n_rec - 1)]
        bin_index = torch.floor((ts - first[ids]) / self.bin_seconds).long()
        nonempty_draw = offsets.diff() > 0
        n_bins = torch.where(nonempty_draw, bin_index[(offsets[1:] - 1).clamp(min=0)] + 1, 0)
        bin_id = _run_ids(ids, bin_index)
        n_nonempty = int(bin_id[-1]) + 1
        bin_draw = torch.zeros(n_nonempty, dtype=torch.int64, device=device).scatter_(0, bin_id, ids)
        bin_offsets = _offsets(torch.bincount(bin_draw, minlength=n_draws))

        # one stable sort by (draw, client): time order within a client
        n_clients = per_record["n_clients"]
        by_client = torch.sort(ids * n_clients + client, stable=True)
        key_s, perm = by_client.values, by_client.indices
        in_s, ts_s, bin_s = inbound[perm], ts[perm], bin_id[perm]

        parts = [self._flow_sizes(values[dir_order], ranks[dir_order], per_record["levels"], dir_offsets, n_draws),
                 self._access(key_s[in_s], ts_s[in_s], _distinct_per_draw(key_s, n_clients, n_draws), n_clients, n_draws)]
        triple = _run_ids(key_s, bin_s)
        triple_bin = torch.zeros(int(triple[-1]) + 1, dtype=torch.int64, device=device).scatter_(0, triple, bin_s)
        flows_per_bin = torch.bincount(bin_id, minlength=n_nonempty)
        clients_per_bin = torch.bincount(triple_bin, minlength=n_nonempty)
        balance = torch.zeros(triple_bin.numel(), dtype=torch.int64, device=device).index_add_(0, triple, 2 * in_s.long() - 1)
        unmatched = torch.zeros(n_nonempty, dtype=torch.int64, device=device).index_add_(0, triple_bin, balance.abs())
        bin_values = torch.stack([flows_per_bin, clients_per_bin, unmatched], 1)
        mean, std, low, high, median = _padded_stats5(bin_values, bin_offsets, n_bins).unbind(2)
        std = self._spread(std, mean)
        if self.matching == "window":
            parts.append(torch.stack([mean[:, 2], std[:, 2],
                                      seg.segment_sum(unmatched, bin_offsets) / offsets.diff().clamp(min=1)], 1))
        else:
            parts.append(self._unmatched_5tuple(_tuples(bags), rows, ids, ts, inbound, n_draws))
        share = bin_offsets.diff().to(torch.float64) / n_bins.clamp(min=1)
        parts.append(torch.stack([mean[:, 0], std[:, 0], low[:, 0], high[:, 0], median[:, 0], share], 1))
        parts.append(torch.stack([mean[:, 1], std[:, 1], low[:, 1], high[:, 1], median[:, 1]], 1))
        if self.autocorr:
            parts.append(self._autocorrelation(values[dir_order, 2], bin_index[dir_order], dir_offsets,
                                               n_bins.repeat(2), n_draws))
        return torch.cat([p.to(torch.float64) for p in parts], 1)

    def _spread(self, std: Tensor, mean: Tensor) -> Tensor:
        """std, or std / |mean| (0 where mean is 0) under ``cv_instead_of_std``."""
        if not self.cv:
            return std
        return torch.where(mean != 0, std / mean.abs().clamp(min=torch.finfo(std.dtype).tiny), torch.zeros_like(std))

    def _flow_sizes(self, values: Tensor, ranks: Tensor, levels: list[Tensor], offsets: Tensor, n_draws: int) -> Tensor:
        """(P, 30) features 1-3 over 2P direction segments.

        values (R, 3) float64 [pkts, bytes_per_pkt, bytes]; ranks (R, 3) their indices into the
        sorted distinct ``levels`` of each column, so one integer sort orders every segment.
        """
        n = offsets.diff()
        ids = seg.segment_ids(offsets, values.shape[0])
        mean = seg.segment_mean(values, offsets)
        dev = values - mean[ids]
        m2 = seg.segment_mean(dev * dev, offsets)
        width = torch.tensor([lv.numel() for lv in levels], device=ids.device)
        key = torch.sort(ids[:, None] * width + ranks, dim=0).values - ids[:, None] * width
        ordered = torch.stack([lv[key[:, c]] for c, lv in enumerate(levels)], 1)
        stats = torch.stack([mean, self._spread(m2.sqrt(), mean), seg.segment_min(values, offsets),
                             seg.segment_max(values, offsets), seg.segment_median(values, offsets, sorted_x=ordered)], 2)
        stats = stats[:, :2].reshape(2, n_draws, 2, 5).permute(1, 2, 0, 3).reshape(n_draws, 20)

        # distinct sizes: runs of equal values in the segment-sorted bytes
        run = _run_ids(ids, key[:, 2])
        run_length = torch.bincount(run)
        run_seg = torch.zeros_like(run_length).scatter_(0, run, ids)
        n_f = n.clamp(min=1).to(torch.float64)
        p = run_length / n_f[run_seg]
        nunique = torch.bincount(run_seg, minlength=n.numel()).to(torch.float64)
        entropy = torch.zeros_like(n_f).index_add_(0, run_seg, -p * p.log())
        mode = torch.zeros_like(n_f).scatter_reduce_(0, run_seg, p, reduce="amax", include_self=True)
        m4 = seg.segment_mean(dev[:, 2] ** 4, offsets)
        var = m2[:, 2]
        kurtosis = torch.where(var > 0, m4 / var.clamp(min=torch.finfo(var.dtype).tiny) ** 2, torch.zeros_like(var))
        unique = torch.stack([nunique, nunique / n_f, entropy, mode, kurtosis], 1)
        return torch.cat([stats, unique.reshape(2, n_draws, 5).permute(1, 0, 2).reshape(n_draws, 10)], 1)

    def _access(self, key: Tensor, ts: Tensor, clients: Tensor, n_clients: int, n_draws: int) -> Tensor:
        """(P, 5) feature 4 from in-flows sorted by (draw, client) key then time; ``clients`` (P,)."""
        group_key, counts = torch.unique_consecutive(key, return_counts=True)
        diffs, diff_offsets = seg.segment_diff(ts, _offsets(counts))
        stats = torch.stack([seg.segment_min(diffs, diff_offsets), seg.segment_max(diffs, diff_offsets),
                             seg.segment_median(diffs, diff_offsets),
                             self._spread(seg.segment_std(diffs, diff_offsets, correction=0),
                                          seg.segment_mean(diffs, diff_offsets))], 1)
        regular = counts >= 2
        draw = torch.div(group_key[regular], n_clients, rounding_mode="floor")
        n_regular = torch.bincount(draw, minlength=n_draws).to(torch.float64)
        total = torch.zeros(n_draws, 4, dtype=torch.float64, device=ts.device).index_add_(0, draw, stats[regular])
        return torch.cat([total / n_regular.clamp(min=1).unsqueeze(1),
                          (n_regular / clients.clamp(min=1)).unsqueeze(1)], 1)

    def _unmatched_5tuple(self, tuples: tuple[Tensor, int], rows: Tensor, ids: Tensor, ts: Tensor, inbound: Tensor,
                          n_draws: int) -> Tensor:
        """(P, 2) unmatched share of in- and out-flows under 5-tuple matching within ``match_seconds``."""
        tuple_index, n_tuples = tuples
        ordered = torch.sort(ids * n_tuples + tuple_index[rows], stable=True)
        key, perm = ordered.values, ordered.indices
        t, inb = ts[perm], inbound[perm]
        n = key.numel()
        pos = torch.arange(n, device=key.device)
        matched = torch.zeros(n, dtype=torch.bool, device=key.device)
        for reverse in (inb, ~inb):  # the flows that can match the others
            own = ~reverse
            before = torch.where(reverse, pos, -1).cummax(0).values
            after = torch.where(reverse, pos, n).flip(0).cummin(0).values.flip(0)
            for other in (before, after):
                j = other.clamp(0, n - 1)
                ok = (other >= 0) & (other < n) & (key[j] == key) & ((t[j] - t).abs() <= self.match_seconds)
                matched |= own & ok
        draw = torch.div(key, n_tuples, rounding_mode="floor")
        out = []
        for direction in (inb, ~inb):
            flows = torch.bincount(draw[direction], minlength=n_draws)
            lone = torch.bincount(draw[direction & ~matched], minlength=n_draws)
            out.append(lone.to(torch.float64) / flows.clamp(min=1))
        return torch.stack(out, 1)

    def _autocorrelation(self, sizes: Tensor, bin_index: Tensor, offsets: Tensor, n_bins: Tensor,
                         n_draws: int) -> Tensor:
        """(P, 4) mean and std of r_1..r_L of the mean-size-per-bin series of 2P direction segments.

        With x_t = 0 in bins without flows, S = sum x, mu = S / n, V = sum (x - mu)^2:
        sum_{t<n-k} (x_t - mu)(x_{t+k} - mu) = sum x_t x_{t+k} - mu (2S - head_k - tail_k) + (n-k) mu^2
        with head_k / tail_k the sums of the first / last k values; only non-empty bins are visited.
        """
        lags = self.autocorr_lags
        device = sizes.device
        ids = seg.segment_ids(offsets, sizes.numel())
        run = _run_ids(ids, bin_index)
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
        for j in range(1, min(lags, n_runs - 1) + 1):  # pairs of non-empty bins at most `lags` apart
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
        cov = (cross.view(n_series, width)[:, 1:] - mu[:, None] * (2 * total[:, None] - edge[0] - edge[1])
               + (n[:, None] - k) * mu[:, None] ** 2)
        valid = (k <= n[:, None] - 1) & (var[:, None] > 0)
        r = torch.where(valid, cov / var.clamp(min=torch.finfo(var.dtype).tiny)[:, None], torch.zeros_like(cov))
        count = valid.sum(1).clamp(min=1)
        mean = r.sum(1) / count
        std = (torch.where(valid, r - mean[:, None], torch.zeros_like(r)) ** 2).sum(1).div(count).sqrt()
        out = torch.stack([mean, self._spread(std, mean)], 1)
        return out.reshape(2, n_draws, 2).permute(1, 0, 2).reshape(n_draws, 4)


# ---------------------------------------------------------------------- helpers
def _per_record(bags: Bags) -> dict:
    """Per-record values that never change under resampling, computed once per Bags.

    inbound (N,) bool; client (N,) dense client index (n_clients of them); sizes (N, 3)
    float64 [pkts, bytes / max(pkts, 1), bytes]; ranks (N, 3) int64 index of each size into
    ``levels``, the sorted distinct values of each column.
    """
    def build() -> dict:
        c = bags.columns
        inbound = c["dst"] == c["server"]
        clients, client = torch.unique(torch.where(inbound, c["src"], c["dst"]), return_inverse=True)
        pkts, size = c["pkts"].to(torch.float64), c["bytes"].to(torch.float64)
        sizes = torch.stack([pkts, size / pkts.clamp(min=1), size], 1)
        levels, ranks = zip(*(torch.unique(col, return_inverse=True) for col in sizes.unbind(1)))
        return {"inbound": inbound, "client": client, "n_clients": max(clients.numel(), 1), "sizes": sizes,
                "ranks": torch.stack(ranks, 1), "levels": list(levels)}
    return bags.cached("flows.per_record", build)


def _tuples(bags: Bags) -> tuple[Tensor, int]:
    """(N,) dense index of every record's (proto, client, client port, server port), and their number."""
    def build() -> tuple[Tensor, int]:
        c = bags.columns
        inbound = c["dst"] == c["server"]
        index = torch.zeros_like(c["proto"])
        for part in (c["proto"], torch.where(inbound, c["src"], c["dst"]), torch.where(inbound, c["sport"], c["dport"]),
                     torch.where(inbound, c["dport"], c["sport"])):
            _, part = torch.unique(part, return_inverse=True)
            distinct, index = torch.unique(index * (int(part.max()) + 1 if part.numel() else 1) + part,
                                           return_inverse=True)
        return index, max(distinct.numel(), 1)
    return bags.cached("flows.tuples", build)


def _offsets(lengths: Tensor) -> Tensor:
    """(S+1,) CSR offsets of segment ``lengths`` (S,)."""
    offsets = torch.zeros(lengths.numel() + 1, dtype=torch.int64, device=lengths.device)
    offsets[1:] = lengths.cumsum(0)
    return offsets


def _run_ids(*keys: Tensor) -> Tensor:
    """(N,) index of the run of consecutive equal key tuples every position belongs to (N > 0)."""
    new = torch.zeros(keys[0].numel(), dtype=torch.bool, device=keys[0].device)
    new[0] = True
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    return new.cumsum(0) - 1


def _distinct_per_draw(key: Tensor, n_clients: int, n_draws: int) -> Tensor:
    """(P,) float64 distinct clients per draw from the sorted (draw * n_clients + client) keys."""
    distinct = torch.unique_consecutive(key)
    return torch.bincount(torch.div(distinct, n_clients, rounding_mode="floor"), minlength=n_draws).to(torch.float64)


def _padded_stats5(values: Tensor, offsets: Tensor, n_bins: Tensor) -> Tensor:
    """(P, F, 5) float64 mean, std, min, max, median over every draw's ``n_bins`` bins.

    ``values`` (nb, F) int64 >= 0 are the non-empty bins of each draw (CSR ``offsets``); the
    other bins count as 0 without being materialised (memory follows the records, not the span).
    """
    k = offsets.diff()
    ids = seg.segment_ids(offsets, values.shape[0])
    width = values.max(0).values + 1
    ordered = (torch.sort(ids[:, None] * width + values, dim=0).values - ids[:, None] * width).to(torch.float64)
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
