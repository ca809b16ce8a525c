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

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.features import flows_kernel
from alchemy_torch.features.base import (
    Behaviour,
    Feature,
    FeatureExtractor,
    Segments,
    require_choice,
    require_integer,
    stats5_features,
)
from alchemy_torch.ops import kernels
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
        """(P, D) features of the gathered draws: the steps below, in output order.

        The default groups (1-7, window matching) come from one compiled pass per draw on the
        host (:mod:`~alchemy_torch.features.flows_kernel`), else from the torch steps; the
        options' groups from the torch steps.
        """
        n_draws = len(segments)
        if segments.rows.numel() == 0:
            return torch.zeros(
                n_draws, len(self.features), dtype=torch.float64, device=segments.offsets.device
            )
        flows = bins = None
        if kernels.enabled(segments.rows):
            default = self._compiled_default(segments)
        else:
            flows = _Flows.gather(segments)
            bins = _Bins.of(flows, float(self.bin_seconds))
            default = self._default(flows, bins)
        parts = [default[:, :35], default[:, 35:38], default[:, 38:]]
        if self.matching == "5tuple":
            rows = segments.rows
            outbound = _per_record(segments.bags)["block"][_COLUMNS.index("out")]
            parts[1] = self._unmatched_5tuple(
                _tuples(segments.bags),
                rows,
                segments.ids,
                segments.column("ts"),
                outbound.index_select(0, rows) == 0,
                n_draws,
            )
        if self.disclosure_autocorr:
            if flows is None:
                flows = _Flows.gather(segments)
                bins = _Bins.of(flows, float(self.bin_seconds))
            dir_order, dir_ids = _split_directions(flows)
            sizes = flows.per_record["levels"][2].index_select(
                0, flows.field("rank2").index_select(0, dir_order).long()
            )
            parts.append(
                self._autocorrelation(
                    sizes,
                    bins.index.index_select(0, dir_order),
                    dir_ids,
                    bins.count.repeat(2),
                    n_draws,
                )
            )
        return torch.cat([p.to(torch.float64) for p in parts], 1)

    def _compiled_default(self, segments: Segments) -> Tensor:
        """(P, 49) features 1-7 (window matching) by the compiled kernel."""
        bags, per_bag = segments.bags, _per_bag(segments.bags)
        return flows_kernel.default_features(
            segments.rows,
            segments.offsets,
            segments.owner,
            bags.offsets,
            bags.columns["ts"].to(torch.float64),
            _per_record(bags)["block"][_COLUMNS.index("out")],
            per_bag["local"],
            per_bag["level_offsets"],
            per_bag["levels"],
            per_bag["client_offsets"],
            float(self.bin_seconds),
            self.cv_instead_of_std,
        )

    def _default(self, flows: "_Flows", bins: "_Bins") -> Tensor:
        """(P, 49) features 1-7 (window matching) by the torch steps."""
        by_client = _ByClient.of(flows, bins.of_record)
        per_bin = _per_bin_counts(by_client, bins)
        mean, std, low, high, median = _padded_stats5(per_bin, bins.offsets, bins.count).unbind(2)
        std = self._spread(std, mean)
        share = bins.offsets.diff().to(torch.float64) / bins.count.clamp(min=1)
        total = seg.segment_sum(per_bin[:, 2], bins.offsets) / flows.offsets.diff().clamp(min=1)
        return torch.cat(
            [
                self._flow_sizes(flows),
                self._access(by_client, flows),
                torch.stack([mean[:, 2], std[:, 2], total], 1),
                torch.stack([mean[:, 0], std[:, 0], low[:, 0], high[:, 0], median[:, 0], share], 1),
                torch.stack([mean[:, 1], std[:, 1], low[:, 1], high[:, 1], median[:, 1]], 1),
            ],
            1,
        )

    def _spread(self, std: Tensor, mean: Tensor) -> Tensor:
        """std, or std / |mean| (0 where mean is 0) under ``cv_instead_of_std``."""
        if not self.cv_instead_of_std:
            return std
        return torch.where(
            mean != 0,
            std / mean.abs().clamp(min=torch.finfo(std.dtype).tiny),
            torch.zeros_like(std),
        )

    def _flow_sizes(self, flows: "_Flows") -> Tensor:
        """(P, 30) features 1-3 over the 2P (draw, direction) groups, records in bag order.

        The per-record ranks of [pkts, bytes_per_pkt, bytes] into the sorted distinct ``levels``
        of each column (cached once per Bags) give every group's distinct values and their
        counts (:func:`~alchemy_torch.ops.segment.group_value_runs`: a (group, rank) histogram
        where a column has few levels, else one integer sort of values); every statistic then
        reads those runs, not the records.
        """
        n_draws = flows.n_draws
        out = flows.field("out")
        groups = flows.ids.to(out.dtype) * 2 + out  # (draw, direction): in, then out
        stats = []
        for c, levels in enumerate(flows.per_record["levels"]):
            level, count, run_offsets, run, offsets = seg.group_value_runs(
                flows.field(f"rank{c}"), levels.numel(), groups, 2 * n_draws
            )
            v = levels.index_select(0, level)
            if c < 2:  # packets, bytes per packet: stats5
                mean, std, low, high, median = seg.segment_runs_stats5(
                    v, count, run_offsets, run, offsets
                ).unbind(1)
                stats.append(torch.stack([mean, self._spread(std, mean), low, high, median], 1))
                continue
            # bytes: distinct sizes, their entropy and mode share, kurtosis
            n_f = offsets.diff().clamp(min=1).to(torch.float64)
            weight = count.to(torch.float64)
            mean = seg.segment_sum(v * weight, run_offsets) / n_f
            square = (v - mean.index_select(0, run)) ** 2
            m2 = seg.segment_sum(square * weight, run_offsets) / n_f
            # squares of squares: exact in every position, where pow(x, 4) is not
            m4 = seg.segment_sum(square * square * weight, run_offsets) / n_f
            kurtosis = torch.where(
                m2 > 0, m4 / m2.clamp(min=torch.finfo(m2.dtype).tiny) ** 2, torch.zeros_like(m2)
            )
            nunique = run_offsets.diff().to(torch.float64)
            unique = torch.stack(
                [
                    nunique,
                    nunique / n_f,
                    # -sum p log p with p = c / n: log n - sum c log c / n
                    n_f.log() - seg.segment_sum(weight * weight.log(), run_offsets) / n_f,
                    seg.segment_max(weight, run_offsets) / n_f,
                    kurtosis,
                ],
                1,
            )
        # (draw, direction, column, 5) -> (draw, column, direction, 5)
        stats = torch.stack(stats, 1).reshape(n_draws, 2, 2, 5).transpose(1, 2)
        return torch.cat([stats.reshape(n_draws, 20), unique.reshape(n_draws, 10)], 1)

    def _access(self, by_client: "_ByClient", flows: "_Flows") -> Tensor:
        """(P, 5) feature 4: inter-arrival statistics of the clients with >= 2 in-flows.

        The gaps of every client are sorted by one integer sort of (client, gap / quantum)
        where they lie on the grid of the timestamps' spacing (:func:`_gap_quantum`), else by
        :func:`~alchemy_torch.ops.segment.segment_sort`; both give the same values.
        """
        n_clients, n_draws = flows.per_record["n_clients"], flows.n_draws
        clients = seg.nonzero(by_client.new_client)  # every (draw, client)
        distinct = torch.bincount(
            torch.div(by_client.key.index_select(0, clients), n_clients, rounding_mode="floor"),
            minlength=n_draws,
        ).to(torch.float64)
        in_pos = seg.nonzero(by_client.inbound)
        key = by_client.key.index_select(0, in_pos)
        groups = seg.run_offsets(key)  # the in-flows of every (draw, client), in time order
        diffs, diff_offsets = seg.segment_diff(
            flows.ts.index_select(0, by_client.order.index_select(0, in_pos)), groups
        )
        ordered = seg.segment_sort_grid(diffs, diff_offsets, _gap_quantum(flows))
        stats = torch.stack(
            [
                seg.segment_first(ordered, diff_offsets),
                seg.segment_last(ordered, diff_offsets),
                seg.segment_median(ordered, diff_offsets, sorted_x=ordered),
                self._spread(
                    seg.segment_std(diffs, diff_offsets, correction=0),
                    seg.segment_mean(diffs, diff_offsets),
                ),
            ],
            1,
        )
        regular = seg.nonzero(groups.diff() >= 2)
        draw = torch.div(
            key.index_select(0, groups.index_select(0, regular)), n_clients, rounding_mode="floor"
        )
        n_regular = torch.bincount(draw, minlength=n_draws).to(torch.float64)
        total = torch.zeros(n_draws, 4, dtype=torch.float64, device=diffs.device).index_add_(
            0, draw, stats.index_select(0, regular)
        )
        return torch.cat(
            [
                total / n_regular.clamp(min=1).unsqueeze(1),
                (n_regular / distinct.clamp(min=1)).unsqueeze(1),
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
        runs = seg.run_offsets(ids, bin_index)  # the non-empty bins of every series
        n_runs = runs.numel() - 1
        run = seg.segment_ids(runs, ids.numel())
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


# ---------------------------------------------------------------------- steps of compute
@dataclass
class _Flows:
    """The records of a group of draws, gathered: (R,) values in draw, then time order."""

    bags: Bags
    rows: Tensor  # (R,) record indices into the Bags
    offsets: Tensor  # (P+1,) CSR of the draws
    ids: Tensor  # (R,) draw of every record
    ts: Tensor  # (R,)
    per_record: dict  # the Bags' per-record columns, see _per_record
    columns: Tensor  # (F, R) those columns at the gathered records, one contiguous block

    @classmethod
    def gather(cls, segments: Segments) -> "_Flows":
        per_record = _per_record(segments.bags)
        return cls(
            bags=segments.bags,
            rows=segments.rows,
            offsets=segments.offsets,
            ids=segments.ids,
            ts=segments.bags.columns["ts"].index_select(0, segments.rows),
            per_record=per_record,
            columns=seg.gather_columns(per_record["block"], segments.rows),
        )

    @property
    def n_draws(self) -> int:
        return self.offsets.numel() - 1

    def field(self, name: str) -> Tensor:
        """(R,) integer column ``name`` (see :func:`_per_record`) of the gathered records."""
        return self.columns[_COLUMNS.index(name)]

    @property
    def inbound(self) -> Tensor:
        """(R,) bool: client -> server."""
        return self.field("out") == 0


def _split_directions(flows: _Flows) -> tuple[Tensor, Tensor]:
    """Segments (in, draw 0..P-1) then (out, draw 0..P-1), time order kept.

    Returns (R,) order of the records and (R,) segment of each.
    """
    inbound = flows.inbound
    order = seg.concat([seg.nonzero(inbound), seg.nonzero(~inbound)])
    ids = flows.ids.index_select(0, order)
    ids[int(inbound.sum()) :] += flows.n_draws
    return order, ids


@dataclass
class _Bins:
    """Time bins of every draw, aligned to its first record; only non-empty ones are stored."""

    index: Tensor  # (R,) bin of every record within its draw
    count: Tensor  # (P,) bins spanned by every draw, empty ones included (0 for an empty draw)
    of_record: Tensor  # (R,) non-empty bin of every record (indexes the rows below)
    offsets: Tensor  # (P+1,) CSR of the non-empty bins over draws
    flows: Tensor  # (nb,) int64 flows per non-empty bin

    @classmethod
    def of(cls, flows: _Flows, bin_seconds: float) -> "_Bins":
        first = seg.segment_first(flows.ts, flows.offsets)
        index = torch.floor((flows.ts - first.index_select(0, flows.ids)) / bin_seconds).long()
        lengths = flows.offsets.diff()
        count = torch.where(lengths > 0, seg.segment_last(index, flows.offsets) + 1, 0)
        # a bin starts where the index changes within a draw, and at every draw's first record
        start = seg.run_starts(index)
        start[flows.offsets[:-1][lengths > 0]] = True
        runs = seg.concat([seg.nonzero(start), index.new_full((1,), index.numel())])
        return cls(
            index=index,
            count=count,
            of_record=start.cumsum(0) - 1,
            offsets=seg.offsets_from_ids(flows.ids.index_select(0, runs[:-1]), flows.n_draws),
            flows=runs.diff(),
        )


@dataclass
class _ByClient:
    """The records stably sorted by (draw, client): time order within every client."""

    key: Tensor  # (R,) int64 draw * n_clients + client, ascending
    order: Tensor  # (R,) position of every sorted record among the gathered ones
    inbound: Tensor  # (R,) bool
    bin: Tensor  # (R,) non-empty bin (see _Bins.of_record)
    new_client: Tensor  # (R,) bool: the first record of a (draw, client)

    @classmethod
    def of(cls, flows: _Flows, bin_of_record: Tensor) -> "_ByClient":
        n_clients = flows.per_record["n_clients"]
        key, order = seg.stable_argsort(
            flows.ids * n_clients + flows.field("client"), flows.n_draws * n_clients
        )
        return cls(
            key=key,
            order=order,
            inbound=flows.inbound.index_select(0, order),
            bin=bin_of_record.index_select(0, order),
            new_client=seg.run_starts(key),
        )


def _per_bin_counts(by_client: _ByClient, bins: _Bins) -> Tensor:
    """(nb, 3) int64 flows, distinct clients and sum over clients of |#in - #out| per bin."""
    start = seg.run_starts(by_client.bin) | by_client.new_client  # every (draw, client, bin)
    triples = seg.concat([seg.nonzero(start), by_client.bin.new_full((1,), start.numel())])
    triple_bin = by_client.bin.index_select(0, triples[:-1])
    n_bins = bins.flows.numel()
    clients = torch.bincount(triple_bin, minlength=n_bins)
    in_before = seg.offsets_from_lengths(by_client.inbound)  # (R+1,) in-flows before a position
    balance = 2 * in_before.index_select(0, triples).diff() - triples.diff()
    unmatched = torch.zeros(n_bins, dtype=torch.int64, device=balance.device).index_add_(
        0, triple_bin, balance.abs()
    )
    return torch.stack([bins.flows, clients, unmatched], 1)


# ---------------------------------------------------------------------- helpers
#: the rows of the per-record block (:func:`_per_record`)
_COLUMNS = ("client", "out", "rank0", "rank1", "rank2")


def _per_record(bags: Bags) -> dict:
    """Per-record values that never change under resampling, computed once per Bags.

    ``block`` (5, N), int32 where every bound fits (else int64), one row per column of
    :data:`_COLUMNS` (one gather per chunk serves them all): client, the dense client index
    (n_clients of them); out, 1 for server -> client; rank0..rank2, the index of each of
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
        ranks = (rank_p, rank_r.index_select(0, pair), rank_b)
        fits = max(n_clients, *(lv.numel() for lv in levels)) < 2**31
        dtype = torch.int32 if fits else torch.int64
        block = torch.stack([client.to(dtype), (~inbound).to(dtype), *(r.to(dtype) for r in ranks)])
        return {"block": block, "n_clients": max(n_clients, 1), "levels": list(levels)}

    return bags.cached("flows.per_record", build)


def _per_bag(bags: Bags) -> dict:
    """The per-bag codes the compiled path reads (:mod:`~alchemy_torch.features.flows_kernel`),
    once per Bags: ``local`` (4, N) int32, every record's client and [pkts, bytes per packet,
    bytes] ranks as indices among its own bag's distinct ones; ``levels`` (L,) float64 the
    bags' distinct values of the three columns, ``level_offsets`` (3, B+1) where each bag's
    start; ``client_offsets`` (B+1,) the bags' distinct clients."""

    def build() -> dict:
        per_record = _per_record(bags)
        block, levels = per_record["block"], per_record["levels"]
        n_codes = [per_record["n_clients"], *(lv.numel() for lv in levels)]
        rows = [_COLUMNS.index(name) for name in ("client", "rank0", "rank1", "rank2")]
        local, codes, offsets = zip(
            *(flows_kernel.local_codes(block[r], n, bags.offsets) for r, n in zip(rows, n_codes))
        )
        values = [lv.index_select(0, c) for lv, c in zip(levels, codes[1:])]
        starts = torch.tensor([0, *(v.numel() for v in values)]).cumsum(0)[:-1]
        return {
            "local": torch.stack(local),
            "levels": torch.cat(values),
            "level_offsets": torch.stack(offsets[1:]) + starts[:, None],
            "client_offsets": offsets[0],
        }

    return bags.cached("flows.per_bag", build)


def _gap_quantum(flows: _Flows) -> float:
    """The spacing of float64 numbers at the smallest non-zero |timestamp| among the draws'
    first and last ones (1.0 when all are 0): the timestamps, and so their gaps, are multiples of
    it unless a draw crosses 0 (:func:`~alchemy_torch.ops.segment.segment_sort_grid` checks)."""
    ends = torch.cat(
        [seg.segment_first(flows.ts, flows.offsets), seg.segment_last(flows.ts, flows.offsets)]
    ).abs()
    smallest = float(torch.where(ends > 0, ends, torch.full_like(ends, math.inf)).min())
    if math.isinf(smallest):
        return 1.0
    return math.ldexp(1.0, math.frexp(smallest)[1] - 53)


def _dense_codes(codes: Tensor) -> tuple[Tensor, Tensor]:
    """(N,) int64 index of every integer code among the sorted distinct ``codes``, and those.

    Codes in [0, 4N] take a presence table (linear time); others ``torch.unique``.
    """
    if (
        codes.numel()
        and seg.on_host(codes)
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
    if not seg.on_host(values) or values.numel() >= 2**31:
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


def _padded_stats5(values: Tensor, offsets: Tensor, n_bins: Tensor) -> Tensor:
    """(P, F, 5) float64 mean, std, min, max, median over every draw's ``n_bins`` bins.

    ``values`` (nb, F) int64 >= 0 are the non-empty bins of each draw (CSR ``offsets``); the
    other bins count as 0 without being materialised (memory follows the records, not the span).
    """
    k = offsets.diff()
    ids = seg.segment_ids(offsets, values.shape[0])
    width = (values.max(0).values + 1).tolist()
    ordered = torch.stack(
        [
            seg.segment_sort_codes(values[:, c], width[c], ids, k.numel())
            for c in range(values.shape[1])
        ],
        1,
    ).to(torch.float64)
    values = values.to(torch.float64)
    n = n_bins.clamp(min=1).to(torch.float64)[:, None]
    zeros = (n_bins - k).to(torch.float64)[:, None]
    mean = seg.segment_sum(values, offsets) / n
    dev = values - mean[ids]
    std = ((seg.segment_sum(dev * dev, offsets) + zeros * mean * mean) / n).sqrt()
    low = torch.where(zeros > 0, torch.zeros_like(mean), seg.segment_min(values, offsets))
    high = seg.segment_max(values, offsets)
    lo, hi, frac = seg.quantile_positions(n_bins, 0.5)

    def at(i: Tensor) -> Tensor:  # value at position i of a draw's ascending bins (zeros first)
        j = i - (n_bins - k)
        v = ordered[(offsets[:-1] + j).clamp(0, values.shape[0] - 1)]
        return torch.where(((j >= 0) & (n_bins > 0))[:, None], v, torch.zeros_like(v))

    median = at(lo) + (at(hi) - at(lo)) * frac[:, None]
    return torch.stack([mean, std, low, high, median], 2)
