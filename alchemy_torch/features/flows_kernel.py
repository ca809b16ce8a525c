"""The default flow features (1-7 of :mod:`~alchemy_torch.features.flows`, window matching) of a
chunk of draws, compiled (numba): one pass over every draw's records, then passes over its
value runs, clients and bins only.

The torch steps of :class:`~alchemy_torch.features.flows.FlowFeatures` gather every column of
every record and then make ~60 elementwise passes over them; here each draw reads its records
once, where they lie. Order statistics and distinct counts read per-draw histograms over
**per-bag ranks** (a value's index among its own bag's distinct values, built once per Bags by
:func:`local_codes`), so a histogram is at most the bag's size, whatever the corpus. Every sum
runs in the order the torch steps sum (ascending value, client, bin; time within a client), so
the two paths give the same float64 values but for std's last bit (torch's float64 sqrt is
at times one ulp off the correctly rounded one): the tests hold them to rtol 1e-13. The
kernel holds no GIL: a chunk's draws are shared among ``torch.get_num_threads()`` threads.

Contract: the rows of a draw lie in its owner's bag, in time order (as Draws keep them); a row
outside the bag raises ValueError. An empty draw gives a zero row. The torch steps remain the
path for CUDA tensors, :func:`~alchemy_torch.ops.segment.device_branches` and machines without
numba (:func:`~alchemy_torch.ops.kernels.enabled`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from alchemy_torch.ops import kernels
from alchemy_torch.ops import segment as seg

__all__ = ["local_codes", "default_features", "N_DEFAULT"]

#: a draw counts a size column's values in a histogram (the bag's distinct values wide) while
#: that is at most this many cells per record of the draw, else sorts them; the same bound
#: picks a histogram or a sort for the order statistics of counts per bin
CELLS_PER_RECORD = 4
#: :func:`default_features` shares a chunk's draws among ``torch.get_num_threads()`` threads,
#: each with at least this many records (so ``OMP_NUM_THREADS=1`` runs it on one thread)
RECORDS_PER_THREAD = 1 << 16
#: columns of :func:`default_features`: sizes 30, access 5, unmatched 3, flows per bin 6,
#: clients per bin 5
N_DEFAULT = 49
_TINY = float(np.finfo(np.float64).tiny)


# ---------------------------------------------------------------------- per Bags
def _local_codes(codes, n_codes, bag_offsets, local, level_codes, level_offsets):
    """The loop of :func:`local_codes`; ``local`` (N,), ``level_codes`` (N,), ``level_offsets``
    (B+1,) out; returns the levels L."""
    slot = np.full(max(n_codes, 1), -1, np.int64)
    longest = 0
    for b in range(bag_offsets.size - 1):
        longest = max(longest, bag_offsets[b + 1] - bag_offsets[b])
    touched = np.empty(longest, np.int64)
    w = 0
    level_offsets[0] = 0
    for b in range(bag_offsets.size - 1):
        s, e = bag_offsets[b], bag_offsets[b + 1]
        t = 0
        for i in range(s, e):
            c = codes[i]
            if c < 0 or c >= n_codes:
                raise ValueError("codes must lie in [0, n_codes)")
            if slot[c] < 0:
                slot[c] = 0
                touched[t] = c
                t += 1
        distinct = np.sort(touched[:t])
        for j in range(t):
            slot[distinct[j]] = j
            level_codes[w + j] = distinct[j]
        for i in range(s, e):
            local[i] = slot[codes[i]]
        for j in range(t):
            slot[distinct[j]] = -1
        w += t
        level_offsets[b + 1] = w
    return w


def local_codes(codes: Tensor, n_codes: int, bag_offsets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bag dense codes of integer ``codes`` (N,) in [0, ``n_codes``): the (N,) int32 index of
    every record's code among its own bag's distinct codes (ascending), those (L,) int64 codes
    bag after bag, and their (B+1,) int64 offsets per bag."""
    local = np.empty(codes.numel(), np.int32)
    level_codes = np.empty(codes.numel(), np.int64)
    level_offsets = np.empty(bag_offsets.numel(), np.int64)
    n = kernels.compiled(globals(), "_local_codes")(
        codes.numpy(), n_codes, bag_offsets.numpy(), local, level_codes, level_offsets
    )
    level_codes.resize(n, refcheck=False)
    return (torch.from_numpy(x) for x in (local, level_codes, level_offsets))


