"""Flow features (METHOD.md §7.1) against a plain numpy reference, one draw at a time."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import random_flows

from alchemy_torch import Bags, Draws, Resampler, datasets
from alchemy_torch.features import flows_kernel, make
from alchemy_torch.features.flows import FlowFeatures
from alchemy_torch.ops import kernels, segment

OPTIONS = [
    {},
    {"cv_instead_of_std": True},
    {"matching": "5tuple"},
    {"disclosure_autocorr": True, "autocorr_lags": 3},
    {
        "bin_seconds": 60.0,
        "disclosure_autocorr": True,
        "cv_instead_of_std": True,
        "matching": "5tuple",
        "match_seconds": 5.0,
    },
]


# ---------------------------------------------------------------------- records
def conversations(n_conn: int = 150, seed: int = 0) -> pd.DataFrame:
    """Connections as one-way flow pairs (some halves missing) over a few hours with idle gaps."""
    rng = np.random.default_rng(seed)
    servers = np.array(["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    clients = np.array([f"172.16.0.{i}" for i in range(5)])
    server = rng.choice(servers, n_conn, p=[0.6, 0.3, 0.1])
    client = rng.choice(clients, n_conn)
    start = 1.6e9 + np.round(rng.choice([0, 1800, 7200], n_conn) + rng.random(n_conn) * 900, 0)
    cport = rng.integers(40000, 40010, n_conn)
    sport = rng.choice([80, 443], n_conn)
    proto = rng.choice(["tcp", "udp"], n_conn)
    halves = rng.choice(3, n_conn, p=[0.7, 0.2, 0.1])  # 0 both, 1 request only, 2 reply only
    rows = []
    for i in range(n_conn):
        req = dict(
            ts=start[i],
            proto=proto[i],
            src=client[i],
            dst=server[i],
            sport=cport[i],
            dport=sport[i],
        )
        rep = dict(
            ts=start[i] + rng.choice([0.0, 30.0, 90.0]),
            proto=proto[i],
            src=server[i],
            dst=client[i],
            sport=sport[i],
            dport=cport[i],
        )
        rows += [req] * int(halves[i] != 2) + [rep] * int(halves[i] != 1)
    df = pd.DataFrame(rows)
    n = len(df)
    df["pkts"] = rng.choice([0, 1, 2, 3, 10], n)
    df["bytes"] = rng.choice([40, 60, 1500, 3000], n)
    df["flags"] = ""
    df["server"] = np.where(df["src"].isin(servers), df["src"], df["dst"])
    return df


def tiny_flows() -> pd.DataFrame:
    """Bags of one and two records, ties in time, a bag with only out-flows."""
    base = dict(proto="tcp", sport=1234, dport=80, pkts=2, bytes=100, flags="")
    recs = [
        dict(base, ts=10.0, src="c1", dst="s1", server="s1"),
        dict(base, ts=10.0, src="c1", dst="s2", server="s2"),
        dict(base, ts=10.0, src="c2", dst="s2", server="s2", bytes=300, pkts=0),
        dict(base, ts=5.0, src="s3", dst="c1", server="s3", sport=80, dport=1234),
        dict(base, ts=700.0, src="s3", dst="c1", server="s3", sport=80, dport=1234),
        dict(base, ts=100.0, src="c1", dst="s4", server="s4"),
        dict(base, ts=100.0, src="s4", dst="c1", server="s4", sport=80, dport=1234),
    ]
    return pd.DataFrame(recs)


# ---------------------------------------------------------------------- reference
def _stats5(a) -> list[float]:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return [0.0] * 5
    return [a.mean(), a.std(), a.min(), a.max(), float(np.median(a))]


def _spread(std: float, mean: float, cv: bool) -> float:
    return (std / abs(mean) if mean != 0 else 0.0) if cv else std


def reference(
    df: pd.DataFrame,
    bin_seconds=300.0,
    cv_instead_of_std=False,
    matching="window",
    match_seconds=60.0,
    disclosure_autocorr=False,
    autocorr_lags=12,
) -> list[float]:
    """One draw's features, written from METHOD.md §7.1 (bins materialised, pairs brute-forced)."""
    cv = cv_instead_of_std

    def s5(a):
        m, s, lo, hi, med = _stats5(a)
        return [m, _spread(s, m, cv), lo, hi, med]

    n = len(df)
    inb = (df["dst"] == df["server"]).to_numpy()
    client = np.where(inb, df["src"], df["dst"])
    ts = df["ts"].to_numpy(dtype=np.float64)
    pkts = df["pkts"].to_numpy(dtype=np.float64)
    size = df["bytes"].to_numpy(dtype=np.float64)
    bpp = size / np.maximum(pkts, 1)
    out = []
    for field in (pkts, bpp):
        for d in (inb, ~inb):
            out += s5(field[d])
    for d in (inb, ~inb):
        sizes = size[d]
        if sizes.size == 0:
            out += [0.0] * 5
            continue
        counts = np.array(list(Counter(sizes.tolist()).values()), dtype=np.float64)
        p = counts / sizes.size
        m2 = np.mean((sizes - sizes.mean()) ** 2)
        m4 = np.mean((sizes - sizes.mean()) ** 4)
        out += [
            len(counts),
            len(counts) / sizes.size,
            float(-(p * np.log(p)).sum()),
            p.max(),
            m4 / m2**2 if m2 > 0 else 0.0,
        ]
    # regular access patterns
    per_client = []
    for c in set(client[inb]):
        t = np.sort(ts[inb & (client == c)])
        if t.size >= 2:
            gaps = np.diff(t)
            per_client.append(
                [gaps.min(), gaps.max(), np.median(gaps), _spread(gaps.std(), gaps.mean(), cv)]
            )
    out += list(np.mean(per_client, axis=0)) if per_client else [0.0] * 4
    out.append(len(per_client) / len(set(client)) if n else 0.0)
    # bins
    if n:
        b = np.floor((ts - ts.min()) / bin_seconds).astype(int)
        n_bins = b.max() + 1
    else:
        b, n_bins = np.zeros(0, dtype=int), 0
    flows = np.bincount(b, minlength=n_bins)
    clients = np.array([len(set(client[b == i])) for i in range(n_bins)])
    unmatched = np.array(
        [
            sum(
                abs(
                    int((inb & (client == c) & (b == i)).sum())
                    - int((~inb & (client == c) & (b == i)).sum())
                )
                for c in set(client)
            )
            for i in range(n_bins)
        ],
        dtype=np.float64,
    )
    if matching == "window":
        m = unmatched.mean() if n_bins else 0.0
        out += [
            m,
            _spread(unmatched.std(), m, cv) if n_bins else 0.0,
            unmatched.sum() / n if n else 0.0,
        ]
    else:
        proto, sport, dport = df["proto"].to_numpy(), df["sport"].to_numpy(), df["dport"].to_numpy()
        lone = np.zeros(n, dtype=bool)
        for i in range(n):
            lone[i] = not any(
                inb[j] != inb[i]
                and proto[j] == proto[i]
                and client[j] == client[i]
                and sport[j] == dport[i]
                and dport[j] == sport[i]
                and abs(ts[j] - ts[i]) <= match_seconds
                for j in range(n)
            )
        out += [lone[d].sum() / max(d.sum(), 1) for d in (inb, ~inb)]
    out += s5(flows) + [(flows > 0).sum() / n_bins if n_bins else 0.0] + s5(clients)
    if disclosure_autocorr:
        for d in (inb, ~inb):
            x = np.array(
                [size[d & (b == i)].mean() if (d & (b == i)).any() else 0.0 for i in range(n_bins)]
            )
            var = ((x - x.mean()) ** 2).sum() if n_bins else 0.0
            lags = range(1, min(n_bins - 1, autocorr_lags) + 1)
            if var > 0 and len(lags):
                y = x - x.mean()
                r = np.array([(y[:-k] * y[k:]).sum() / var for k in lags])
                out += [r.mean(), _spread(r.std(), r.mean(), cv)]
            else:
                out += [0.0, 0.0]
    return [float(v) for v in out]


