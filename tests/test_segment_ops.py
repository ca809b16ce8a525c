"""Segment reductions against numpy references, table-driven, with empty segments, per device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alchemy_torch import ops
from alchemy_torch.ops import kernels

# (values, offsets): includes empty segments at the start, middle and end, and single values
CASES = {
    "mixed": ([3.0, 1.0, 2.0, 5.0, 5.0, -1.0, 4.0, 4.0, 4.0, 0.5], [0, 0, 3, 3, 4, 9, 10, 10]),
    "single": ([7.0], [0, 1]),
    "all_empty": ([], [0, 0, 0]),
    "ties": ([1.0, 1.0, 2.0, 2.0, 2.0, 3.0], [0, 6]),
}


def _segments(values, offsets):
    return [np.asarray(values[a:b], dtype=np.float64) for a, b in zip(offsets[:-1], offsets[1:])]


def _mode_share(s):
    if s.size == 0:
        return 0.0
    _, counts = np.unique(s, return_counts=True)
    return counts.max() / s.size


REFERENCES = {
    "sum": (ops.segment_sum, lambda s: s.sum()),
    "mean": (ops.segment_mean, lambda s: s.mean() if s.size else 0.0),
    "std": (ops.segment_std, lambda s: s.std(ddof=1) if s.size > 1 else 0.0),
    "std_population": (
        lambda x, o: ops.segment_std(x, o, correction=0),
        lambda s: s.std() if s.size else 0.0,
    ),
    "min": (ops.segment_min, lambda s: s.min() if s.size else 0.0),
    "max": (ops.segment_max, lambda s: s.max() if s.size else 0.0),
    "first": (ops.segment_first, lambda s: s[0] if s.size else 0.0),
    "last": (ops.segment_last, lambda s: s[-1] if s.size else 0.0),
    "median": (ops.segment_median, lambda s: np.median(s) if s.size else 0.0),
    "q10": (
        lambda x, o: ops.segment_quantile(x, o, 0.1),
        lambda s: np.quantile(s, 0.1) if s.size else 0.0,
    ),
    "q90": (
        lambda x, o: ops.segment_quantile(x, o, 0.9),
        lambda s: np.quantile(s, 0.9) if s.size else 0.0,
    ),
    "nunique": (ops.segment_nunique, lambda s: np.unique(s).size),
    "mode_share": (ops.segment_mode_share, _mode_share),
    "count": (lambda x, o: ops.segment_count(o), lambda s: s.size),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reduction_matches_numpy(case, name, device):
    values, offsets = CASES[case]
    fn, ref = REFERENCES[name]
    x = torch.tensor(values, dtype=torch.float64, device=device)
    o = torch.tensor(offsets, dtype=torch.int64, device=device)
    got = fn(x, o).cpu().to(torch.float64).numpy()
    want = np.array([ref(s) for s in _segments(values, offsets)], dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.isfinite(got).all()


@pytest.mark.parametrize("name", ["sum", "mean", "std", "min", "max", "first", "last", "median"])
def test_two_dimensional_values_reduce_per_column(name, device):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(30, 3))
    offsets = [0, 4, 4, 17, 30]
    fn, ref = REFERENCES[name]
    got = (
        fn(torch.tensor(values, device=device), torch.tensor(offsets, device=device)).cpu().numpy()
    )
    want = np.array(
        [[ref(values[a:b, j]) for j in range(3)] for a, b in zip(offsets[:-1], offsets[1:])]
    )
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_random_segments_match_pandas(device):
    import pandas as pd

    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 20, 50)
    values = rng.integers(0, 6, lengths.sum()).astype(np.float64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    seg = np.repeat(np.arange(50), lengths)
    g = pd.Series(values).groupby(seg)
    x, o = torch.tensor(values, device=device), torch.tensor(offsets, device=device)
    nonempty = lengths > 0
    np.testing.assert_allclose(
        ops.segment_std(x, o).cpu().numpy()[lengths > 1], g.std().to_numpy()[lengths[nonempty] > 1]
    )
    np.testing.assert_array_equal(
        ops.segment_nunique(x, o).cpu().numpy()[nonempty], g.nunique().to_numpy()
    )
    np.testing.assert_allclose(
        ops.segment_median(x, o).cpu().numpy()[nonempty], g.median().to_numpy()
    )


def test_std_is_two_pass_stable():
    x = torch.tensor([1e9 + 1, 1e9 + 2, 1e9 + 3], dtype=torch.float64)
    assert ops.segment_std(x, torch.tensor([0, 3])).item() == pytest.approx(1.0, rel=1e-12)


def test_bincount_and_histogram(device):
    codes = torch.tensor([0, 2, 2, 1, 1, 1], device=device)
    offsets = torch.tensor([0, 3, 3, 6], device=device)
    assert ops.segment_bincount(codes, offsets, 3).tolist() == [[1, 0, 2], [0, 0, 0], [0, 3, 0]]
    x = torch.tensor([0.0, 0.5, 1.0, 9.0, -3.0, 2.0], device=device)
    edges = torch.tensor([0.0, 1.0, 2.0], device=device)
    # [0,1) and [1,2], out-of-range values clamp into the end bins
    assert ops.segment_histogram(x, offsets, edges).tolist() == [[2, 1], [0, 0], [1, 2]]


def test_diff_stays_within_segments(device):
    x = torch.tensor([1.0, 4.0, 9.0, 100.0, 5.0, 7.0], device=device)
    offsets = torch.tensor([0, 3, 3, 4, 6], device=device)
    diffs, diff_offsets = ops.segment_diff(x, offsets)
    assert diffs.tolist() == [3.0, 5.0, 2.0]
    assert diff_offsets.tolist() == [0, 2, 2, 2, 3]


def test_runs_give_value_frequencies(device):
    x = torch.tensor([2.0, 1.0, 2.0, 3.0, 3.0], device=device)
    seg, length = ops.segment_runs(x, torch.tensor([0, 3, 3, 5], device=device))
    assert seg.tolist() == [0, 0, 2] and length.tolist() == [1, 2, 2]


def test_csr_gather_picks_segments_in_order(device):
    offsets = torch.tensor([0, 2, 2, 5], device=device)
    rows, new = ops.csr_gather(offsets, torch.tensor([2, 0, 1], device=device))
    assert rows.tolist() == [2, 3, 4, 0, 1] and new.tolist() == [0, 3, 5, 5]


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1, 2], r"start at 0 and end at 2, got 1\.\.2"),
        ([0, 3, 2], "must be non-decreasing"),
        ([0, 1], r"start at 0 and end at 2, got 0\.\.1"),
    ],
)
def test_check_offsets_rejects_bad_pointers(bad, message):
    with pytest.raises(ValueError, match=message):
        ops.check_offsets(torch.tensor(bad), 2)


@pytest.mark.parametrize("bound", [50, 2**31, 2**40, 2**62])
def test_sorts_of_wide_keys_match_torch(bound):
    gen = torch.Generator().manual_seed(0)
    key = torch.randint(0, min(bound, 2**62), (1000,), generator=gen)
    key[::3] = key[0]  # ties
    expected = torch.sort(key, stable=True)
    values, perm = ops.stable_argsort(key, bound)
    assert torch.equal(values.long(), expected.values)
    assert torch.equal(perm.long(), expected.indices)
    assert torch.equal(ops.sort_values(key, bound).long(), expected.values)


def test_sort_primitives_match_torch(device):
    rng = np.random.default_rng(4)
    key = torch.tensor(rng.integers(0, 50, 1000), device=device)
    values, order = ops.stable_argsort(key, 50)
    want = torch.sort(key, stable=True)
    assert torch.equal(values, want.values) and torch.equal(order, want.indices)
    wide = key * 2**56  # too wide to pack the position: the fallback must agree
    assert torch.equal(ops.stable_argsort(wide, 50 * 2**56)[1], want.indices)
    x = torch.tensor(rng.normal(size=500), device=device)
    assert torch.equal(x[ops.argsort(x)], torch.sort(x).values)
    mask = torch.tensor(rng.random(300) < 0.3, device=device)
    assert torch.equal(ops.nonzero(mask), torch.nonzero(mask).squeeze(1))
    pieces = [
        torch.tensor(rng.integers(0, 256, k), dtype=torch.uint8, device=device)
        for k in (5, 0, 13, 8)
    ]
    assert torch.equal(ops.concat(pieces), torch.cat(pieces))
    counts = torch.tensor(rng.integers(0, 4, 40), device=device)
    values = torch.arange(40, dtype=torch.int32, device=device)
    want = torch.repeat_interleave(values, counts)
    assert torch.equal(ops.repeat(values, counts), want)
    assert torch.equal(ops.repeat(values, counts, want.numel()), want)


def test_segment_sort_sorts_within_segments_only(device):
    rng = np.random.default_rng(5)
    values = rng.normal(size=(50, 2)) * 1e3
    offsets = [0, 10, 10, 33, 50]
    got = (
        ops.segment_sort(torch.tensor(values, device=device), torch.tensor(offsets, device=device))
        .cpu()
        .numpy()
    )
    want = np.concatenate([np.sort(values[a:b], axis=0) for a, b in zip(offsets[:-1], offsets[1:])])
    np.testing.assert_array_equal(got, want)


def test_segment_order_sorts_by_cached_ranks(device):
    rng = np.random.default_rng(8)
    values = torch.tensor(rng.integers(0, 7, 40).astype(np.float64), device=device)
    offsets = torch.tensor([0, 5, 5, 21, 40], device=device)
    ranks, uniques = ops.dense_ranks(values)
    assert torch.equal(uniques, values.unique())
    assert torch.equal(uniques[ranks], values)
    order = ops.segment_order(ranks, uniques.numel(), offsets)
    assert torch.equal(values[order], ops.segment_sort(values, offsets))
    ids = ops.segment_ids(offsets)
    assert torch.equal(ids[order], ids), "no value leaves its segment"


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("levels", [1, 3, 50])
def test_ranked_quantile_equals_the_sorted_one(device, q, levels):
    rng = np.random.default_rng(levels)
    lengths = torch.tensor(rng.integers(0, 12, 40), device=device)  # some segments empty
    offsets = ops.offsets_from_lengths(lengths)
    values = torch.tensor(rng.integers(0, levels, int(offsets[-1])) * 1.5 - 2.0, device=device)
    ranks, uniques = ops.dense_ranks(values)
    got = ops.segment_quantile_ranked(ranks, uniques, offsets, q)
    want = ops.segment_quantile(values, offsets, q)
    assert torch.equal(got, want), "same positions, same blend: equal to the last bit"
    assert (lengths == 0).any() and (got[lengths == 0] == 0).all()
    no_values = torch.zeros(3, dtype=torch.int64, device=device)
    empty = ops.segment_quantile_ranked(ranks[:0], uniques[:0], no_values, q)
    assert torch.equal(empty, torch.zeros(2, dtype=torch.float64, device=device))


@pytest.mark.parametrize("cells_per_value", [0, 10**9], ids=["sorted", "histogram"])
@pytest.mark.parametrize("levels", [1, 3, 50])
def test_value_runs_are_each_segments_distinct_values_counts_and_stats5(
    device, levels, cells_per_value, monkeypatch
):
    monkeypatch.setattr(ops.segment, "HISTOGRAM_CELLS_PER_VALUE", cells_per_value)
    rng = np.random.default_rng(levels)
    lengths = torch.tensor(rng.integers(0, 12, 40), device=device)  # some segments empty
    offsets = ops.offsets_from_lengths(lengths)
    ranks = torch.tensor(rng.integers(0, levels, int(offsets[-1])), device=device)
    level, counts, run_offsets, run_seg = ops.segment_value_runs(ranks, levels, offsets)
    ends = offsets.tolist()
    want = [np.unique(ranks[a:b].cpu().numpy(), return_counts=True) for a, b in zip(ends, ends[1:])]
    assert run_offsets.diff().tolist() == [len(values) for values, _ in want]
    assert level.tolist() == [v for values, _ in want for v in values.tolist()]
    assert counts.tolist() == [c for _, n in want for c in n.tolist()]
    assert torch.equal(run_seg, ops.segment_ids(run_offsets))
    uniques = torch.arange(levels, dtype=torch.float64, device=device) * 1.5 - 2.0
    stats = ops.segment_runs_stats5(uniques[level], counts, run_offsets, run_seg, offsets)
    values = uniques[ranks]
    want = [
        ops.segment_mean(values, offsets),
        ops.segment_std(values, offsets, correction=0),
        ops.segment_min(values, offsets),
        ops.segment_max(values, offsets),
    ]
    torch.testing.assert_close(stats[:, :4], torch.stack(want, 1), rtol=1e-12, atol=1e-12)
    assert torch.equal(stats[:, 4], ops.segment_median(values, offsets)), "to the last bit"


@pytest.mark.parametrize("cells_per_value", [0, 10**9], ids=["sorted", "histogram"])
@pytest.mark.parametrize("levels", [1, 3, 50])
def test_group_value_runs_take_records_in_any_order(device, levels, cells_per_value, monkeypatch):
    """The same runs as segment_value_runs over the records sorted by group, and the offsets
    of those sorted records."""
    monkeypatch.setattr(ops.segment, "HISTOGRAM_CELLS_PER_VALUE", cells_per_value)
    monkeypatch.setattr(ops.segment, "GROUP_HISTOGRAM_CELLS_PER_VALUE", cells_per_value)
    rng = np.random.default_rng(levels)
    n_groups = 40
    groups = torch.tensor(rng.integers(0, n_groups - 3, 300), device=device)  # some empty
    ranks = torch.tensor(rng.integers(0, levels, 300), dtype=torch.int32, device=device)
    got = ops.group_value_runs(ranks, levels, groups, n_groups)
    order = torch.sort(groups, stable=True).indices
    offsets = ops.offsets_from_lengths(torch.bincount(groups, minlength=n_groups))
    want = ops.segment_value_runs(ranks[order].long(), levels, offsets)
    for a, b in zip(got[:4], want):
        assert torch.equal(a, b)
    assert torch.equal(got[4], offsets)


@pytest.mark.parametrize(
    "quantum, step, shift, on_grid",
    [(2.0**-22, 0.1, 1.6e9, True), (0.5, 0.5, 0.0, True), (0.3, 0.1, 0.0, False)]
    + [(2.0**-60, 0.5, 0.0, False)],
    ids=["timestamps", "grid", "off-grid", "too-wide"],
)
def test_sort_on_a_grid_equals_segment_sort(device, quantum, step, shift, on_grid, monkeypatch):
    """On the grid: one integer sort, never segment_sort; off it (0.3 is no power of two) or
    too wide for 63 bits: segment_sort itself. Either way its values, to the last bit."""
    rng = np.random.default_rng(2)
    ts = shift + np.round(rng.random(200) * 3600 / step) * step
    gaps = torch.tensor(np.abs(np.diff(ts)), device=device)
    offsets = torch.tensor([0, 0, 40, 41, 120, 199], device=device)
    want = ops.segment_sort(gaps, offsets)
    if on_grid:
        monkeypatch.setattr(ops.segment, "segment_sort", None)
    assert torch.equal(ops.segment_sort_grid(gaps, offsets, quantum), want)
    assert ops.segment_sort_grid(gaps[:0], offsets[:1] * 0, quantum).numel() == 0
    monkeypatch.undo()
    negative = ops.segment_sort_grid(-gaps, offsets, quantum)
    assert torch.equal(negative, ops.segment_sort(-gaps, offsets))


def test_gather_columns_is_index_select_along_records(device):
    block = torch.arange(30, dtype=torch.int32, device=device).view(3, 10)
    rows = torch.tensor([9, 0, 0, 4], device=device)
    assert torch.equal(ops.gather_columns(block, rows), block[:, rows])


def test_offset_and_range_helpers(device):
    lengths = torch.tensor([2, 0, 3], device=device)
    offsets = ops.offsets_from_lengths(lengths)
    assert offsets.tolist() == [0, 2, 2, 5]
    assert torch.equal(ops.offsets_from_ids(ops.segment_ids(offsets), 3), offsets)
    assert ops.expand_ranges(torch.tensor([10, 7, 0], device=device), lengths).tolist() == [
        10,
        11,
        0,
        1,
        2,
    ]
    a = torch.tensor([1, 1, 2, 2, 2], device=device)
    b = torch.tensor([0, 0, 0, 5, 5], device=device)
    assert ops.run_starts(a).tolist() == [True, False, True, False, False]
    assert ops.run_starts(a, b).tolist() == [True, False, True, True, False]


def test_segment_sort_codes_sorts_within_segments(device):
    rng = np.random.default_rng(9)
    offsets = torch.tensor([0, 6, 6, 20, 31], device=device)
    ids = ops.segment_ids(offsets)
    for n_codes in (5, 2**30):  # the int32 key and the int64 key
        codes = torch.tensor(rng.integers(0, min(n_codes, 5), 31), device=device)
        got = ops.segment_sort_codes(codes, n_codes, ids, 4)
        assert torch.equal(got.long(), ops.segment_sort(codes, offsets).long())


def test_quantile_positions_follow_numpy():
    lengths = torch.tensor([0, 1, 2, 5, 6])
    for q in (0.0, 0.3, 0.5, 1.0):
        lo, hi, frac = ops.quantile_positions(lengths, q)
        for n, a, b, w in zip(lengths.tolist()[1:], lo[1:], hi[1:], frac[1:]):
            values = np.arange(n, dtype=np.float64) ** 2
            got = values[a] + (values[b] - values[a]) * w.item()
            assert got == pytest.approx(np.quantile(values, q), rel=1e-12)
        assert (lo[0], hi[0]) == (0, -1)  # empty: the caller masks it


def test_run_offsets_delimit_runs_of_equal_keys(device):
    a = torch.tensor([1, 1, 2, 2, 2, 7], device=device)
    b = torch.tensor([0, 0, 0, 5, 5, 5], device=device)
    assert ops.run_offsets(a).tolist() == [0, 2, 5, 6]
    assert ops.run_offsets(a, b).tolist() == [0, 2, 3, 5, 6]
    assert ops.run_offsets(a[:0]).tolist() == [0]


@pytest.mark.parametrize("budget", [1, 4, 10, 1000])
def test_chunk_bounds_cut_at_budget_multiples(budget):
    sizes = torch.tensor([3, 0, 5, 1, 1, 9, 2])
    bounds = ops.chunk_bounds(sizes, budget)
    starts = np.concatenate([[0], np.cumsum(sizes.numpy())[:-1]])
    want = sorted(
        {0, len(sizes)} | {int(np.argmax(starts >= k)) for k in set(starts // budget * budget)}
    )
    assert bounds == want and bounds[0] == 0 and bounds[-1] == len(sizes)
    # cuts only where allowed: chunk 1..3 must stay together
    allowed = torch.tensor([True, True, False, False, True, True, True])
    assert set(ops.chunk_bounds(sizes, budget, allowed)) <= {0, 1, 4, 5, 6, 7}


@pytest.mark.parametrize("levels", [1, 7, 100, 5000])
def test_compiled_kernels_equal_their_fallbacks(levels):
    """ops.kernels' value runs (histogram or sorted distinct levels, per segment) and
    within-segment differences equal the numpy paths they replace, value by value."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(levels)
    lengths = torch.tensor(rng.integers(0, 60, 50))
    lengths[[0, 7, -1]] = 0
    offsets = ops.offsets_from_lengths(lengths)
    n = int(offsets[-1])
    cases = [
        (ops.segment_value_runs, torch.tensor(rng.integers(0, levels, n)), levels, offsets),
        (ops.segment_value_runs, torch.tensor(rng.integers(0, levels, n)).int(), levels, offsets),
        (ops.segment_diff, torch.tensor(rng.normal(size=n)), offsets),
        (ops.segment_diff, torch.tensor(rng.integers(0, levels, n)), offsets),
        (ops.segment_diff, torch.ones((n, 2), dtype=torch.float64)[:, 1], offsets),
    ]
    for fn, *args in cases:
        with kernels.compiled_kernels(True):
            assert kernels.enabled(args[0])
            compiled = fn(*args)
        with kernels.compiled_kernels(False):
            fallback = fn(*args)
        assert all(a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(compiled, fallback))


@pytest.mark.parametrize("rank", [-1, 7])
def test_compiled_value_runs_reject_ranks_out_of_range(rank):
    """A rank outside [0, n_ranks) raises rather than writes out of bounds (sorted distinct
    ranks for -1 of 100 levels, the histogram for 7 of 3)."""
    pytest.importorskip("numba")
    offsets = torch.tensor([0, 2, 3])
    with kernels.compiled_kernels(True), pytest.raises(ValueError, match="ranks must lie in"):
        ops.segment_value_runs(torch.tensor([0, rank, 1]), 100 if rank < 0 else 3, offsets)
