"""Resampler: sizes per option, exactness, uniformity, determinism, chunking, streams per
target bucket, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import alchemy_torch.resample as resample
from alchemy_torch import Bags, Draws, Resampler
from alchemy_torch.ops import kernels
from alchemy_torch.resample import bucket_of
from alchemy_torch.scale import partition_of


def make_bags(lengths, device="cpu", names=None) -> Bags:
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    offsets = torch.zeros(lengths.numel() + 1, dtype=torch.int64)
    offsets[1:] = lengths.cumsum(0)
    n = int(offsets[-1])
    return Bags(
        kind="flows",
        columns={"ts": torch.arange(n, dtype=torch.float64)},
        offsets=offsets,
        targets=np.asarray(
            np.arange(lengths.numel()).astype(str) if names is None else names, dtype=object
        ),
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


def buckets_of(n_targets: int) -> torch.Tensor:
    return torch.from_numpy(bucket_of(np.arange(n_targets).astype(str)))


def test_subset_sizes_per_option():
    n = torch.tensor([1, 2, 3, 10, 101, 1000])
    b = buckets_of(6)
    assert Resampler(1, iterations=2, size=30).subset_sizes(n, b, 0)[:, 0].tolist() == [
        1,
        2,
        3,
        10,
        30,
        30,
    ]
    # round(0.5 n) with halves up, clamped to [min(2, n), n]
    assert Resampler(2, iterations=2, rate=0.5).subset_sizes(n, b, 0)[:, 1].tolist() == [
        1,
        2,
        2,
        5,
        51,
        500,
    ]
    assert Resampler(2, iterations=1, rate=0.01, min_size=5).subset_sizes(n, b, 0)[
        :, 0
    ].tolist() == [1, 2, 3, 5, 5, 10]
    n50, b50 = torch.full((50,), 1000), buckets_of(50)
    m3 = Resampler(3, iterations=6, rate_range=(0.2, 0.8)).subset_sizes(n50, b50, 3)
    assert bool((m3 == m3[:, :1]).all()), "option 3: one rate per target"
    assert m3[:, 0].unique().numel() > 10 and int(m3.min()) >= 200 and int(m3.max()) <= 800
    m4 = Resampler(4, iterations=6, rate_range=(0.2, 0.8)).subset_sizes(n50, b50, 3)
    assert (m4 != m4[:, :1]).any(dim=1).all(), "option 4: one rate per draw"
    assert int(m4.min()) >= 200 and int(m4.max()) <= 800


@pytest.mark.parametrize("option", [3, 4])
def test_random_rates_follow_the_bucket_not_the_other_targets(option, monkeypatch):
    """A target's rates depend on its bucket's targets only: the same for any set of whole
    buckets, other when a target of its bucket is missing."""
    monkeypatch.setattr(resample, "STREAM_BUCKETS", 4)
    r = Resampler(option, iterations=5)
    n, b = torch.full((40,), 1000), buckets_of(40)
    whole = r.subset_sizes(n, b, 1)
    keep = (b == 1) | (b == 2)
    assert torch.equal(r.subset_sizes(n[keep], b[keep], 1), whole[keep])
    first_of_1 = int(torch.nonzero(b == 1)[0])
    keep[first_of_1] = False
    assert not torch.equal(r.subset_sizes(n[keep], b[keep], 1), whole[keep])


@pytest.mark.parametrize("option", Resampler.OPTIONS)
def test_exact_subset_sizes(option, device):
    bags = make_bags(LENGTHS, device)
    r = Resampler(option, iterations=5, size=25)
    draws = r.draw(bags, seed=2)
    sizes = r.subset_sizes(bags.lengths, buckets_of(len(bags)).to(device), 2)
    assert torch.equal(draws.lengths, sizes[draws.owner, draws.iteration])


def test_rate_one_gives_the_whole_bag(device):
    bags = make_bags(LENGTHS, device)
    draws = Resampler(2, iterations=3, rate=1.0).draw(bags, seed=5)
    whole = [torch.arange(bags.offsets[b], bags.offsets[b + 1]) for b in draws.owner.tolist()]
    assert torch.equal(draws.rows.cpu(), torch.cat(whole))


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
    sizes = r.subset_sizes(bags.lengths, buckets_of(len(bags)), 4)
    assert torch.equal(draws.lengths, sizes[draws.owner, draws.iteration])


@pytest.mark.parametrize("option", [1, 4])
@pytest.mark.parametrize(
    "sigmas", [resample.BAND_SIGMAS, 0.3, -1e9], ids=["band", "some-miss", "all-miss"]
)
def test_compiled_selection_equals_its_fallback(sigmas, option, monkeypatch):
    """The compiled kernels (ops.kernels) and the torch path they replace draw the same rows,
    value by value: with the usual band, a narrow one that some draws miss, none at all."""
    pytest.importorskip("numba")
    monkeypatch.setattr(resample, "BAND_SIGMAS", sigmas)
    bags = make_bags(LENGTHS * 2 + [0, 5000, 257])
    r = Resampler(option, iterations=6, size=40)
    with kernels.compiled_kernels(True):
        assert kernels.enabled(bags.offsets)
        compiled = r.draw(bags, 3)
    with kernels.compiled_kernels(False):
        fallback = r.draw(bags, 3)
    assert torch.equal(compiled.offsets, fallback.offsets)
    assert torch.equal(compiled.rows, fallback.rows)


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "shared-bucket"])
@pytest.mark.parametrize("n,m", [(12, 5), (200, 37), (5000, 4000)])
def test_selection_within_a_bag_is_uniform(n, m, shared, monkeypatch):
    """Chi-square: over many draws every record is picked equally often (m/n): a bag alone,
    or among other targets of its bucket, its iterations spread over many streams and units."""
    from scipy import stats  # scikit-learn depends on scipy

    iterations = 4000 if n < 1000 else 200
    bags, target = make_bags([n]), 0
    if shared:
        monkeypatch.setattr(resample, "STREAM_BUCKETS", 2)
        monkeypatch.setattr(resample, "BLOCK_RECORDS", 2000)
        bags, target = make_bags([7, n, 30, 3], names=["0", "1", "2", "3"]), 1
        assert (bucket_of(bags.targets) == 0).sum() == 3  # "1" shares bucket 0 with two
    draws = Resampler(1, iterations=iterations, size=m).draw(bags, seed=7)
    rows = draws.rows[torch.repeat_interleave(draws.owner, draws.lengths) == target]
    counts = torch.bincount(rows - bags.offsets[target], minlength=n).numpy()
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
    assert draws.lengths[draws.owner != 1].tolist() == [0] * 4
    assert bool((draws.lengths[draws.owner == 1] >= 2).all())


def per_target(draws: Draws, bags: Bags) -> dict:
    """(target name, iteration) -> the draw's rows as positions within the target's bag."""
    local = draws.rows - torch.repeat_interleave(bags.offsets[draws.owner], draws.lengths)
    pieces = torch.split(local, draws.lengths.tolist())
    return {
        (bags.targets[b], k): tuple(p.tolist())
        for b, k, p in zip(draws.owner.tolist(), draws.iteration.tolist(), pieces)
    }


@pytest.mark.parametrize("buckets", [1024, 5], ids=["default-buckets", "5-buckets"])
@pytest.mark.parametrize("mode", Resampler.MODES)
@pytest.mark.parametrize("option", [1, 3, 4])
def test_a_targets_draws_do_not_depend_on_other_buckets(option, mode, buckets, monkeypatch):
    """Drawing any set of whole buckets (one partition, one bucket, every other bucket) gives
    each of its targets exactly its draws in the whole Bags, whatever the chunking; leaving
    out one target of a bucket changes its bucket mates' draws."""
    monkeypatch.setattr(resample, "STREAM_BUCKETS", buckets)
    monkeypatch.setattr(resample, "BLOCK_RECORDS", 300)  # several streams and units
    lengths = np.random.default_rng(0).integers(0, 150, 80)
    lengths[7] = 900  # a bucket larger than a unit: one iteration per stream
    bags = make_bags(lengths, names=[f"10.0.0.{i}" for i in range(80)])
    r = Resampler(option, iterations=6, size=25, mode=mode, chunk_records=400)
    whole = per_target(r.draw(bags, 5), bags)
    bucket = bucket_of(bags.targets)
    subsets = {
        "partition 1 of 3": partition_of(bags.targets, 3) == 1,
        "one bucket": bucket == bucket[7],
        "odd buckets": bucket % 2 == 1,
    }
    for name, keep in subsets.items():
        sub = bags[np.flatnonzero(keep)]
        alone = per_target(Resampler(option, iterations=6, size=25, mode=mode).draw(sub, 5), sub)
        assert len(alone) == 6 * int(keep.sum()) > 0, name
        assert alone == {key: whole[key] for key in alone}, name
    if buckets == 5 and option != 1:  # (option 1, contiguous: few windows to tell apart)
        mates = np.flatnonzero(bucket == bucket[0])[1:]
        sub = bags[mates]
        alone = per_target(r.draw(sub, 5), sub)
        assert alone != {key: whole[key] for key in alone}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(option=5), r"option must be one of \(1, 2, 3, 4\), got 5"),
        (dict(option=1, mode="bootstrap"), "mode must be one of .* got 'bootstrap'"),
        (dict(option=2, rate=0.0), r"rate must lie in \(0, 1\], got 0.0"),
        (dict(option=4, rate_range=(0.9, 0.1)), r"rate_range must satisfy .* got \(0.9, 0.1\)"),
        (dict(option=1, iterations=0), "iterations must be >= 1, got 0"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Resampler(**kwargs)


@pytest.mark.gpu
def test_cuda_draws_match_properties_of_cpu_draws():
    bags = make_bags(LENGTHS)
    r = Resampler(4, iterations=10)
    cpu, gpu = r.draw(bags, 1), r.draw(bags.to("cuda"), 1)
    assert torch.equal(cpu.lengths, gpu.lengths.cpu())
    check_structure(gpu, bags.to("cuda"), 10)