def decoded(bags: Bags, rows: torch.Tensor) -> pd.DataFrame:
    rows = rows.cpu()
    cols = {c: bags.columns[c].cpu()[rows] for c in ("ts", "sport", "dport", "pkts", "bytes")}
    df = pd.DataFrame({c: v.numpy() for c, v in cols.items()})
    for c in ("proto", "src", "dst", "server"):
        df[c] = bags.decode(c, bags.columns[c].cpu()[rows])
    return df


def reference_matrix(bags: Bags, draws: Draws, **options) -> torch.Tensor:
    offsets = draws.offsets.cpu()
    return torch.tensor(
        [
            reference(decoded(bags, draws.rows.cpu()[offsets[p] : offsets[p + 1]]), **options)
            for p in range(len(draws))
        ],
        dtype=torch.float64,
    )


def check(actual: torch.Tensor, expected: torch.Tensor):
    torch.testing.assert_close(actual.cpu(), expected, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
@pytest.mark.parametrize("records", ["random", "conversations"])
def test_matches_reference_on_originals_and_draws(records, options, device):
    df = random_flows(n_records=300, seed=3) if records == "random" else conversations(seed=1)
    bags = Bags.from_records("flows", df).to(device)
    extractor = FlowFeatures(**options)
    originals = extractor(bags)
    assert (
        originals.shape == (len(bags), len(extractor.features)) and originals.dtype == torch.float64
    )
    assert originals.device.type == device.type
    check(originals, reference_matrix(bags, Draws.originals(bags), **options))
    draws = Resampler(4, iterations=2, min_size=1).draw(bags, seed=5)
    check(extractor(bags, draws), reference_matrix(bags, draws, **options))


@pytest.mark.parametrize("cells_per_value", [0, 10**9], ids=["sorted", "histogram"])
def test_both_order_statistic_paths_match_reference(cells_per_value, monkeypatch):
    """Min, median and max of packets and bytes per packet: from one integer sort per column
    (no histogram fits) or from the (segment, rank) histogram (every one fits)."""
    monkeypatch.setattr(segment, "HISTOGRAM_CELLS_PER_VALUE", cells_per_value)
    monkeypatch.setattr(segment, "GROUP_HISTOGRAM_CELLS_PER_VALUE", cells_per_value)
    bags = Bags.from_records("flows", random_flows(n_records=300, seed=4))
    draws = Resampler(4, iterations=2, min_size=1).draw(bags, seed=6)
    check(FlowFeatures()(bags, draws), reference_matrix(bags, draws))
    check(FlowFeatures()(bags), reference_matrix(bags, Draws.originals(bags)))


@pytest.mark.parametrize("gaps", ["grid", "float"])
def test_both_gap_sorts_match_reference(gaps, monkeypatch, device):
    """Inter-arrival medians from one integer sort of gaps on the timestamps' grid (never the
    float segment_sort), or from segment_sort where the grid does not hold (forced by an
    off-grid quantum)."""
    from alchemy_torch.features import flows

    if gaps == "grid":
        monkeypatch.setattr(segment, "segment_sort", None)
    else:
        monkeypatch.setattr(flows, "_gap_quantum", lambda _: 0.3)
    bags = Bags.from_records("flows", random_flows(n_records=300, seed=4)).to(device)
    draws = Resampler(4, iterations=2, min_size=1).draw(bags, seed=6)
    check(FlowFeatures()(bags, draws), reference_matrix(bags, draws))
    check(FlowFeatures()(bags), reference_matrix(bags, Draws.originals(bags)))


@pytest.mark.parametrize("options", OPTIONS[2:], ids=["5tuple", "autocorr", "all"])
def test_tiny_bags_match_reference(options, device):
    bags = Bags.from_records("flows", tiny_flows()).to(device)
    assert bags.lengths.tolist() == [1, 2, 2, 2]
    x = FlowFeatures(**options)(bags)
    assert bool(torch.isfinite(x).all())
    check(x, reference_matrix(bags, Draws.originals(bags), **options))


def test_default_on_tiny_bags(device):
    bags = Bags.from_records("flows", tiny_flows()).to(device)
    extractor = FlowFeatures()
    x = pd.DataFrame(
        extractor(bags).cpu().numpy(), columns=extractor.feature_names, index=bags.targets
    )
    check(torch.tensor(x.to_numpy()), reference_matrix(bags, Draws.originals(bags)))
    assert x.loc["s1", "bin_mean_flows"] == 1 and x.loc["s1", "in_kurtosis_bytes"] == 0
    assert (
        x.loc["s3", "in_mean_pkts"] == 0 and x.loc["s3", "bin_min_flows"] == 0
    )  # 3 bins, the middle empty
    assert (
        x.loc["s2", "access_ratio_clients"] == 0 and x.loc["s2", "in_max_bytes_per_pkt"] == 300
    )  # pkts 0 -> 1
    assert x.loc["s4", "all_ratio_unmatched"] == 0 and x.loc["s2", "all_ratio_unmatched"] == 1


@pytest.mark.parametrize("options", OPTIONS)
def test_bags_without_in_flows(options, device):
    df = tiny_flows()
    bags = Bags.from_records("flows", df[df["server"] == "s3"]).to(device)
    x = FlowFeatures(**options)(bags)
    check(x, reference_matrix(bags, Draws.originals(bags), **options))


def test_rate_one_draws_reproduce_originals(device):
    bags = Bags.from_records("flows", conversations(seed=2)).to(device)
    extractor = FlowFeatures(disclosure_autocorr=True, matching="5tuple")
    draws = Resampler(2, iterations=2, rate=1.0).draw(bags, seed=0)
    x = extractor(bags, draws)
    expected = extractor(bags)[draws.owner]
    torch.testing.assert_close(x, expected, rtol=0, atol=0)


def test_shuffled_rows_give_identical_features():
    df = random_flows(n_records=300, seed=4)
    extractor = FlowFeatures(disclosure_autocorr=True)
    a = extractor(Bags.from_records("flows", df))
    b = extractor(
        Bags.from_records("flows", df.sample(frac=1, random_state=1).reset_index(drop=True))
    )
    assert torch.equal(a, b)


@pytest.mark.parametrize("options", OPTIONS)
def test_empty_draws_give_zero_rows(options, device):
    bags = Bags.from_records("flows", random_flows(n_records=60, seed=2)).to(device)
    extractor = FlowFeatures(**options)
    # draw 0 empty, draw 1 = bag a's first two records, draw 2 empty, draw 3 = bag b's first
    a, b = (int(i) for i in torch.nonzero(bags.lengths >= 2).flatten()[:2])
    rows = torch.cat([bags.offsets[a] + torch.arange(2, device=device), bags.offsets[b : b + 1]])
    offsets = torch.tensor([0, 0, 2, 2, 3], device=device)
    owner = torch.tensor([a, a, b, b], device=device)
    draws = Draws(owner=owner, offsets=offsets, rows=rows, iteration=torch.zeros_like(owner))
    x = extractor(bags, draws)
    assert bool(torch.isfinite(x).all())
    assert not x[0].any() and not x[2].any()
    check(x, reference_matrix(bags, draws, **options))
    nothing = Draws(
        owner=owner,
        offsets=torch.zeros(5, dtype=torch.int64, device=device),
        rows=rows[:0],
        iteration=torch.zeros_like(owner),
    )
    assert torch.equal(
        extractor(bags, nothing),
        torch.zeros(4, len(extractor.features), dtype=torch.float64, device=device),
    )


@pytest.mark.parametrize("options", OPTIONS)
def test_names_and_descriptions(options):
    extractor = make("flows", **options)
    assert isinstance(extractor, FlowFeatures)
    names = extractor.feature_names
    assert (
        len(names) == len(set(names)) == len(reference(conversations(seed=0).iloc[:5], **options))
    )
    assert extractor.describe()["description"].str.len().min() > 0
    assert any("_cv_" in n for n in names) == bool(options.get("cv_instead_of_std"))
    assert not any("_std_" in n for n in names) or not options.get("cv_instead_of_std")


def test_default_dimension():
    names = FlowFeatures().feature_names
    assert len(names) == 49
    assert names[:2] == ["in_mean_pkts", "in_std_pkts"] and names[-1] == "bin_median_clients"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"matching": "ip"}, "matching must be one of .* got 'ip'"),
        ({"bin_seconds": 0}, "bin_seconds must be > 0 .* got 0, 60.0"),
        ({"autocorr_lags": 0}, "autocorr_lags must be an integer >= 1, got 0"),
        ({"match_seconds": -1}, "match_seconds >= 0, got 300.0, -1"),
    ],
)
def test_bad_options(bad, message):
    with pytest.raises(ValueError, match=message):
        FlowFeatures(**bad)