# ---------------------------------------------------------------------- steps of a draw
def _spread(std, mean, cv):
    """std, or std / |mean| (0 where mean is 0) under ``cv`` (FlowFeatures._spread)."""
    if not cv:
        return std
    if mean != 0:
        return std / max(abs(mean), _TINY)
    return 0.0


def _median_position(n):
    """(lo, hi, frac) of the median among n sorted values (ops.segment.quantile_positions)."""
    pos = float(max(n - 1, 0)) * 0.5
    below = math.floor(pos)
    lo = np.int64(below)
    return lo, min(lo + 1, n - 1), pos - below


def _runs_of_histogram(hist, first, width, levels, level_base, values, counts):
    """The non-empty cells of ``hist[first : first + width]`` as runs (level value, count),
    ascending; the cells are cleared. Returns the runs M."""
    m = 0
    for j in range(width):  # branch-free: a cell is written, kept only if non-empty
        c = hist[first + j]
        values[m] = levels[level_base + j]
        counts[m] = c
        hist[first + j] = 0
        m += c != 0
    return m


def _runs_of_codes(codes, k, levels, level_base, values, counts):
    """The runs of the ``k`` per-bag codes ``codes[:k]`` (sorted in place). Returns M."""
    codes[:k].sort()
    m, i = 0, 0
    while i < k:
        j = i + 1
        while j < k and codes[j] == codes[i]:
            j += 1
        values[m] = levels[level_base + codes[i]]
        counts[m] = j - i
        m += 1
        i = j
    return m


def _stats5_of_runs(values, counts, m, n, cv, out, at):
    """mean, std, min, max, median of n records given by m runs into ``out[at : at + 5]``
    (ops.segment.segment_runs_stats5)."""
    if n == 0:
        return
    nf = float(n)
    total = 0.0
    for j in range(m):
        total += values[j] * float(counts[j])
    mean = total / nf
    total = 0.0
    for j in range(m):
        dev = values[j] - mean
        total += dev * dev * float(counts[j])
    lo, hi, frac = _median_position(n)
    low_value, high_value, seen = 0.0, 0.0, 0
    for j in range(m):  # the runs holding record positions lo and hi
        if seen <= lo < seen + counts[j]:
            low_value = values[j]
        if seen <= hi < seen + counts[j]:
            high_value = values[j]
            break
        seen += counts[j]
    out[at] = mean
    out[at + 1] = _spread(math.sqrt(total / nf), mean, cv)
    out[at + 2] = values[0]
    out[at + 3] = values[m - 1]
    out[at + 4] = low_value + (high_value - low_value) * frac


def _unique_of_runs(values, counts, m, n, out, at):
    """distinct sizes, distinct / n, entropy, mode share, kurtosis into ``out[at : at + 5]``."""
    if n == 0:
        return
    nf = float(n)
    total, entropy, mode = 0.0, 0.0, 0.0
    for j in range(m):
        w = float(counts[j])
        total += values[j] * w
        entropy += w * math.log(w)
        mode = max(mode, w)
    mean = total / nf
    m2, m4 = 0.0, 0.0
    for j in range(m):
        square = (values[j] - mean) * (values[j] - mean)
        m2 += square * float(counts[j])
        m4 += square * square * float(counts[j])
    m2, m4 = m2 / nf, m4 / nf
    out[at] = float(m)
    out[at + 1] = float(m) / nf
    out[at + 2] = math.log(nf) - entropy / nf
    out[at + 3] = mode / nf
    out[at + 4] = m4 / max(m2, _TINY) ** 2 if m2 > 0 else 0.0


