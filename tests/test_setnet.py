"""setnet: shapes on empty, one-record and large draws; permutation invariance; seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_flows
from detection_helpers import small_bags

from alchemy_torch import Bags, Resampler, models
from alchemy_torch.models.setnet import SetModule, SetNet, record_inputs
from alchemy_torch.resample import Draws

FAST = dict(max_epochs=2, device="cpu")


def draws_of(bags: Bags, lengths: list[int]) -> Draws:
    """Draws of target 0 holding its first ``lengths[i]`` records (0 = an empty draw)."""
    lengths_t = torch.as_tensor(lengths)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = lengths_t.cumsum(0)
    rows = torch.cat([torch.arange(n) for n in lengths]) if sum(lengths) else offsets[:0]
    owner = torch.zeros(len(lengths), dtype=torch.int64)
    return Draws(owner, offsets, rows, torch.arange(len(lengths)))


@pytest.fixture(scope="module")
def fitted() -> tuple[SetNet, Bags]:
    bags = small_bags("flows")
    return models.make("setnet", **FAST).fit_bags(bags), bags


@pytest.mark.parametrize("pooling", ["meanmax", "attention"])
def test_module_shapes_on_empty_one_record_and_large_draws(pooling):
    module = SetModule(n_numeric=4, n_categorical=2, buckets=8, pooling=pooling).eval()
    lengths = torch.tensor([0, 1, 5000, 0])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    numeric = torch.randn(int(lengths.sum()), 4)
    categorical = torch.randint(0, 8, (int(lengths.sum()), 2))
    with torch.inference_mode():
        out = module(numeric, categorical, offsets)
    assert out.shape == (4,) and torch.isfinite(out).all()
    assert out[0] == out[3], "two empty draws pool alike"
    with torch.inference_mode():
        none = module(numeric[:0], categorical[:0], torch.zeros(3, dtype=torch.int64))
    assert none.shape == (2,) and torch.isfinite(none).all()


def test_predict_bags_scores_every_draw(fitted):
    net, bags = fitted
    n = int(bags.lengths[0])
    p = net.predict_bags(bags, draws_of(bags, [0, 1, n]))
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all() and p.dtype == np.float64
    whole = net.predict_bags(bags)
    assert whole.shape == (len(bags),) and whole[0] == pytest.approx(p[2], abs=1e-6)


@pytest.mark.parametrize("pooling", ["meanmax", "attention"])
def test_pooling_is_invariant_to_the_order_of_a_draws_records(pooling):
    module = SetModule(n_numeric=3, n_categorical=1, buckets=5, pooling=pooling).eval()
    offsets = torch.tensor([0, 7, 7, 20])
    numeric, categorical = torch.randn(20, 3), torch.randint(0, 5, (20, 1))
    order = torch.cat([torch.randperm(7), 7 + torch.randperm(13)])
    with torch.inference_mode():
        a = module(numeric, categorical, offsets)
        b = module(numeric[order], categorical[order], offsets)
    torch.testing.assert_close(a, b)


def test_the_same_records_in_another_order_score_the_same(fitted):
    net, bags = fitted
    records = random_flows(n_targets=6, n_records=300, seed=3)
    shuffled = records.sample(frac=1.0, random_state=0)
    a, b = (Bags.from_records("flows", r) for r in (records, shuffled))
    np.testing.assert_allclose(net.predict_bags(a), net.predict_bags(b))


def test_record_inputs_of_every_kind_are_finite():
    for kind in ("flows", "http", "dns"):
        bags = small_bags(kind, n_targets=20)
        numeric, categorical = record_inputs(bags, 16)
        assert numeric.shape[0] == categorical.shape[0] == bags.num_records
        assert torch.isfinite(numeric).all()
        assert categorical.min() >= 0 and categorical.max() < 16


def test_same_seed_same_model_and_with_features_widens_the_head(fitted):
    net, bags = fitted
    again = models.make("setnet", **FAST).fit_bags(bags)
    np.testing.assert_array_equal(net.predict_bags(bags), again.predict_bags(bags))
    other = models.make("setnet", random_state=1, **FAST).fit_bags(bags)
    assert not np.allclose(net.predict_bags(bags), other.predict_bags(bags))
    X = np.random.default_rng(0).normal(size=(len(bags), 7))
    joined = models.make("setnet", with_features=True, **FAST).fit_bags(bags, X=X)
    assert joined.module_.head[0].in_features == net.module_.head[0].in_features + 7
    assert joined.predict_bags(bags, X=X).shape == (len(bags),)


def test_epoch_draws_are_asked_every_epoch():
    bags = small_bags("flows", n_targets=30)
    asked = []
    resampler = Resampler(option=4, iterations=1)

    def epoch_draws(epoch):
        asked.append(epoch)
        return resampler.draw(bags, epoch), None

    models.make("setnet", max_epochs=3, validation_fraction=0.0, device="cpu").fit_bags(
        bags, epoch_draws=epoch_draws
    )
    assert asked == [0, 1, 2]


def test_feature_vectors_and_bad_options_are_refused_in_one_line():
    net = models.make("setnet")
    with pytest.raises(ValueError, match="setnet reads a bag's records.*method=original"):
        net.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="pooling must be one of"):
        models.make("setnet", pooling="sum")


@pytest.mark.gpu
def test_setnet_on_cuda_scores_like_shapes_on_cpu():
    bags = small_bags("flows")
    net = models.make("setnet", max_epochs=2, device="cuda").fit_bags(bags)
    assert net.device_.type == "cuda"
    p = net.predict_bags(bags.to("cuda"))
    assert p.shape == (len(bags),) and np.isfinite(p).all()
