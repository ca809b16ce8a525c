"""method=online: fresh draws every epoch, their seeds, what is refused, and the app."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from app_helpers import job_config
from detection_helpers import small_bags, small_forest
from sklearn.base import BaseEstimator, ClassifierMixin

from alchemy_torch import Resampler, evaluation, features, methods, models
from alchemy_torch.app import run_cell
from alchemy_torch.io.schema import KINDS
from alchemy_torch.methods import Online, Vectors

FAST = Resampler(option=4, iterations=3)


def online(**options) -> Online:
    return methods.make("online", resampler=FAST, **options)


class EpochSpy(ClassifierMixin, BaseEstimator):
    """Trains by epochs: asks for ``epochs`` epochs of fresh rows, keeps them, fits a small
    forest on the originals."""

    def __init__(self, epochs=3, random_state=0):
        self.epochs, self.random_state = epochs, random_state

    def fit(self, X, y, groups=None, original=None, epoch_rows=None):
        self.groups_, self.original_ = groups, original
        self.fresh_ = [epoch_rows(e) for e in range(self.epochs)] if epoch_rows else []
        rows = np.ones(len(y), bool) if original is None else original
        self.forest_ = small_forest(self.random_state).fit(X[rows], y[rows])
        self.classes_ = self.forest_.classes_
        return self

    def predict_proba(self, X):
        return self.forest_.predict_proba(X)


@pytest.fixture(scope="module")
def vectors() -> Vectors:
    bags = small_bags("flows")
    return Vectors.compute(features.make("flows"), bags, FAST, seed=3)


def test_every_epoch_draws_fresh_vectors_of_the_training_targets(vectors):
    train = np.arange(0, len(vectors), 2)
    part = vectors.take(train)
    fitted = online(epoch_iterations=2).fit_vectors(part, EpochSpy(), seed=1)
    fresh = fitted.model_.fresh_
    (x0, y0, g0), (x1, _, _) = fresh[0], fresh[1]
    assert x0.shape == (2 * len(part), part.original.shape[1])  # 2 per target and epoch
    assert not np.allclose(x0.numpy(), x1.numpy()), "two epochs must see other draws"
    np.testing.assert_array_equal(y0.cpu().numpy(), part.labels[g0.cpu().numpy()])
    again = online(epoch_iterations=2).fit_vectors(part, EpochSpy(), seed=1).model_.fresh_[0]
    np.testing.assert_array_equal(x0.numpy(), again[0].numpy())  # one seed per epoch
    other = online(epoch_iterations=2).fit_vectors(part, EpochSpy(), seed=2).model_.fresh_[0]
    assert not np.allclose(x0.numpy(), other[0].numpy())
    # a fresh vector is the extractor's vector of a draw of its own target's records
    source = part.source
    draws = online(epoch_iterations=2).epoch_resampler(0).draw(source.bags(), 0)
    assert set(np.unique(draws.owner.numpy())) == set(range(len(part)))
    table = fitted.training_set_
    assert (table.origin == "pseudo").sum() == 3 * 2 * len(part)
    assert sorted(table.query("origin == 'pseudo'").iteration.unique()) == list(range(6))
    assert list(fitted.epochs_.epoch) == [0, 1, 2] and fitted.training_vectors_ is None
    # the fixed draws validate: the model gets originals and fixed pseudo vectors as rows
    spy = fitted.model_
    assert spy.original_.sum() == len(part) and (~spy.original_).sum() == len(part.pseudo)


def test_the_source_redraws_exactly_the_pseudo_vectors(vectors):
    part = vectors.take(np.array([5, 1, 9, 2]))
    source = part.source
    assert list(source.bags().targets) == list(part.targets)
    again = features.make("flows")(source.bags(), source.draws())
    np.testing.assert_allclose(again.numpy(), part.pseudo)


def test_pattern_4_selects_once_and_filters_every_epoch(vectors):
    fitted = online(pattern=4, f=0.0, p_range=(0.0, 1.0)).fit_vectors(vectors, EpochSpy(), 0)
    pseudo = fitted.training_set_.query("origin == 'pseudo'")
    assert (~pseudo.kept).any() and pseudo.kept.any() and pseudo.distance.notna().all()
    assert (
        fitted.epochs_.threshold.notna().all()
        and (fitted.epochs_.kept < fitted.epochs_.drawn).all()
    )
    kept_rows = [len(x) for x, _, _ in fitted.model_.fresh_]
    assert kept_rows == fitted.epochs_.kept.tolist()
    assert "selection_" in vars(fitted) and "threshold_" not in vars(fitted)


def test_a_rate_schedule_moves_the_rate_across_epochs():
    method = online(rate_schedule=(0.2, 0.8, 4))
    rates = [method.epoch_resampler(e).rate for e in range(6)]
    np.testing.assert_allclose(rates, [0.2, 0.4, 0.6, 0.8, 0.8, 0.8])
    assert method.epoch_resampler(0).option == 2 and online().epoch_resampler(0).option == 4
    with pytest.raises(ValueError, match="rate_schedule must be"):
        online(rate_schedule=(0.0, 0.5, 3))
    with pytest.raises(ValueError, match="epoch_iterations must be"):
        online(epoch_iterations=0)


def test_models_that_do_not_train_by_epochs_are_refused_in_one_line(vectors):
    with pytest.raises(ValueError, match="RandomForest does not: use model=dnn or model=setnet"):
        online().fit_vectors(vectors, models.make("rf"), 0)
    sourceless = Vectors(**{**vars(vectors), "source": None})
    with pytest.raises(ValueError, match="give it vectors from Vectors.compute"):
        online().fit_vectors(sourceless, EpochSpy(), 0)
    with pytest.raises(ValueError, match="use method.pattern=3"):
        online(pattern=4).fit_vectors(vectors, models.make("setnet"), 0)


def test_paper_defaults_apply_to_online():
    method = methods.make("online", kind="http")
    assert method.resampler == Resampler(option=4, iterations=20) and method.pattern == 3


def test_same_seed_same_dnn_and_another_seed_differs():
    bags = small_bags("flows")
    dnn = models.make("dnn", max_epochs=3, device="cpu")

    def scores(seed):
        res = evaluation.cross_validate(
            bags, features.make("flows"), online(), dnn, folds=2, seed=seed
        )
        return res.attrs["scores"].score

    a = scores(4)
    pd.testing.assert_series_equal(a, scores(4))
    assert not np.allclose(a, scores(5))


@pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", ["dnn", "setnet"])
def test_online_runs_through_the_app_and_cross_validate(tmp_path, kind, model):
    overrides = [f"data=synthetic-{kind}", "data.dataset.n_targets=40", "method=online"]
    overrides += ["method.resampler.iterations=2", f"model={model}", "model.max_epochs=2"]
    overrides += ["evaluation.folds=2", "evaluation.repeats=1", "device=cpu", "progress=false"]
    results = run_cell(job_config(overrides, tmp_path))
    assert results["status"] == "ok" and results["cell"]["method"] == "online"
    assert 0 <= results["summary"]["roc_auc_mean"] <= 1
    assert all(fold["train_pseudo_kept"] > 0 for fold in results["folds"])
    assert all(1 <= fold["fit_epochs"] <= 2 for fold in results["folds"])


@pytest.mark.filterwarnings("ignore:DnsFeatures. no geoip")
@pytest.mark.parametrize("kind", KINDS)
def test_setnet_trains_on_whole_bags_with_method_original_through_the_app(tmp_path, kind):
    overrides = [f"data=synthetic-{kind}", "data.dataset.n_targets=40", "method=original"]
    overrides += ["model=setnet", "model.max_epochs=2", "model.with_features=true"]
    overrides += ["evaluation.folds=2", "evaluation.repeats=1", "device=cpu", "progress=false"]
    results = run_cell(job_config(overrides, tmp_path))
    assert results["status"] == "ok" and results["cell"]["model"] == "setnet"
    assert 0 <= results["summary"]["roc_auc_mean"] <= 1
    assert all(fold["train_pseudo_kept"] == 0 for fold in results["folds"])