def test_other_kind_is_refused():
    from conftest import random_dns

    with pytest.raises(ValueError, match="flows"):
        FlowFeatures()(Bags.from_records("dns", random_dns(20)))


# ---------------------------------------------------------------------- fast paths
@pytest.mark.parametrize("options", OPTIONS, ids=["default", "cv", "5tuple", "autocorr", "all"])
@pytest.mark.parametrize("cells", [flows_kernel.CELLS_PER_RECORD, 0], ids=["histograms", "sorts"])
def test_compiled_kernel_equals_the_torch_steps(cells, options, monkeypatch):
    """The compiled default groups (histograms, or sorts where none fits) against the torch
    steps, originals and draws: equal but for std's last bits (torch's float64 sqrt is at
    times one ulp off the correctly rounded one the kernel takes)."""
    monkeypatch.setattr(flows_kernel, "CELLS_PER_RECORD", cells)
    calls = []
    compiled = flows_kernel.default_features
    monkeypatch.setattr(
        flows_kernel, "default_features", lambda *a: calls.append(1) or compiled(*a)
    )
    records, _ = datasets.synthetic("flows", n_targets=40, seed=4)
    bags = Bags.from_records("flows", records)
    draws = Resampler(4, iterations=3, min_size=1).draw(bags, seed=2)
    extractor = FlowFeatures(**options)
    out = {}
    for on in (True, False):
        with kernels.compiled_kernels(on):
            out[on] = torch.cat([extractor(bags), extractor(bags, draws)])
    assert calls == [1, 1]  # the kernel ran, once per call (one chunk each)
    torch.testing.assert_close(out[True], out[False], rtol=1e-13, atol=0)
    assert (out[True] != 0).float().mean() > 0.5


