"""Resampler: sizes per option, exactness, uniformity, determinism, chunking, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alchemy_torch import Bags, Draws, Resampler


def make_bags(lengths, device="cpu") -> Bags:
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    offsets = torch.zeros(lengths.numel() + 1, dtype=torch.int64)
    offsets[1:] = lengths.cumsum(0)
    n = int(offsets[-1])
    return Bags(
        kind="flows",
        columns={"ts": torch.arange(n, dtype=torch.float64)},
        offsets=offsets,
        targets=np.arange(lengths.numel()).astype(str).astype(object),
        labels=torch.zeros(lengths.numel(), dtype=torch.int64),
        vocab={},
    ).to(device)


LENGTHS = [1, 2, 3, 10, 57, 200, 1000, 4096, 30]


def check_structure(draws: Draws, bags: Bags, iterations: int):
    assert len(draws) == len(bags) * iterations
    assert draws.offsets[0] == 0 and int(draws.offsets[-1]) == draws.rows.numel()
    owner = torch.repeat_interleave(draws.owner, draws.lengths)
    # a draw never crosses its target, rows are strictly increasing (no duplicates, time order)
    assert bool(
        ((draws.rows >= bags.offsets[owner]) & (draws.rows < bags.offsets[owner + 1])).all()
    )
    inner = torch.repeat_interleave(
        torch.arange(len(draws), device=draws.rows.device), draws.lengths
    )
    same = inner[1:] == inner[:-1]
    assert bool((draws.rows[1:][same] > draws.rows[:-1][same]).all())
    assert sorted(zip(draws.iteration.tolist(), draws.owner.tolist())) == [
        (k, b) for k in range(iterations) for b in range(len(bags))
    ]


@pytest.mark.parametrize("mode", Resampler.MODES)
@pytest.mark.parametrize("option", Resampler.OPTIONS)
def test_draws_are_well_formed(option, mode, device):
    bags = make_bags(LENGTHS, device)
    draws = Resampler(option, iterations=7, size=25, mode=mode).draw(bags, seed=1)
    check_structure(draws, bags, 7)
    if mode == "contiguous":
        inner = torch.repeat_interleave(torch.arange(len(draws), device=device), draws.lengths)
        same = inner[1:] == inner[:-1]
        assert bool((draws.rows[1:][same] == draws.rows[:-1][same] + 1).all())


def test_subset_sizes_per_option():
    n = torch.tensor([1, 2, 3, 10, 101, 1000])
    assert Resampler(1, iterations=2, size=30).subset_sizes(n, 0)[:, 0].tolist() == [
        1,
        2,
        3,
        10,
        30,
        30,
    ]
    # round(0.5 n) with halves up, clamped to [min(2, n), n]
    assert Resampler(2, iterations=2, rate=0.5).subset_sizes(n, 0)[:, 1].tolist() == [
        1,
        2,
        2,
        5,
        51,
        500,
    ]
    assert Resampler(2, iterations=1, rate=0.01, min_size=5).subset_sizes(n, 0)[:, 0].tolist() == [
        1,
        2,
        3,
        5,
        5,
        10,
    ]
    m3 = Resampler(3, iterations=6, rate_range=(0.2, 0.8)).subset_sizes(torch.full((50,), 1000), 3)
    assert bool((m3 == m3[:, :1]).all()), "option 3: one rate per target"
    assert m3[:, 0].unique().numel() > 10 and int(m3.min()) >= 200 and int(m3.max()) <= 800
    m4 = Resampler(4, iterations=6, rate_range=(0.2, 0.8)).subset_sizes(torch.full((50,), 1000), 3)
    assert (m4 != m4[:, :1]).any(dim=1).all(), "option 4: one rate per draw"
    assert int(m4.min()) >= 200 and int(m4.max()) <= 800


@pytest.mark.parametrize("option", Resampler.OPTIONS)
def test_exact_subset_sizes(option, device):
    bags = make_bags(LENGTHS, device)
    r = Resampler(option, iterations=5, size=25)
    draws = r.draw(bags, seed=2)
    expected = r.subset_sizes(bags.lengths, 2).T.reshape(-1)
    assert torch.equal(draws.lengths, expected)


def test_rate_one_gives_the_whole_bag(device):
    bags = make_bags(LENGTHS, device)
    draws = Resampler(2, iterations=3, rate=1.0).draw(bags, seed=5)
    assert torch.equal(draws.rows, torch.arange(bags.num_records, device=device).repeat(3))


def test_same_seed_same_draws_and_different_seeds_differ(device):
    bags = make_bags(LENGTHS, device)
    r = Resampler(4, iterations=5)
    a, b, c = r.draw(bags, 11), r.draw(bags, 11), r.draw(bags, 12)
    assert torch.equal(a.rows, b.rows) and torch.equal(a.offsets, b.offsets)
    assert not (a.rows.numel() == c.rows.numel() and torch.equal(a.rows, c.rows))


@pytest.mark.parametrize("mode", Resampler.MODES)
def test_chunking_never_changes_the_draws(monkeypatch, mode):
    import alchemy_torch.resample as resample

    monkeypatch.setattr(resample, "BLOCK_RECORDS", 64)
    bags = make_bags(LENGTHS * 3)
    whole = Resampler(4, iterations=4, mode=mode, chunk_records=10**9).draw(bags, 3)
    chunks = list(Resampler(4, iterations=4, mode=mode, chunk_records=100).iter_draws(bags, 3))
    assert len(chunks) > 4
    assert all(int(c.offsets[-1]) == c.rows.numel() for c in chunks)
    joined = Draws.cat(chunks)
    assert torch.equal(joined.rows, whole.rows) and torch.equal(joined.owner, whole.owner)


def test_band_fallback_is_exact(monkeypatch):
    """With a zero-width band every draw misses it and takes the full-band path."""
    import alchemy_torch.resample as resample

    monkeypatch.setattr(resample, "BAND_SIGMAS", -1e9)
    bags = make_bags(LENGTHS)
    r = Resampler(4, iterations=3)
    draws = r.draw(bags, 4)
    check_structure(draws, bags, 3)
    assert torch.equal(draws.lengths, r.subset_sizes(bags.lengths, 4).T.reshape(-1))


@pytest.mark.parametrize("n,m", [(12, 5), (200, 37), (5000, 4000)])
def test_selection_within_a_bag_is_uniform(n, m):
    """Chi-square: over many draws every record is picked equally often (m/n)."""
    from scipy import stats  # scikit-learn depends on scipy

    iterations = 4000 if n < 1000 else 200
    bags = make_bags([n])
    draws = Resampler(1, iterations=iterations, size=m).draw(bags, seed=7)
    counts = torch.bincount(draws.rows, minlength=n).numpy()
    expected = iterations * m / n
    chi2 = (
        ((counts - expected) ** 2 / expected).sum() * (n - m) / n
    )  # without replacement: hypergeometric variance
    assert stats.chi2.sf(chi2, n - 1) > 1e-4
    assert counts.sum() == iterations * m


def test_pairs_are_uniform_too():
    """Joint inclusion of record pairs matches m(m-1)/(n(n-1)): no position structure."""
    n, m, iterations = 8, 3, 20000
    draws = Resampler(1, iterations=iterations, size=m).draw(make_bags([n]), seed=9)
    sets = draws.rows.view(iterations, m)
    pair = torch.zeros(n, n)
    for i in range(m):
        for j in range(i + 1, m):
            pair.index_put_((sets[:, i], sets[:, j]), torch.ones(iterations), accumulate=True)
    expected = iterations * m * (m - 1) / (n * (n - 1))
    observed = pair[torch.triu(torch.ones(n, n, dtype=torch.bool), 1)]
    assert float(((observed - expected) ** 2 / expected).sum()) < 28 * 3  # df = 27


def test_contiguous_windows_start_uniformly():
    n, m, iterations = 10, 4, 14000
    draws = Resampler(1, iterations=iterations, size=m, mode="contiguous").draw(
        make_bags([n]), seed=2
    )
    starts = torch.bincount(draws.rows.view(iterations, m)[:, 0], minlength=n)
    assert starts[n - m + 1 :].sum() == 0
    assert float(starts[: n - m + 1].float().std() / starts[: n - m + 1].float().mean()) < 0.05


def test_originals_are_the_trivial_draws():
    bags = make_bags(LENGTHS)
    draws = Draws.originals(bags)
    assert torch.equal(draws.offsets, bags.offsets) and torch.equal(
        draws.rows, torch.arange(bags.num_records)
    )
    assert draws.owner.tolist() == list(range(len(bags)))


def test_empty_bags_give_empty_draws():
    bags = make_bags([0, 5, 0])
    draws = Resampler(4, iterations=2).draw(bags, 0)
    assert draws.lengths.tolist()[0::3] == [0, 0] and draws.lengths.tolist()[2::3] == [0, 0]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(option=5),
        dict(option=1, mode="bootstrap"),
        dict(option=2, rate=0.0),
        dict(option=4, rate_range=(0.9, 0.1)),
        dict(option=1, iterations=0),
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        Resampler(**kwargs)


@pytest.mark.gpu
def test_cuda_draws_match_properties_of_cpu_draws():
    bags = make_bags(LENGTHS)
    r = Resampler(4, iterations=10)
    cpu, gpu = r.draw(bags, 1), r.draw(bags.to("cuda"), 1)
    assert torch.equal(cpu.lengths, gpu.lengths.cpu())
    check_structure(gpu, bags.to("cuda"), 10)
