"""DNS features (METHOD.md §7.3) against a plain-Python reference, one bag or draw at a time."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import itertools
import math
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from publicsuffixlist import PublicSuffixList

from alchemy_torch import Bags, Resampler
from alchemy_torch.features import Behaviour, make
from alchemy_torch.features.dns import DnsFeatures
from alchemy_torch.io.errors import DataFormatError
from alchemy_torch.resample import Draws

pytestmark = pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip:UserWarning")

GEOIP_CSV = Path(__file__).parent / "fixtures" / "geoip_tiny.csv"
T0 = 1_600_000_000.0
ADDRESSES = (
    [f"1.2.3.{i}" for i in range(13)]
    + [f"10.0.{i}.1" for i in range(4)]
    + ["2001:db8::1", "2001:0db8:0::1", "2001:db8:0:1::5", "8.8.8.8"]
)
NAMES = ["edge.cdn.net.", "alias.example.com", "x.y"]
TTLS = [0, 1, 5, 9, 10, 30, 99, 100, 120, 299, 300, 600, 899, 900, 3600, 86400]


def random_records(n: int = 500, seed: int = 0, prefix: str = "") -> pd.DataFrame:
    """Random domains over 5 days with bursts, ties in ts, IPs/CNAMEs/IPv6, every TTL range,
    plus a bursty domain (change points), a sparse one, and bags of one and two records."""
    rng = np.random.default_rng(seed)
    domains = [
        f"{prefix}{d}"
        for d in (
            "a.example.com",
            "b.example.org",
            "x1y2.biz",
            "cdn.example.net",
            "shop42.co.uk",
            "9.9x.com.au",
            "localhost",
        )
    ]
    query = list(rng.choice(domains, n, p=rng.dirichlet(np.ones(len(domains)))))
    centres = T0 + rng.integers(0, 5 * 24, 6) * 3600.0
    burst = rng.random(n) < 0.5
    ts = np.where(
        burst,
        rng.choice(centres, n) + np.round(rng.random(n) * 1800),
        T0 + np.round(rng.random(n) * 5 * 86400),
    )
    ts = list(ts)
    hours = [h for h in range(48) for _ in range(25 if 16 <= h < 24 or 36 <= h < 40 else 1)]
    bursty = [T0 + 7200 + h * 3600 + 60 * (i % 50) for i, h in enumerate(hours)]
    sparse = [T0 + 3 * 3600 + k * 29 * 3600 + 17 for k in range(4)] + [T0 + 4 * 86400]
    single, pair = [T0 + 1234.5], [T0 + 99.0, T0 + 99.0]
    for name, times in [
        ("burst.example.com", bursty),
        ("sparse.example.com", sparse),
        ("solo1.example.com", single),
        ("pair.example.com", pair),
    ]:
        query += [f"{prefix}{name}"] * len(times)
        ts += times
    m = len(query)
    n_answers = rng.integers(0, 4, m)
    pool = ADDRESSES + NAMES
    answers = [[str(a) for a in rng.choice(pool, k)] for k in n_answers]
    ttls = [
        [
            int(rng.choice(TTLS)) if rng.random() < 0.8 else int(rng.integers(0, 5000))
            for _ in range(k)
        ]
        for k in n_answers
    ]
    return pd.DataFrame(
        {
            "ts": ts,
            "client": rng.choice(["10.1.1.1", "10.1.1.2"], m),
            "query": query,
            "qtype": "A",
            "rcode": "NOERROR",
            "answers": answers,
            "ttls": ttls,
        }
    )


# ---------------------------------------------------------------------- reference
def canonical(answer: str) -> str | None:
    try:
        return str(ipaddress.ip_address(answer.strip()))
    except ValueError:
        return None


def index_pairs(records: pd.DataFrame) -> set:
    return {
        (ip, q)
        for q, answers in zip(records["query"], records["answers"])
        for ip in map(canonical, answers)
        if ip is not None
    }


@functools.lru_cache(maxsize=None)
def reference_country(ip: str) -> str | None:
    table = pd.read_csv(GEOIP_CSV)
    hits = [
        (ipaddress.ip_network(p).prefixlen, c.upper())
        for p, c in zip(table["prefix"], table["country"])
        if ipaddress.ip_address(ip) in ipaddress.ip_network(p)
    ]
    return max(hits)[1] if hits else None


ICANN_SUFFIXES = PublicSuffixList(only_icann=True)


def registered_label(name: str, scope: str) -> str:
    labels = name.lower().rstrip(".").split(".")
    if scope == "fqdn":
        return "".join(labels)
    suffix = ICANN_SUFFIXES.publicsuffix(".".join(labels)).split(".")
    return labels[-len(suffix) - 1] if len(labels) > len(suffix) else labels[0]


def reference_cusum(counts: list[int], w: int, local_max: float, cusum_max: float) -> list[int]:
    peak, level, last, points = max(counts), 0.0, -math.inf, []
    for t in range(1, len(counts)):
        if t < last + w:
            level = 0.0
            continue
        plus, minus = counts[t : t + w], counts[max(0, t - w) : t]
        d = abs(sum(plus) / len(plus) - sum(minus) / len(minus)) / peak
        level = max(0.0, level + d - local_max)
        if level > cusum_max:
            points.append(t)
            level, last = 0.0, t
    return points


def reference_vector(
    records: list[tuple],
    domain: str,
    pairs: set,
    period: float,
    geoip: bool = False,
    include_cname_ttls: bool = False,
    name_scope: str = "registered",
    window_hours: int = 8,
    local_max: float = 0.1,
    cusum_max: float = 1.0,
    short_life_hours: float = 72.0,
) -> list[float]:
    """The features of one bag or draw: ``records`` = [(ts, answers, ttls)] in time order."""
    name = registered_label(domain, name_scope)
    digits = sum(c.isdigit() for c in name) / len(name) if name else 0.0
    n_out = 19 + geoip
    if not records:
        return [0.0] * (n_out - 1) + [digits]
    ts = [r[0] for r in records]
    span = max(ts) - min(ts)
    out = [float(span / 3600 < short_life_hours), span / period if period > 0 else 0.0]

    days: dict = {}
    for t in ts:
        stamp = dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
        days.setdefault(stamp.date(), np.zeros(24))[stamp.hour] += 1
    z = [(v - v.mean()) / v.std() if v.std() > 0 else np.zeros(24) for v in days.values()]
    dists = [np.linalg.norm(a - b) for a, b in itertools.combinations(z, 2)]
    out.append(float(np.mean(dists)) if dists else 0.0)

    lifetime = math.floor(span / 3600) + 1
    counts = [0] * lifetime
    for t in ts:
        counts[math.floor((t - ts[0]) / 3600)] += 1
    points = reference_cusum(counts, window_hours, local_max, cusum_max)
    out += [
        len(points),
        float(np.std(np.diff(points))) if len(points) > 1 else 0.0,
        sum(c > 0 for c in counts) / lifetime,
    ]

    ips = {ip for _, answers, _ in records for ip in map(canonical, answers) if ip is not None}
    out.append(len(ips))
    if geoip:
        out.append(len({c for c in map(reference_country, ips) if c is not None}))
    out.append(len({q for ip, q in pairs if ip in ips} - {domain}))

    chosen = [
        [ttl for a, ttl in zip(answers, ttls) if include_cname_ttls or canonical(a) is not None]
        for _, answers, ttls in records
    ]
    flat = [ttl for per_record in chosen for ttl in per_record]
    out += [
        float(np.mean(flat)) if flat else 0.0,
        float(np.std(flat)) if flat else 0.0,
        len(set(flat)),
    ]
    minima = [min(per_record) for per_record in chosen if per_record]
    out.append(sum(a != b for a, b in zip(minima, minima[1:])))
    edges = [0, 1, 10, 100, 300, 900, math.inf]
    out += [
        sum(lo <= x < hi for x in flat) / len(flat) if flat else 0.0
        for lo, hi in zip(edges, edges[1:])
    ]
    return out + [digits]


def decoded(bags: Bags, rows: torch.Tensor) -> list[tuple]:
    ts = bags.columns["ts"].cpu().numpy()
    ro = bags.ragged_offsets.cpu().numpy()
    codes, ttls = bags.ragged["answers"].cpu().numpy(), bags.ragged["ttls"].cpu().numpy()
    return [
        (
            float(ts[r]),
            list(bags.vocab["answer"][codes[ro[r] : ro[r + 1]]]),
            list(ttls[ro[r] : ro[r + 1]]),
        )
        for r in rows.cpu().tolist()
    ]


def reference_matrix(
    bags: Bags, draws: Draws | None, train: pd.DataFrame, period: float, **options
) -> np.ndarray:
    draws = Draws.originals(bags) if draws is None else draws
    pairs = index_pairs(train)
    off, rows, owner = draws.offsets.cpu(), draws.rows.cpu(), draws.owner.cpu()
    return np.array(
        [
            reference_vector(
                decoded(bags, rows[off[p] : off[p + 1]]),
                bags.targets[int(owner[p])],
                pairs,
                period,
                **options,
            )
            for p in range(len(owner))
        ],
        dtype=np.float64,
    )


def span_of(records: pd.DataFrame) -> float:
    return float(records["ts"].max() - records["ts"].min())


# ---------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return random_records()


def test_originals_match_reference(records, device):
    bags = Bags.from_records("dns", records).to(device)
    ex = DnsFeatures().fit(bags)
    x = ex(bags)
    assert x.device.type == device.type and x.dtype == torch.float64
    ref = reference_matrix(bags, None, records, span_of(records))
    np.testing.assert_allclose(x.cpu().numpy(), ref, rtol=1e-6, atol=1e-9)
    burst = list(bags.targets).index("burst.example.com")
    assert (
        x[burst, ex.feature_names.index("hour_count_changepoints")] >= 3
    )  # the data exercises the CUSUM
    tiny = [list(bags.targets).index(d) for d in ("solo1.example.com", "pair.example.com")]
    assert bags.lengths[tiny].tolist() == [1, 2]


@pytest.mark.parametrize(
    "resampler",
    [
        Resampler(2, iterations=3, rate=0.5),
        Resampler(1, iterations=2, size=5, mode="contiguous"),
        Resampler(4, iterations=2, min_size=1),
    ],
)
def test_draws_match_reference(records, device, resampler):
    bags = Bags.from_records("dns", records).to(device)
    ex = DnsFeatures().fit(bags)
    draws = resampler.draw(bags, seed=3)
    ref = reference_matrix(bags, draws, records, span_of(records))
    np.testing.assert_allclose(ex(bags, draws).cpu().numpy(), ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "options",
    [
        dict(include_cname_ttls=True, name_scope="fqdn"),
        dict(window_hours=3, local_max=0.05, cusum_max=0.5, short_life_hours=30.0),
        dict(monitoring_period=7 * 86400.0),
    ],
)
def test_options_match_reference(records, options):
    bags = Bags.from_records("dns", records)
    ex = DnsFeatures(**options).fit(bags)
    period = options.get("monitoring_period", span_of(records))
    draws = Resampler(3, iterations=2).draw(bags, seed=1)
    ref_options = {k: v for k, v in options.items() if k != "monitoring_period"}
    for d in (None, draws):
        np.testing.assert_allclose(
            ex(bags, d).numpy(),
            reference_matrix(bags, d, records, period, **ref_options),
            rtol=1e-6,
            atol=1e-9,
        )


def test_index_comes_from_training_bags_only(device):
    train, test = (
        random_records(300, seed=1, prefix="tr-"),
        random_records(200, seed=2, prefix="te-"),
    )
    test = pd.concat([test, train.iloc[:20]], ignore_index=True)  # a few training domains reappear
    train_bags = Bags.from_records("dns", train).to(device)
    test_bags = Bags.from_records("dns", test).to(device)  # its own vocabularies
    ex = DnsFeatures().fit(train_bags)
    ref = reference_matrix(test_bags, None, train, span_of(train))
    x = ex(test_bags)
    np.testing.assert_allclose(x.cpu().numpy(), ref, rtol=1e-6, atol=1e-9)
    assert (x[:, ex.feature_names.index("ip_nunique_other_domains")] > 0).any()
    # refitting replaces the index (and the cached lookups keyed by it)
    ex.fit(test_bags)
    np.testing.assert_allclose(
        ex(test_bags).cpu().numpy(),
        reference_matrix(test_bags, None, test, span_of(test)),
        rtol=1e-6,
        atol=1e-9,
    )


def test_geoip_csv_countries(records, device):
    bags = Bags.from_records("dns", records).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = make("dns", geoip=GEOIP_CSV).fit(bags)
    assert "answer_nunique_country" in ex.feature_names and len(ex.feature_names) == 20
    draws = Resampler(2, iterations=2, rate=0.3).draw(bags, seed=5)
    for d in (None, draws):
        ref = reference_matrix(bags, d, records, span_of(records), geoip=True)
        np.testing.assert_allclose(ex(bags, d).cpu().numpy(), ref, rtol=1e-6, atol=1e-9)


def test_without_geoip_the_country_feature_is_dropped_and_the_first_fit_says_so(records):
    bags = Bags.from_records("dns", records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = make("dns")  # building does not warn (nor read anything)
    assert "answer_nunique_country" not in ex.feature_names and len(ex.feature_names) == 19
    with pytest.warns(UserWarning, match="answer_nunique_country"):
        ex.fit(bags)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex.fit(bags)  # once
    assert ex(bags).shape == (len(bags), 19)


def test_geoip_is_read_by_fit_only(records, tmp_path):
    missing = tmp_path / "GeoLite2-Country.mmdb"
    ex = DnsFeatures(geoip=missing)
    assert ex.get_params()["geoip"] is missing and "answer_nunique_country" in ex.feature_names
    with pytest.raises(FileNotFoundError, match="GeoLite2-Country.mmdb"):
        ex.fit(Bags.from_records("dns", records))


def test_mmdb_needs_maxminddb(tmp_path, monkeypatch, records):
    path = tmp_path / "GeoLite2-Country.mmdb"
    path.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "maxminddb", None)
    ex = DnsFeatures(geoip=path)
    with pytest.raises(ImportError, match="pip install maxminddb"):
        ex.fit(Bags.from_records("dns", records))


def test_mmdb_is_read_with_maxminddb(tmp_path, monkeypatch, records):
    path = tmp_path / "GeoLite2-Country.mmdb"
    path.write_bytes(b"\0")

    class Reader:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def get(self, ip):
            country = reference_country(ip)
            return None if country is None else {"country": {"iso_code": country}}

    monkeypatch.setitem(
        sys.modules, "maxminddb", types.SimpleNamespace(open_database=lambda p: Reader())
    )
    bags = Bags.from_records("dns", records)
    ex = DnsFeatures(geoip=path).fit(bags)
    np.testing.assert_allclose(
        ex(bags).numpy(),
        reference_matrix(bags, None, records, span_of(records), geoip=True),
        rtol=1e-6,
        atol=1e-9,
    )


def test_bad_geoip_and_options(tmp_path, records):
    bad = tmp_path / "bad.csv"
    bad.write_text("prefix,country\n1.2.3.0/24,US\nnot-a-prefix,FR\n")
    with pytest.raises(DataFormatError, match="bad.csv, line 3, field 'prefix'"):
        DnsFeatures(geoip=bad).fit(Bags.from_records("dns", records))
    for options, message in [
        (dict(name_scope="sld"), "name_scope must be one of .* got 'sld'"),
        (dict(local_max=0.0), "local_max and cusum_max must be > 0, got 0.0, 1.0"),
        (dict(window_hours=0), "window_hours must be an integer >= 1, got 0"),
        (dict(monitoring_period=-1), "monitoring_period must be > 0 seconds, got -1"),
    ]:
        with pytest.raises(ValueError, match=message):
            DnsFeatures(**options)


def test_calling_before_fit_raises(records):
    bags = Bags.from_records("dns", records)
    with pytest.raises(RuntimeError, match="fit"):
        DnsFeatures()(bags)


def test_rate_one_draws_reproduce_originals(records, device):
    bags = Bags.from_records("dns", records).to(device)
    ex = DnsFeatures().fit(bags)
    draws = Resampler(2, iterations=2, rate=1.0).draw(bags, seed=0)
    x, xd = ex(bags), ex(bags, draws)
    torch.testing.assert_close(xd, x[draws.owner], rtol=0, atol=0)


def test_shuffled_rows_give_identical_features(records):
    a = Bags.from_records("dns", records)
    b = Bags.from_records("dns", records.sample(frac=1, random_state=7).reset_index(drop=True))
    xa, xb = DnsFeatures().fit(a)(a), DnsFeatures().fit(b)(b)
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)


def test_empty_and_tiny_draws_are_finite(records, device):
    bags = Bags.from_records("dns", records).to(device)
    ex = DnsFeatures().fit(bags)
    solo = list(bags.targets).index("solo1.example.com")
    start = int(bags.offsets[solo])
    draws = Draws(
        owner=torch.tensor([0, solo, 1, 2], device=device),
        offsets=torch.tensor([0, 0, 1, 1, 1], device=device),
        rows=torch.tensor([start], device=device),
        iteration=torch.zeros(4, dtype=torch.int64, device=device),
    )
    x = ex(bags, draws)
    assert torch.isfinite(x).all()
    names = ex.feature_names
    empty = x[[0, 2, 3]]
    assert (empty[:, :-1] == 0).all()  # empty: every statistic 0 ...
    expected = [reference_vector([], bags.targets[t], set(), 1.0)[-1] for t in (0, 1, 2)]
    assert (
        empty[:, names.index("name_ratio_digits")].tolist() == expected
    )  # ... the name keeps its value
    one = dict(zip(names, x[1].tolist()))
    assert (
        one["bag_flag_short_life"] == 1
        and one["hour_ratio_active"] == 1
        and one["hour_count_changepoints"] == 0
    )
    # bags made of a single record, and bags without any answer
    tiny = pd.DataFrame(
        {
            "ts": [T0, T0 + 5.0],
            "client": "c",
            "query": ["one.com", "two.net"],
            "qtype": "A",
            "rcode": "NXDOMAIN",
            "answers": [[], []],
            "ttls": [[], []],
        }
    )
    tiny_bags = Bags.from_records("dns", tiny).to(device)
    xt = DnsFeatures().fit(tiny_bags)(tiny_bags)
    assert torch.isfinite(xt).all()
    np.testing.assert_allclose(
        xt.cpu().numpy(), reference_matrix(tiny_bags, None, tiny, 5.0), rtol=1e-6, atol=1e-9
    )


def test_names_and_behaviours():
    ex = DnsFeatures(geoip=GEOIP_CSV)
    names = ex.feature_names
    assert len(names) == len(set(names)) == 20
    table = ex.describe()
    assert list(table["feature"]) == names and table["behaviour"].notna().all()
    behaviour = {f.name: f.behaviour for f in ex.features}
    assert behaviour["name_ratio_digits"] is Behaviour.INVARIANT
    assert behaviour["ip_nunique_other_domains"] is Behaviour.GLOBAL
    assert behaviour["answer_mean_ttl"] is Behaviour.CENTRED
    assert behaviour["answer_nunique_ip"] is Behaviour.RATE_SENSITIVE


@pytest.mark.parametrize(
    "name,scope,label",
    [
        ("shop42.co.uk", "registered", "shop42"),
        ("www.Shop42.CO.UK.", "registered", "shop42"),
        ("9.9x.com.au", "registered", "9x"),
        ("x1y2.biz", "registered", "x1y2"),
        ("localhost", "registered", "localhost"),
        ("co.uk", "registered", "co"),
        ("mail.3com.com", "fqdn", "mail3comcom"),
        ("a.b.k12.ca.us", "registered", "b"),  # Public Suffix List, ICANN section
        ("4.3.2.1.in-addr.arpa", "registered", "1"),
        ("d111.cloudfront.net", "registered", "cloudfront"),  # private suffix: off by default
    ],
)
def test_name_label(name, scope, label):
    from alchemy_torch.features.dns import _name_part

    assert _name_part(name, scope) == label


def test_private_suffixes_are_an_option(records):
    from alchemy_torch.features.dns import _name_part

    assert _name_part("d111.cloudfront.net", "registered", private=True) == "d111"
    assert _name_part("x9.s3.amazonaws.com", "registered", private=True) == "x9"
    one_name = records.assign(query="d111.cloudfront.net")
    bags = Bags.from_records("dns", one_name, labels=pd.Series({"d111.cloudfront.net": 0}))
    icann, private = (
        make("dns", private_suffixes=p).fit(bags)(bags)[:, -1].item() for p in (False, True)
    )
    assert (icann, private) == (0.0, 0.75)


def test_cusum_on_a_known_series():
    # 1 query/hour for 16 h, 25/hour for 8 h, 1/hour for 16 h: P jumps 0.04 -> 1 -> 0.04
    counts = [1] * 16 + [25] * 8 + [1] * 16
    points = reference_cusum(counts, 8, 0.1, 1.0)
    assert points == [13, 23]  # S accumulates while the burst enters the 8-h window ahead
    records = pd.DataFrame(
        {
            "ts": [T0 + h * 3600 + 60 * i for h, c in enumerate(counts) for i in range(c)],
            "client": "c",
            "query": "burst.com",
            "qtype": "A",
            "rcode": "NOERROR",
            "answers": [["1.1.1.1"]] * sum(counts),
            "ttls": [[60]] * sum(counts),
        }
    )
    bags = Bags.from_records("dns", records)
    ex = DnsFeatures().fit(bags)
    row = dict(zip(ex.feature_names, ex(bags)[0].tolist()))
    assert row["hour_count_changepoints"] == 2 and row["hour_std_changepoint_gaps"] == 0
    assert row["hour_ratio_active"] == 1 and row["ip_nunique_other_domains"] == 0


def test_chunked_loops_give_the_same_result(records):
    bags = Bags.from_records("dns", records)
    draws = Resampler(2, iterations=2, rate=0.7).draw(bags, seed=2)
    whole = DnsFeatures().fit(bags)(bags, draws)
    # a budget of 3: the day pairs and the shared-address lists run in many chunks
    torch.testing.assert_close(
        DnsFeatures(chunk_records=3).fit(bags)(bags, draws), whole, rtol=0, atol=0
    )


@pytest.mark.parametrize("scale", [1, 2**60])
def test_distinct_pairs(scale):
    from alchemy_torch.features.dns import _distinct_pairs

    rng = np.random.default_rng(0)
    segment_of = torch.from_numpy(np.sort(rng.integers(0, 20, 300)))
    values = torch.from_numpy(rng.integers(-3, 4, 300) * scale)
    expected = sorted(set(zip(segment_of.tolist(), values.tolist())))
    got_segment, got_values = _distinct_pairs(segment_of, values)
    assert list(zip(got_segment.tolist(), got_values.tolist())) == expected


def test_unknown_ttls_are_not_counted():
    base = pd.DataFrame(
        {
            "ts": T0 + np.arange(4) * 60.0,
            "client": "10.0.0.1",
            "query": "a.example.com",
            "qtype": "A",
            "rcode": "NOERROR",
            "answers": [["1.2.3.4"], ["1.2.3.4"], ["1.2.3.4"], ["1.2.3.4"]],
            "ttls": [[300], [240], [180], [120]],
        }
    )
    with_unknown = base.assign(
        answers=[a + ["5.6.7.8"] for a in base.answers], ttls=[t + [-1] for t in base.ttls]
    )
    labels = pd.Series({"a.example.com": 0})
    ex = make("dns")
    names = [n for n in ex.feature_names if "ttl" in n]
    columns = [ex.feature_names.index(n) for n in names]
    plain, unknown = (
        ex.fit(bags)(bags)[0, columns]
        for bags in (Bags.from_records("dns", r, labels) for r in (base, with_unknown))
    )
    torch.testing.assert_close(plain, unknown)
    assert plain[names.index("answer_mean_ttl")] == 210.0
