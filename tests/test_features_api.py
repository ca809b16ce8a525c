"""The extractors' public contract, for every kind: constructor arguments are the configuration
(rebuild, scikit-learn clone, Hydra ``_target_``), one memory knob that never changes results,
declared behaviours that hold under resampling, and per-Bags work done once."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.base import clone

from alchemy_torch import Bags, Resampler, datasets
from alchemy_torch.features import EXTRACTORS, Behaviour, Segments, make

pytestmark = pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip:UserWarning")

GEOIP_CSV = str(Path(__file__).parent / "fixtures" / "geoip_tiny.csv")
#: kind -> non-default options (ints where floats are the default: what Hydra passes)
OPTIONS = {
    "flows": {
        "bin_seconds": 60,
        "cv_instead_of_std": True,
        "matching": "5tuple",
        "match_seconds": 5,
        "disclosure_autocorr": True,
        "autocorr_lags": 3,
    },
    "http": {"aggregation": "bartos", "bins": 4, "use_referrer": False},
    "dns": {"geoip": GEOIP_CSV, "window_hours": 6, "short_life_hours": 48, "name_scope": "fqdn"},
}
TARGETS = {kind: path.replace(":", ".") for kind, path in EXTRACTORS.items()}


def extractor_class(kind: str) -> type:
    module, name = EXTRACTORS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def small_bags(kind: str, n_targets: int = 30, seed: int = 2) -> Bags:
    records, labels = datasets.synthetic(kind, n_targets=n_targets, seed=seed)
    return Bags.from_records(kind, records, labels)


def features_of(extractor, bags: Bags, draws=None) -> torch.Tensor:
    return extractor.fit(bags)(bags, draws)


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
@pytest.mark.parametrize("configured", [False, True], ids=["defaults", "options"])
def test_params_are_the_constructor_arguments(kind, configured):
    cls = extractor_class(kind)
    options = OPTIONS[kind] if configured else {}
    x = cls(**options)
    params = x.get_params()
    assert all(params[name] is value for name, value in options.items()), "stored verbatim"
    assert set(params) >= {"chunk_records", "dtype"}
    assert cls(**params) == x and eval(repr(x), {cls.__name__: cls}) == x
    assert cls(**{**params, "chunk_records": 5}) != x


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_clone_gives_an_equal_unfitted_extractor(kind):
    x = extractor_class(kind)(**OPTIONS[kind]).fit(small_bags(kind, 10))
    copy = clone(x)
    assert copy == x and copy is not x
    assert not [name for name in vars(copy) if name.endswith("_")], "fitted state is not cloned"


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_hydra_target_config_gives_the_same_features(kind):
    bags = small_bags(kind)
    config = OmegaConf.create({"_target_": TARGETS[kind], **OPTIONS[kind]})
    from_config = instantiate(config)
    assert type(from_config) is extractor_class(kind)
    draws = Resampler(2, iterations=2).draw(bags, seed=1)
    direct = extractor_class(kind)(**OPTIONS[kind])
    assert torch.equal(features_of(from_config, bags, draws), features_of(direct, bags, draws))


def test_resampler_from_a_hydra_list_draws_like_the_tuple():
    bags = small_bags("flows", 10)
    config = OmegaConf.create(
        {"_target_": "alchemy_torch.Resampler", "option": 4, "rate_range": [0.3, 0.6]}
    )
    from_config = instantiate(config).draw(bags, seed=3)
    direct = Resampler(4, rate_range=(0.3, 0.6)).draw(bags, seed=3)
    assert torch.equal(from_config.rows, direct.rows)
    assert torch.equal(from_config.offsets, direct.offsets)


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_dtype_by_name_or_torch_dtype(kind):
    bags = small_bags(kind, 10)
    double = features_of(make(kind), bags)
    for dtype in ("float32", torch.float32):
        single = features_of(make(kind, dtype=dtype), bags)
        assert single.dtype == torch.float32 and torch.equal(single, double.float())
    with pytest.raises(ValueError, match="dtype"):
        make(kind, dtype="float16")


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
@pytest.mark.parametrize("bad", [0, 2.5, True, "4"])
def test_bad_chunk_records(kind, bad):
    with pytest.raises(ValueError, match="chunk_records"):
        make(kind, chunk_records=bad)


# ---------------------------------------------------------------------- memory knob
@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
@pytest.mark.parametrize("configured", [False, True], ids=["defaults", "options"])
def test_a_tiny_memory_budget_changes_nothing(kind, configured, device):
    options = OPTIONS[kind] if configured else {}
    records, labels = datasets.synthetic(kind, n_targets=12, seed=4)
    out = []
    for chunk_records in (40, 10**12):
        bags = Bags.from_records(kind, records, labels).to(device)  # fresh per-Bags caches
        extractor = make(kind, chunk_records=chunk_records, **options).fit(bags)
        draws = Resampler(4, iterations=2, min_size=1).draw(bags, seed=4)
        assert len(Segments.of(bags, draws).chunks(chunk_records)) > (chunk_records < 100) * 10
        out.append([extractor(bags), extractor(bags, draws)])
    assert all(torch.equal(tiny, whole) for tiny, whole in zip(*out))


# ---------------------------------------------------------------------- behaviour
@pytest.fixture(scope="module", params=sorted(EXTRACTORS))
def resampled(request):
    """(extractor, originals, per-target mean over 20 draws at rate 0.5, draws' features, draws)."""
    kind = request.param
    bags = small_bags(kind, 80, seed=0)
    extractor = make(kind).fit(bags)
    draws = Resampler(2, iterations=20, rate=0.5).draw(bags, seed=0)
    x, xd = extractor(bags), extractor(bags, draws)
    mean = torch.zeros_like(x).index_add_(0, draws.owner, xd) / 20
    return extractor, x, mean, xd, draws


def test_centred_features_stay_unbiased_under_resampling(resampled):
    extractor, x, mean, _, _ = resampled
    bias = (mean - x).mean(0).abs() / x.std(0).clamp(min=1e-9)
    centred = [i for i, f in enumerate(extractor.features) if f.behaviour is Behaviour.CENTRED]
    assert centred
    worst = max(centred, key=lambda i: bias[i])
    assert bias[worst] < 0.1, extractor.feature_names[worst]


@pytest.mark.parametrize("resampled", ["dns"], indirect=True)  # flows and http declare none
def test_invariant_features_never_change(resampled):
    extractor, x, _, xd, draws = resampled
    invariant = [i for i, f in enumerate(extractor.features) if f.behaviour is Behaviour.INVARIANT]
    assert invariant
    for i in invariant:
        assert torch.equal(xd[:, i], x[draws.owner, i]), extractor.feature_names[i]


COUNTS = {"flows": "in_nunique_bytes", "http": "bag_count_requests", "dns": "answer_nunique_ip"}


def test_counts_are_rate_sensitive(resampled):
    extractor, x, mean, xd, draws = resampled
    name = COUNTS[extractor.kind]
    i = extractor.feature_names.index(name)
    assert extractor.features[i].behaviour is Behaviour.RATE_SENSITIVE
    assert (xd[:, i] <= x[draws.owner, i]).all() and (mean[:, i] < x[:, i]).any()


# ---------------------------------------------------------------------- per-Bags work
@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_per_record_work_is_done_once_per_bags(kind):
    bags = small_bags(kind, 20)
    extractor = make(kind).fit(bags)
    draws = Resampler(2, iterations=2).draw(bags, seed=0)
    first = extractor(bags)
    cached = dict(bags.cache)
    assert cached, "per-record values are kept on the Bags"
    again, pseudo = extractor(bags), extractor(bags, draws)
    assert set(bags.cache) == set(cached)
    assert all(bags.cache[key] is value for key, value in cached.items())
    bags.cache.clear()
    assert torch.equal(again, first) and torch.equal(extractor(bags, draws), pseudo)