def _select(x, k, at):
    """Rearranges ``x[:k]`` so that ``x[at]`` is its at-th smallest value, none after it smaller
    and none before it larger (quickselect, median-of-three pivots): one order statistic in
    linear time, where a sort takes k log k."""
    lo, hi = 0, k - 1
    while hi - lo > 16:
        mid = (lo + hi) >> 1
        a, b, c = x[lo], x[mid], x[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i, j = lo, hi
        while i <= j:
            while x[i] < pivot:
                i += 1
            while x[j] > pivot:
                j -= 1
            if i <= j:
                x[i], x[j] = x[j], x[i]
                i += 1
                j -= 1
        if at <= j:
            hi = j
        elif at >= i:
            lo = i
        else:
            return
    for i in range(lo + 1, hi + 1):  # insertion sort of what is left
        v = x[i]
        j = i - 1
        while j >= lo and x[j] > v:
            x[j + 1] = x[j]
            j -= 1
        x[j + 1] = v


def _median(x, k):
    """The median of ``x[:k]`` (k >= 1; rearranged): ops.segment.segment_median's value."""
    lo, hi, frac = _median_position(k)
    _select(x, k, lo)
    low = x[lo]
    high = low
    if hi > lo:
        high = x[hi]
        for j in range(hi + 1, k):
            high = min(high, x[j])
    return low + (high - low) * frac


def _gap_stats(times, k, gaps, cv, total):
    """Adds min, max, median, std of the k - 1 gaps of one client's in-flow ``times[:k]`` (time
    order) to ``total[:4]``."""
    g = k - 1
    acc = 0.0
    for j in range(g):
        gaps[j] = times[j + 1] - times[j]
        acc += gaps[j]
    mean = acc / float(g)
    acc = 0.0
    for j in range(g):
        dev = gaps[j] - mean
        acc += dev * dev
    std = _spread(math.sqrt(acc / float(g)), mean, cv)
    low, high = gaps[0], gaps[0]
    for j in range(g):
        low, high = min(low, gaps[j]), max(high, gaps[j])
    total[0] += low
    total[1] += high
    total[2] += _median(gaps, g)
    total[3] += std


def _two_order_stats(values, nb, zeros, lo, hi, scratch):
    """The values at positions lo <= hi of ``values[:nb]`` (ints >= 0) and ``zeros`` zeros,
    sorted: by a histogram of the values (``scratch``, zeros, left zero) while their largest is
    below ``scratch.size``, else by a sort (in place)."""
    largest = 0
    for j in range(nb):
        largest = max(largest, values[j])
    if largest >= scratch.size:
        values[:nb].sort()
        low = values[lo - zeros] if lo >= zeros else 0
        return float(low), float(values[hi - zeros] if hi >= zeros else 0)
    for j in range(nb):
        scratch[values[j]] += 1
    scratch[0] += zeros
    low, high, seen = -1, -1, 0
    for v in range(largest + 1):
        seen += scratch[v]
        scratch[v] = 0
        if low < 0 and seen > lo:
            low = v
        if high < 0 and seen > hi:
            high = v
    return float(low), float(high)


def _bin_stats(values, nb, n_bins, cv, scratch, out, at):
    """mean, std, min, max, median over ``n_bins`` bins of which the ``nb`` non-empty ones hold
    ``values[:nb]`` (bin order, >= 0) and the others 0, into ``out[at : at + 5]``
    (FlowFeatures' _padded_stats5); ``scratch`` zeros, left zero. Returns the sum of values."""
    nf = float(max(n_bins, 1))
    zeros = n_bins - nb
    total = 0.0
    for j in range(nb):
        total += float(values[j])
    mean = total / nf
    acc = 0.0
    for j in range(nb):
        dev = float(values[j]) - mean
        acc += dev * dev
    lo, hi, frac = _median_position(n_bins)
    low_value, high_value = _two_order_stats(values, nb, zeros, lo, hi, scratch)
    out[at] = mean
    out[at + 1] = _spread(math.sqrt((acc + float(zeros) * mean * mean) / nf), mean, cv)
    low, high = values[0], values[0]
    for j in range(nb):
        low, high = min(low, values[j]), max(high, values[j])
    out[at + 2] = 0.0 if zeros > 0 else float(low)
    out[at + 3] = float(high)
    out[at + 4] = low_value + (high_value - low_value) * frac
    return total


def _default_features(
    rows,
    offsets,
    owner,
    bag_offsets,
    ts,
    outbound,
    local,
    level_offsets,
    bag_levels,
    client_offsets,
    bin_seconds,
    cv,
    cells_per_record,
    out,
):
    """The loop of :func:`default_features`; ``out`` (P, 49) zeros, filled."""
    n_draws = owner.size
    longest, widest, most_clients = 1, 1, 1
    for d in range(n_draws):
        b = owner[d]
        longest = max(longest, offsets[d + 1] - offsets[d])
        most_clients = max(most_clients, client_offsets[b + 1] - client_offsets[b])
        for c in range(3):
            widest = max(widest, level_offsets[c, b + 1] - level_offsets[c, b])
    hist = np.zeros((3, 2 * widest), np.int64)
    codes = np.empty((3, 2, longest), np.int32)
    n_codes = np.zeros((3, 2), np.int64)
    counted = np.zeros(3, np.bool_)
    values, counts = np.empty(longest + 1), np.empty(longest + 1, np.int64)  # + 1: see runs
    in_flows, flows_of = np.zeros(most_clients, np.int64), np.zeros(most_clients, np.int64)
    # the bin a client was last seen in (a number unique over the call) and its #in - #out there
    stamp, balance = np.full(most_clients, -1, np.int64), np.zeros(most_clients, np.int64)
    bin_id = np.int64(-1)
    ends = np.empty(most_clients, np.int64)
    times, gaps = np.empty(longest), np.empty(longest)
    in_client, in_time = np.empty(longest + 1, np.int64), np.empty(longest + 1)  # + 1: see pass 1
    bins, scratch = np.empty((3, longest), np.int64), np.zeros(cells_per_record * longest, np.int64)
    total, width = np.zeros(4), np.empty(3, np.int64)
    for d in range(n_draws):
        s, e = offsets[d], offsets[d + 1]
        n = e - s
        if n == 0:
            continue
        b = owner[d]
        first_row, end_row = bag_offsets[b], bag_offsets[b + 1]
        for c in range(3):
            width[c] = level_offsets[c, b + 1] - level_offsets[c, b]
            counted[c] = width[c] <= cells_per_record * n  # a histogram, else sort the codes
        # 1. one pass over the records: size codes, clients, bins
        if rows[s] < first_row or rows[s] >= end_row:
            raise ValueError("a draw's rows must lie in its owner's bag")
        first_ts = ts[rows[s]]
        n_out, distinct, n_in = 0, 0, 0
        bin_now, nb = np.int64(-1), -1
        for i in range(s, e):
            r = rows[i]
            if r < first_row or r >= end_row:
                raise ValueError("a draw's rows must lie in its owner's bag")
            o = outbound[r]
            n_out += o
            for c in range(3):
                code = local[c + 1, r]
                if counted[c]:
                    hist[c, o * width[c] + code] += 1
                else:
                    codes[c, o, n_codes[c, o]] = code
                    n_codes[c, o] += 1
            client = local[0, r]
            in_client[n_in], in_time[n_in] = client, ts[r]  # kept if an in-flow
            n_in += 1 - o
            distinct += flows_of[client] == 0
            flows_of[client] += 1
            in_flows[client] += 1 - o
            bin_index = np.int64(math.floor((ts[r] - first_ts) / bin_seconds))
            if bin_index != bin_now:  # a new non-empty bin
                bin_now, nb, bin_id = bin_index, nb + 1, bin_id + 1
                bins[:, nb] = 0
            fresh = stamp[client] != bin_id
            before = 0 if fresh else balance[client]
            after = before + 1 - 2 * o
            stamp[client], balance[client] = bin_id, after
            bins[0, nb] += 1
            bins[1, nb] += fresh
            bins[2, nb] += abs(after) - abs(before)
        nb += 1
        row = out[d]
        # 2. features 1-3: runs of every (column, direction)
        for c in range(3):
            base = level_offsets[c, b]
            for o in range(2):
                if counted[c]:
                    m = _runs_of_histogram(
                        hist[c], o * width[c], width[c], bag_levels, base, values, counts
                    )
                else:
                    m = _runs_of_codes(codes[c, o], n_codes[c, o], bag_levels, base, values, counts)
                    n_codes[c, o] = 0
                n_dir = n_out if o else n - n_out
                if c < 2:
                    _stats5_of_runs(values, counts, m, n_dir, cv, row, 10 * c + 5 * o)
                else:
                    _unique_of_runs(values, counts, m, n_dir, row, 20 + 5 * o)
        # 3. feature 4: in-flow times grouped by client (a counting sort keeps time order)
        n_clients = client_offsets[b + 1] - client_offsets[b]
        position = 0
        for client in range(n_clients):
            ends[client] = position
            position += in_flows[client]
        for i in range(n_in):
            client = in_client[i]
            times[ends[client]] = in_time[i]
            ends[client] += 1
        total[:] = 0.0
        regular = 0
        for client in range(n_clients):
            k = in_flows[client]
            if k >= 2:
                _gap_stats(times[ends[client] - k :], k, gaps, cv, total)
                regular += 1
            in_flows[client] = 0
            flows_of[client] = 0
        for j in range(4):
            row[30 + j] = total[j] / float(max(regular, 1))
        row[34] = float(regular) / float(max(distinct, 1))
        # 4. features 5-7 over the bins, empty ones included
        n_bins = bin_now + 1
        unmatched = _bin_stats(bins[2], nb, n_bins, cv, scratch, row, 35)
        row[37] = unmatched / float(n)
        _bin_stats(bins[0], nb, n_bins, cv, scratch, row, 38)
        row[43] = float(nb) / float(max(n_bins, 1))  # the share of non-empty bins
        _bin_stats(bins[1], nb, n_bins, cv, scratch, row, 44)
    return out


_HELPERS = (
    "_spread",
    "_median_position",
    "_runs_of_histogram",
    "_runs_of_codes",
    "_stats5_of_runs",
    "_unique_of_runs",
    "_select",
    "_median",
    "_gap_stats",
    "_two_order_stats",
    "_bin_stats",
)


def default_features(
    rows: Tensor,
    offsets: Tensor,
    owner: Tensor,
    bag_offsets: Tensor,
    ts: Tensor,
    outbound: Tensor,
    local: Tensor,
    level_offsets: Tensor,
    bag_levels: Tensor,
    client_offsets: Tensor,
    bin_seconds: float,
    cv: bool,
) -> Tensor:
    """(P, 49) float64 default flow features of the draws (``rows`` (R,), ``offsets`` (P+1,),
    ``owner`` (P,)) of Bags with ``bag_offsets`` (B+1,), ``ts`` (N,) float64 and ``outbound``
    (N,) 0/1; ``local`` (4, N) int32 per-bag codes of the client and of the three size columns
    (:func:`local_codes`), ``level_offsets`` (3, B+1) where each bag's size levels start in
    ``bag_levels`` (L,) float64, ``client_offsets`` (B+1,) the bags' clients. Draws are shared
    among threads (:data:`RECORDS_PER_THREAD`); every draw's row is the same whatever their
    number."""
    out = np.zeros((owner.numel(), N_DEFAULT))
    kernel = kernels.compiled(globals(), "_default_features", _HELPERS)
    per_bag = (bag_offsets, ts, outbound, local, level_offsets, bag_levels, client_offsets)
    per_bag = tuple(a.numpy() for a in per_bag)
    rows_, offsets_, owner_ = rows.numpy(), offsets.numpy(), owner.numpy()

    def run(first: int, end: int) -> None:  # draws [first, end): their own rows of ``out``
        kernel(
            rows_,
            offsets_[first : end + 1],
            owner_[first:end],
            *per_bag,
            float(bin_seconds),
            bool(cv),
            CELLS_PER_RECORD,
            out[first:end],
        )

    threads = min(torch.get_num_threads(), rows.numel() // RECORDS_PER_THREAD, owner.numel())
    if threads <= 1:
        run(0, owner.numel())
    else:  # the kernel holds no GIL: threads of this process share the draws
        bounds = seg.chunk_bounds(offsets.diff(), -(-rows.numel() // threads))
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, bounds[:-1], bounds[1:]))
    return torch.from_numpy(out)