def test_compiled_kernel_refuses_rows_outside_the_owners_bag():
    bags = Bags.from_records("flows", random_flows(n_records=60, seed=2))
    draws = Draws(
        owner=torch.tensor([0]),
        offsets=torch.tensor([0, 2]),
        rows=bags.offsets[1:3].clone(),  # the first records of bags 1 and 2
        iteration=torch.zeros(1, dtype=torch.int64),
    )
    with kernels.compiled_kernels(True), pytest.raises(ValueError, match="owner's bag"):
        FlowFeatures()(bags, draws)


@pytest.mark.parametrize("records", ["random", "synthetic"])
def test_grouped_computation_is_exact(records, device):
    """Draws computed in groups of ~chunk_records records give the very same rows."""
    df = (
        random_flows(n_records=400, seed=6)
        if records == "random"
        else datasets.synthetic("flows", n_targets=40, seed=4)[0]  # pow(x, 4) differed here
    )
    bags = Bags.from_records("flows", df).to(device)
    draws = Resampler(4, iterations=3, min_size=1).draw(bags, seed=2)
    chunk = 37 if records == "random" else 997  # a dozen groups of the larger synthetic bags
    for options in OPTIONS:
        whole, grouped = FlowFeatures(**options), FlowFeatures(chunk_records=chunk, **options)
        assert torch.equal(grouped(bags), whole(bags))
        assert torch.equal(grouped(bags, draws), whole(bags, draws))


