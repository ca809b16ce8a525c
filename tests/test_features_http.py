"""HTTP (Bartos-derived) features against a plain-Python reference, one target at a time."""

from __future__ import annotations

from collections import Counter
from itertools import groupby

import numpy as np
import pandas as pd
import pytest
import torch

from alchemy_torch.bags import Bags
from alchemy_torch.features import describe, http, make
from alchemy_torch.features.http import HttpFeatures, _pair_histogram, request_table
from alchemy_torch.ops import segment
from alchemy_torch.ops.segment import dense_ranks, segment_value_runs
from alchemy_torch.resample import Draws, Resampler

RTOL = 1e-6
PARTS = ("host", "path", "query")


# ---------------------------------------------------------------------- records
def random_http(n_records: int = 120, seed: int = 0) -> pd.DataFrame:
    """Requests to a few servers plus servers with one and two requests; ties in ts, odd strings."""
    rng = np.random.default_rng(seed)
    alphabet = list("abcdeiouxyzAEBQZ0123456789./-_=&%+é") + ["/", "&"]

    def text(max_len: int) -> str:
        return "".join(rng.choice(alphabet, rng.integers(0, max_len + 1)))

    pool = {
        part: [text(k) for _ in range(8)] + [""]
        for part, k in (("host", 14), ("path", 20), ("query", 16))
    }
    pool["referrer"] = ["", "http://a.b/c/d", "-", "https://x.y/"]
    servers = rng.choice(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"], n_records)
    records = pd.DataFrame(
        {
            "ts": 1.6e9 + rng.integers(0, 40, n_records).astype(float),
            "client": rng.choice(["192.168.0.1", "192.168.0.2"], n_records),
            "server": servers,
            **{c: rng.choice(v, n_records) for c, v in pool.items()},
            "method": rng.choice(["GET", "POST"], n_records),
            "user_agent": "ua",
            "bytes_out": rng.integers(0, 4, n_records) * 100,
            "bytes_in": rng.integers(0, 100000, n_records),
            "status": 200,
        }
    )
    single = records.iloc[:1].assign(server="10.0.0.9")
    double = records.iloc[1:3].assign(server="10.0.0.8", ts=1.6e9)
    return pd.concat([records, single, double], ignore_index=True)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return random_http()


@pytest.fixture(scope="module")
def cpu_bags(records) -> Bags:
    return Bags.from_records("http", records)


# ---------------------------------------------------------------------- reference
def ref_part(s: str) -> list[float]:
    n = len(s)
    if n == 0:
        return [0.0] * 10
    vowel = lambda ch: ch in "aeiouAEIOU"  # noqa: E731
    letter = lambda ch: ch.isascii() and ch.isalpha()  # noqa: E731
    consonant = lambda ch: letter(ch) and not vowel(ch)  # noqa: E731
    digit = lambda ch: ch in "0123456789"  # noqa: E731

    def longest(test) -> int:
        return max((len(list(g)) for k, g in groupby(s, key=test) if k), default=0)

    changes = sum(
        (vowel(a) and consonant(b)) or (consonant(a) and vowel(b)) for a, b in zip(s, s[1:])
    )
    base64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    return [
        n,
        sum(map(digit, s)) / n,
        sum("a" <= ch <= "z" for ch in s) / n,
        sum("A" <= ch <= "Z" for ch in s) / n,
        changes / n,
        max(Counter(s).values()) / n,
        longest(consonant),
        longest(vowel),
        longest(digit),
        sum(ch not in base64 for ch in s),
    ]


def ref_request(row) -> list[float]:
    values = [v for part in PARTS for v in ref_part(row[part])]
    params = len([item for item in row["query"].split("&") if item != ""])
    return values + [
        row["bytes_out"],
        row["bytes_in"],
        params,
        row["path"].count("/"),
        row["query"].count("/"),
        row["referrer"].count("/"),
    ]


def ref_histogram(values: list[float], bins: int) -> list[float]:
    if not values:
        return [0.0] * bins
    lo, hi = min(values), max(values)
    scaled = [0.0 if hi == lo else (v - lo) / (hi - lo) for v in values]
    counts = [0] * bins
    for u in scaled:
        counts[sum(u >= k / bins for k in range(1, bins))] += 1
    return [c / len(values) for c in counts]


def ref_vector(
    requests: pd.DataFrame, aggregation: str = "stats", bins: int = 8, n_features: int = 36
) -> np.ndarray:
    table = np.array(
        [ref_request(r)[:n_features] for _, r in requests.iterrows()], dtype=float
    ).reshape(-1, n_features)
    out = []
    for x in table.T:
        if aggregation == "stats":
            out += [x.mean(), x.std(), x.min(), x.max(), np.median(x)] if len(x) else [0.0] * 5
        else:
            pairs = [abs(x[i] - x[j]) for i in range(len(x)) for j in range(i + 1, len(x))]
            out += ref_histogram(list(x), bins) + ref_histogram(pairs, bins)
    if aggregation == "stats":
        out.append(len(table))
    return np.array(out, dtype=float)


def records_of(bags: Bags, rows: np.ndarray) -> pd.DataFrame:
    """The canonical requests at ``rows`` of the Bags, decoded."""
    frame = {c: bags.decode(c)[rows] for c in ("host", "path", "query", "referrer")}
    frame.update({c: bags.columns[c].cpu().numpy()[rows] for c in ("bytes_out", "bytes_in")})
    return pd.DataFrame(frame)


def assert_close(actual: torch.Tensor, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual.cpu().numpy(), expected, rtol=RTOL, atol=1e-12)


# ---------------------------------------------------------------------- per-request features
@pytest.mark.parametrize(
    "text, expected",
    [
        ("", [0] * 10),
        ("aBc123//x=é", [11, 3 / 11, 3 / 11, 1 / 11, 1 / 11, 2 / 11, 2, 1, 3, 1]),
        ("www.Example.com", [15, 0, 12 / 15, 1 / 15, 6 / 15, 3 / 15, 3, 1, 0, 2]),
    ],
)
def test_reference_part_features_by_hand(text, expected):
    assert ref_part(text) == pytest.approx(expected)


def test_request_table_matches_reference(cpu_bags):
    table = request_table(cpu_bags)
    expected = np.array(
        [
            ref_request(r)
            for _, r in records_of(cpu_bags, np.arange(cpu_bags.num_records)).iterrows()
        ]
    )
    assert_close(table.T, expected)


# ---------------------------------------------------------------------- originals and draws
@pytest.mark.parametrize("aggregation", ["stats", "bartos"])
def test_originals_match_reference(records, device, aggregation):
    bags = Bags.from_records("http", records).to(device)
    extractor = make("http", aggregation=aggregation)
    out = extractor(bags)
    assert out.device.type == device.type and out.dtype == torch.float64
    assert out.shape == (len(bags), 181 if aggregation == "stats" else 576)
    offsets = bags.offsets.cpu().numpy()
    expected = np.stack(
        [
            ref_vector(records_of(bags, np.arange(offsets[b], offsets[b + 1])), aggregation)
            for b in range(len(bags))
        ]
    )
    assert_close(out, expected)


@pytest.mark.parametrize(
    "aggregation, bins, use_referrer",
    [("stats", 8, True), ("bartos", 8, True), ("bartos", 5, False), ("stats", 8, False)],
)
def test_draws_match_reference(cpu_bags, aggregation, bins, use_referrer):
    draws = Resampler(4, iterations=3, rate_range=(0.2, 0.9), min_size=1).draw(cpu_bags, seed=7)
    out = make("http", aggregation=aggregation, bins=bins, use_referrer=use_referrer)(
        cpu_bags, draws
    )
    offsets, rows = draws.offsets.numpy(), draws.rows.numpy()
    n_features = 36 if use_referrer else 35
    expected = np.stack(
        [
            ref_vector(
                records_of(cpu_bags, rows[offsets[d] : offsets[d + 1]]),
                aggregation,
                bins,
                n_features,
            )
            for d in range(len(draws))
        ]
    )
    assert_close(out, expected)


@pytest.mark.parametrize("aggregation", ["stats", "bartos"])
@pytest.mark.parametrize("cells_per_row", [0, 10**9])
def test_histogram_and_sorted_medians_agree_with_the_reference(
    cpu_bags, cells_per_row, aggregation
):
    """Both paths to a draw's ordered values (medians; the distinct values of the Bartos
    histograms): one integer sort per feature (0 cells allowed) or the (draw, rank) histogram
    (any number allowed) give the reference's features."""
    draws = Resampler(4, iterations=3, rate_range=(0.2, 0.9), min_size=1).draw(cpu_bags, seed=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segment, "HISTOGRAM_CELLS_PER_VALUE", cells_per_row)
        out = make("http", aggregation=aggregation)(cpu_bags, draws)
    offsets, rows = draws.offsets.numpy(), draws.rows.numpy()
    expected = [
        ref_vector(records_of(cpu_bags, rows[offsets[d] : offsets[d + 1]]), aggregation, 8, 36)
        for d in range(len(draws))
    ]
    assert_close(out, np.stack(expected))


def test_rate_one_draws_reproduce_originals(cpu_bags, device):
    bags = cpu_bags.to(device)
    draws = Resampler(2, iterations=2, rate=1.0).draw(bags, seed=3)
    for aggregation in ("stats", "bartos"):
        extractor = make("http", aggregation=aggregation)
        torch.testing.assert_close(
            extractor(bags, draws), extractor(bags)[draws.owner], rtol=0, atol=0
        )


@pytest.mark.parametrize("aggregation", ["stats", "bartos"])
def test_row_shuffle_changes_nothing(records, cpu_bags, aggregation):
    shuffled = Bags.from_records("http", records.sample(frac=1, random_state=5))
    extractor = make("http", aggregation=aggregation)
    torch.testing.assert_close(extractor(shuffled), extractor(cpu_bags), rtol=0, atol=0)


def test_empty_and_tiny_draws_are_finite(cpu_bags, device):
    bags = cpu_bags.to(device)
    single = int(np.flatnonzero(bags.targets == "10.0.0.9")[0])
    first = int(bags.offsets[single])
    draws = Draws(
        owner=torch.tensor([0, single, 0], device=device),
        offsets=torch.tensor([0, 0, 1, 1], device=device),
        rows=torch.tensor([first], device=device),
        iteration=torch.zeros(3, dtype=torch.int64, device=device),
    )
    for aggregation in ("stats", "bartos"):
        out = make("http", aggregation=aggregation)(bags, draws)
        assert torch.isfinite(out).all()
        assert (out[[0, 2]] == 0).all()
    hist = make("http", aggregation="bartos")(bags, draws)[1].view(36, 2, 8)
    assert (hist[:, 0, 0] == 1).all() and (hist[:, 0, 1:] == 0).all() and (hist[:, 1] == 0).all()


def test_no_requests_at_all(cpu_bags):
    draws = Draws(
        owner=torch.tensor([0]),
        offsets=torch.tensor([0, 0]),
        rows=torch.tensor([], dtype=torch.int64),
        iteration=torch.tensor([0]),
    )
    for aggregation in ("stats", "bartos"):
        out = make("http", aggregation=aggregation)(cpu_bags, draws)
        assert out.shape[0] == 1 and (out == 0).all()


# ---------------------------------------------------------------------- exact pair histogram
def edge_groups(values: str) -> list[np.ndarray]:
    """Groups of values whose pair differences hit the bin edges exactly: ratios k/L
    (non-dyadic), or integers (multiples of the bin counts, byte-like sizes); ties, constants."""
    rng = np.random.default_rng(1)
    if values == "ratios":
        groups = [
            rng.integers(0, 9, rng.integers(0, 12)) / rng.choice([1, 3, 7, 9], 1) for _ in range(60)
        ]
        return groups + [
            np.array([1 / 3, 2 / 3, 1.0, 0.0]),
            np.array([0.1, 0.2, 0.3, 0.4, 0.7]),
            np.array([5.0, 5.0]),
        ]
    groups = [
        rng.integers(0, 9, rng.integers(0, 12)) * rng.choice([1, 5, 40, 1000], 1) + 3
        for _ in range(60)
    ]
    groups += [rng.integers(0, 10**4, 30) for _ in range(4)]
    return [g.astype(float) for g in groups] + [
        np.array([0.0, 80.0, 40.0, 10.0, 70.0]),
        np.array([-20.0, 20.0, 0.0, 0.0]),
        np.array([7.0, 7.0]),
    ]


@pytest.mark.parametrize("cells_per_row", [0, 10**9], ids=["sorted", "histogram"])
@pytest.mark.parametrize(
    "values, integral",
    [("ratios", True), ("integers", True), ("integers", False)],
    ids=["ratios", "integers", "integers-searched-as-floats"],
)
def test_pair_histogram_exact_on_edges_and_ties(cells_per_row, values, integral, monkeypatch):
    """Differences on the bin edges, compared to brute force. The distinct values of every
    group come from one integer sort or from a histogram (and the runs past each threshold are
    searched or read from a table); integers are counted by their exact sums or, forced, as
    other values are."""
    monkeypatch.setattr(segment, "HISTOGRAM_CELLS_PER_VALUE", cells_per_row)
    if not integral:
        monkeypatch.setattr(http, "_integral", lambda x: False)

    def runs_of(values: torch.Tensor, offsets: torch.Tensor) -> tuple:
        rank, uniques = dense_ranks(values)
        level, counts, run_offsets, _ = segment_value_runs(rank, uniques.numel(), offsets)
        return level, uniques, counts, run_offsets

    groups = edge_groups(values)
    lengths = torch.tensor([len(g) for g in groups])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    values = torch.from_numpy(np.concatenate(groups)).to(torch.float64)
    for bins in (8, 10):
        edges = torch.arange(1, bins, dtype=torch.float64) / bins
        hist = _pair_histogram(*runs_of(values, offsets), edges)
        expected = [
            ref_histogram([abs(a - b) for i, a in enumerate(g) for b in g[i + 1 :]], bins)
            for g in groups
        ]
        assert_close(hist, np.array(expected))


# ---------------------------------------------------------------------- names, options, describe
@pytest.mark.parametrize(
    "options, dim",
    [
        ({}, 181),
        ({"use_referrer": False}, 176),
        ({"aggregation": "bartos"}, 576),
        ({"aggregation": "bartos", "bins": 4}, 288),
    ],
)
def test_names_and_descriptions(options, dim):
    extractor = make("http", **options)
    names = extractor.feature_names
    assert len(names) == dim == len(set(names))
    table = describe("http", **options)
    assert len(table) == dim and table["description"].str.len().min() > 0


def test_feature_names_follow_the_convention():
    stats, bartos = make("http").feature_names, make("http", aggregation="bartos").feature_names
    assert stats[:6] == [
        "req_mean_host_length",
        "req_std_host_length",
        "req_min_host_length",
        "req_max_host_length",
        "req_median_host_length",
        "req_mean_host_digit_ratio",
    ]
    assert stats[-1] == "bag_count_requests" and "req_mean_referrer_slashes" in stats
    assert "bartos_valhist3_path_digit_ratio" in bartos and "bartos_simhist0_query_params" in bartos
    assert bartos.index("bartos_simhist0_host_length") == 8


def test_bad_options_raise():
    with pytest.raises(ValueError, match="aggregation"):
        HttpFeatures(aggregation="mean")
    with pytest.raises(ValueError, match="bins"):
        HttpFeatures(bins=1)


def test_rejects_other_kinds():
    from conftest import random_flows

    with pytest.raises(ValueError, match="http"):
        make("http")(Bags.from_records("flows", random_flows(n_records=20)))