def test_per_record_levels_and_ranks(device):
    from alchemy_torch.features.flows import _COLUMNS, _per_record

    df = random_flows(n_records=500, seed=8)
    df.loc[::7, "pkts"] = 0  # bytes / max(pkts, 1)
    bags = Bags.from_records("flows", df).to(device)
    cache = _per_record(bags)
    column = dict(zip(_COLUMNS, cache["block"].long()))
    c = bags.columns
    pkts, size = c["pkts"].to(torch.float64), c["bytes"].to(torch.float64)
    for i, col in enumerate((pkts, size / pkts.clamp(min=1), size)):
        assert torch.equal(cache["levels"][i], torch.unique(col))
        assert torch.equal(cache["levels"][i][column[f"rank{i}"]], col)
    inbound = c["dst"] == c["server"]
    clients, client = torch.unique(torch.where(inbound, c["src"], c["dst"]), return_inverse=True)
    assert torch.equal(column["out"] == 0, inbound)
    assert torch.equal(column["client"], client)
    assert cache["n_clients"] == clients.numel()


@pytest.mark.parametrize("compiled", [False, True], ids=["python", "numba"])
def test_kernel_median_is_numpys_on_ties_and_every_size(compiled):
    """The gaps' median by quickselect (flows_kernel._median) against numpy's, on short and
    long arrays with many ties (all its branches: insertion sort, partitions, an exact hit)."""
    median = (
        kernels.compiled(vars(flows_kernel), "_median", ("_median_position", "_select"))
        if compiled
        else flows_kernel._median
    )
    rng = np.random.default_rng(0)
    for k in [1, 2, 3, 16, 17, 18, 40, 101, 1000]:
        for levels in (2, 7, 10**6):
            x = rng.integers(0, levels, k).astype(np.float64)
            assert median(x.copy(), k) == np.median(x), (k, levels)


def test_compiled_kernel_on_threads_gives_the_one_thread_rows(monkeypatch):
    """Draws shared among threads (the kernel holds no GIL) give every row exactly as one
    thread does; ``torch.get_num_threads()`` bounds the threads."""
    pools = []

    class Pool(flows_kernel.ThreadPoolExecutor):
        def __init__(self, workers):
            pools.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(flows_kernel, "ThreadPoolExecutor", Pool)
    monkeypatch.setattr(flows_kernel, "RECORDS_PER_THREAD", 1)
    records, _ = datasets.synthetic("flows", n_targets=40, seed=4)
    bags = Bags.from_records("flows", records)
    draws = Resampler(4, iterations=3, min_size=1).draw(bags, seed=2)
    before = torch.get_num_threads()
    out = {}
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            with kernels.compiled_kernels(True):
                out[threads] = FlowFeatures()(bags, draws)
    finally:
        torch.set_num_threads(before)
    assert pools == [3]
    assert torch.equal(out[1], out[3])
