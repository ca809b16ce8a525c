"""cross_validate: target-level folds, no leakage, shared draws, metrics and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from detection_helpers import small_bags, small_forest
from sklearn.base import BaseEstimator, ClassifierMixin

from alchemy_torch import Resampler, evaluation, features, methods, models
from alchemy_torch.evaluation import FoldError, detection_metrics, fold_splits, tpr_at_fpr
from alchemy_torch.features.dns import DnsFeatures
from alchemy_torch.features.flows import FlowFeatures
from alchemy_torch.io.schema import KINDS
from alchemy_torch.models.setnet import SetNet

FAST = Resampler(option=4, iterations=3)


def alchemy4(**options):
    return methods.make("alchemy4", resampler=FAST, p_range=(0.0, 0.99), **options)


def run(bags, method, model=None, extractor=None, **options):
    extractor = extractor or features.make(bags.kind)
    options.setdefault("folds", 3)
    return evaluation.cross_validate(bags, extractor, method, model or small_forest(), **options)


def test_one_row_per_fold_and_every_target_scored_once_per_repeat():
    bags = small_bags("flows")
    res = run(bags, alchemy4(), repeats=2)
    assert list(zip(res.repeat, res.fold)) == [(r, f) for r in range(2) for f in range(3)]
    for column in ("roc_auc", "pr_auc", "tpr_at_1pct_fpr"):
        assert res[column].between(0, 1).all()
    assert (res.train_original + res.test_targets == len(bags)).all()
    assert (res.train_pseudo_kept + res.train_filtered <= res.train_original * 3).all()
    assert (res.regenerated_targets <= res.train_original).all()
    assert res.fit_epochs.isna().all()  # a forest does not train by epochs
    scores = res.attrs["scores"]
    for _, one in scores.groupby("repeat"):
        assert sorted(one.target) == sorted(bags.targets)
    by_target = scores[scores.repeat == 0].set_index("target")
    assert (by_target.label.reindex(bags.targets).to_numpy() == bags.labels.numpy()).all()
    fold0 = scores.query("repeat == 0 and fold == 0")
    assert res.roc_auc[0] == pytest.approx(detection_metrics(fold0.label, fold0.score)["roc_auc"])
    fits = res.attrs["fits"]
    assert len(fits) == 6 and "selection" in fits[0] and "threshold" in fits[0]


def test_same_seed_same_metrics_and_another_seed_differs():
    bags = small_bags("flows")
    a, b = run(bags, alchemy4(), seed=5), run(bags, alchemy4(), seed=5)
    pd.testing.assert_frame_equal(a.filter(regex="auc|tpr|train"), b.filter(regex="auc|tpr|train"))
    c = run(bags, alchemy4(), seed=6)
    assert not a.attrs["scores"].score.equals(c.attrs["scores"].score)


def test_repeats_reseed_the_model_and_say_when_grouped_folds_repeat(caplog):
    bags = small_bags("flows")
    # consecutive groups of 3, 4, 5, ... targets: every group has its own class mix, which
    # leaves StratifiedGroupKFold nothing to shuffle
    groups = np.searchsorted(np.cumsum(np.arange(3, 30)), np.arange(len(bags)), side="right")
    res = run(bags, methods.make("original"), folds=2, repeats=2, groups=groups)
    scores = res.attrs["scores"].pivot(index="target", columns="repeat", values="score")
    folds = res.attrs["scores"].pivot(index="target", columns="repeat", values="fold")
    assert (folds[0] == folds[1]).all(), "this grouping should fix the folds"
    assert "repeat 1 has the folds of repeat 0" in caplog.text
    assert not np.allclose(scores[0], scores[1]), "repeat 1 must train another seeded forest"
    caplog.clear()
    run(bags, methods.make("original"), folds=2, repeats=2)
    assert "has the folds of repeat" not in caplog.text


class UnseededModel(BaseEstimator, ClassifierMixin):
    """A model without random_state: cross_validate must use it as given."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-X[:, 0] / (1 + np.abs(X[:, 0]).max())))
        return np.stack([1 - p, p], 1)


def test_a_model_without_random_state_is_used_as_given():
    # set_params(random_state=...) would raise on it
    res = run(small_bags("flows"), methods.make("original"), model=UnseededModel(), repeats=2)
    assert res.roc_auc.notna().all()


class RecomputedFlows(FlowFeatures):
    """Flow features treated as if they had corpus context: recomputed in every fold."""

    corpus_context = True


def test_shared_draws_give_the_same_metrics_as_recomputing_per_fold():
    bags = small_bags("flows")
    shared = run(bags, alchemy4(), repeats=2)
    per_fold = run(bags, alchemy4(), extractor=RecomputedFlows(), repeats=2)
    columns = ["roc_auc", "pr_auc", "train_pseudo_kept", "train_filtered"]
    pd.testing.assert_frame_equal(shared[columns], per_fold[columns])
    pd.testing.assert_frame_equal(shared.attrs["scores"], per_fold.attrs["scores"])


# ---------------------------------------------------------------------- leakage spies
class SpyDns(DnsFeatures):
    """Records the targets every fit sees and which targets produced every vector."""

    fitted_on: list = []
    produced: dict = {}

    def fit(self, bags):
        SpyDns.fitted_on.append(set(bags.targets))
        return super().fit(bags)

    def __call__(self, bags, draws=None):
        out = super().__call__(bags, draws)
        owner = np.arange(len(bags)) if draws is None else draws.owner.numpy()
        for row, target in zip(out.numpy(), bags.targets[owner]):
            SpyDns.produced.setdefault(row.tobytes(), set()).add(target)
        return out


class SpyForest(ClassifierMixin, BaseEstimator):
    """A small forest that records every matrix it is fitted on."""

    fits: list = []

    def __init__(self, random_state=0):
        self.random_state = random_state

    def fit(self, X, y):
        SpyForest.fits.append(np.array(X))
        self.forest_ = small_forest(self.random_state).fit(X, y)
        self.classes_ = self.forest_.classes_
        return self

    def predict_proba(self, X):
        return self.forest_.predict_proba(X)


class SpyEpochForest(SpyForest):
    """Trains by epochs (method=online): every epoch's fresh rows count as a fit."""

    def fit(self, X, y, groups=None, original=None, epoch_rows=None):
        for epoch in range(2):
            SpyForest.fits.append(epoch_rows(epoch)[0].numpy())
        return super().fit(X, y)


@pytest.mark.parametrize("name", ["alchemy4", "smote", "online"])
def test_no_test_target_reaches_any_fit(name):
    SpyDns.fitted_on, SpyDns.produced, SpyForest.fits = [], {}, []
    bags = small_bags("dns")
    method = {"alchemy4": alchemy4(), "online": methods.make("online", resampler=FAST)}.get(
        name, methods.make(name)
    )
    spy = SpyEpochForest() if name == "online" else SpyForest()
    res = run(bags, method, model=spy, extractor=SpyDns(), folds=3)
    scores = res.attrs["scores"]
    tests = [set(scores.query("fold == @f").target) for f in range(3)]
    assert len(SpyDns.fitted_on) == 3
    for fold, seen in enumerate(SpyDns.fitted_on):
        assert seen.isdisjoint(tests[fold]) and len(seen) == len(bags) - len(tests[fold])
    per_fold = len(SpyForest.fits) // 3
    assert per_fold * 3 == len(SpyForest.fits)
    assert per_fold == {"alchemy4": 6, "online": 3}.get(name, 1)
    for i, X in enumerate(SpyForest.fits):
        sources = set().union(*(SpyDns.produced.get(row.tobytes(), set()) for row in X))
        assert sources, "the spy must recognise the originals it produced"
        assert sources.isdisjoint(tests[i // per_fold]), f"fit {i} saw a test target"


@pytest.mark.parametrize("name", ["alchemy4", "smote"])
def test_no_test_target_reaches_any_fit_of_a_transfer(name):
    SpyDns.fitted_on, SpyDns.produced, SpyForest.fits = [], {}, []
    bags = small_bags("dns")
    train, test = bags[np.arange(0, 40)], bags[np.arange(30, 60)]  # 10 targets on both sides
    method = alchemy4() if name == "alchemy4" else methods.make(name)
    res = evaluation.transfer(train, test, SpyDns(), method, SpyForest(), repeats=2)
    tested = set(res.attrs["scores"].target)
    assert tested == set(bags.targets[40:]) and set(res.attrs["dropped"]) == set(
        bags.targets[30:40]
    )
    assert (res.test_targets == 20).all() and list(res.repeat) == [0, 1]
    assert SpyDns.fitted_on == [set(train.targets)] * 2
    assert len(SpyForest.fits) == 2 * (6 if name == "alchemy4" else 1)
    for i, X in enumerate(SpyForest.fits):
        sources = set().union(*(SpyDns.produced.get(row.tobytes(), set()) for row in X))
        assert sources and sources <= set(train.targets), f"fit {i} saw a test target"


def test_transfer_repeats_vary_draws_and_models_and_need_both_classes_on_each_side():
    bags = small_bags("flows")
    train, test = bags[np.arange(0, 30)], bags[np.arange(30, 60)]
    res = evaluation.transfer(
        train, test, features.make("flows"), alchemy4(), small_forest(), repeats=2, seed=3
    )
    scores = res.attrs["scores"].pivot(index="target", columns="repeat", values="score")
    assert not np.allclose(scores[0], scores[1])
    again = evaluation.transfer(
        train, test, features.make("flows"), alchemy4(), small_forest(), repeats=2, seed=3
    )
    pd.testing.assert_frame_equal(res.attrs["scores"], again.attrs["scores"])
    benign = np.flatnonzero(bags.labels.numpy() == 0)
    with pytest.raises(ValueError, match="the test side holds 0 malicious and .* both classes"):
        evaluation.transfer(
            train,
            bags[benign[-5:]],
            features.make("flows"),
            methods.make("original"),
            small_forest(),
        )


class SpySetNet(SetNet):
    """Records the targets whose records every fit_bags and every epoch's draws hold."""

    seen: list = []
    fresh: list = []

    def fit_bags(self, bags, X=None, fixed=None, fixed_X=None, epoch_draws=None):
        fixed_owners = [] if fixed is None else fixed.owner.numpy()
        SpySetNet.seen.append(set(bags.targets) | set(bags.targets[fixed_owners]))
        SpySetNet.fresh.append(epoch_draws is not None)

        def spied(epoch):
            draws, x = epoch_draws(epoch)
            SpySetNet.seen[-1] |= set(bags.targets[draws.owner.numpy()])
            return draws, x

        return super().fit_bags(bags, X, fixed, fixed_X, epoch_draws and spied)


@pytest.mark.parametrize("name", ["online", "original"])
def test_no_test_target_reaches_setnet(name):
    SpySetNet.seen, SpySetNet.fresh = [], []
    bags = small_bags("flows", n_targets=30)
    method = methods.make(name, **({"resampler": FAST} if name == "online" else {}))
    res = run(bags, method, model=SpySetNet(max_epochs=2, device="cpu"), folds=3)
    scores = res.attrs["scores"]
    assert SpySetNet.fresh == [name == "online"] * 3  # original: whole bags, no fresh draws
    for fold, seen in enumerate(SpySetNet.seen):
        test = set(scores.query("fold == @fold").target)
        assert seen and seen.isdisjoint(test) and len(seen) == len(bags) - len(test)
    assert res.roc_auc.between(0, 1).all()


def test_groups_keep_each_group_on_one_side():
    bags = small_bags("flows")
    groups = np.arange(len(bags)) % 10  # ten 'captures'
    res = run(bags, methods.make("original"), groups=groups)
    scores = res.attrs["scores"].set_index("target").reindex(bags.targets)
    for g in range(10):
        assert scores.fold[groups == g].nunique() == 1
    named = pd.Series(groups, index=bags.targets).iloc[::-1]  # by target name, any order
    res2 = run(bags, methods.make("original"), groups=named)
    pd.testing.assert_frame_equal(res.attrs["scores"], res2.attrs["scores"])


#: online trains by epochs and setnet reads records: tests/test_online.py runs them together;
#: oversample's default sampler is SMOTE: it runs here as smote
VECTOR_METHODS = [name for name in methods.NAMES if name not in ("online", "oversample")]
VECTOR_MODELS = [name for name in models.NAMES if name != "setnet"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", VECTOR_MODELS)
@pytest.mark.parametrize("name", VECTOR_METHODS)
def test_every_model_and_method_runs_on_every_kind(kind, model, name):
    method = methods.make(name, **({"resampler": FAST} if "alchemy" in name else {}))
    options = {"dnn": {"max_epochs": 2}, "rf": {"n_estimators": 10}}.get(model, {})
    res = run(small_bags(kind, n_targets=30), method, models.make(model, **options), folds=2)
    assert len(res) == 2 and res.roc_auc.between(0, 1).all()


@pytest.mark.parametrize("name", ["smote", "alchemy3"])
def test_setnet_with_a_method_on_vectors_and_online_with_rf_are_one_line_errors(name):
    bags = small_bags("flows", n_targets=30)
    method = methods.make(name, **({"resampler": FAST} if "alchemy" in name else {}))
    expected = "SetNet reads a bag's records and .* adds feature vectors: use method=original"
    with pytest.raises(ValueError, match=expected):
        run(bags, method, models.make("setnet"), folds=2)
    with pytest.raises(ValueError, match="RandomForest does not: use model=dnn or model=setnet"):
        run(bags, methods.make("online", resampler=FAST), models.make("rf"), folds=2)


def test_dnn_same_seed_same_metrics():
    bags = small_bags("flows")
    dnn = models.make("dnn", max_epochs=3)
    a, b = run(bags, alchemy4(), dnn), run(bags, alchemy4(), dnn)
    pd.testing.assert_series_equal(a.roc_auc, b.roc_auc)


def test_metrics():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.7, 0.6, 0.9])
    m = detection_metrics(labels, scores)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert tpr_at_fpr(labels, scores, 0.0) == 0.5 and tpr_at_fpr(labels, scores, 0.34) == 1.0


def test_groups_that_cannot_fill_the_folds_are_a_one_line_error():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    one_capture_per_class = np.where(labels == 1, "sandbox", "office")
    with pytest.raises(
        FoldError,
        match=r"from 1 group\(s\) and benign ones from 1; .*hold both classes: set groups=None",
    ):
        fold_splits(labels, 2, seed=0, groups=one_capture_per_class)
    two_malicious_captures = np.array(["a", "a", "b", "b", "c", "d", "e", "f", "g", "h"])
    with pytest.raises(
        FoldError, match=r"from 2 group\(s\) .* lower folds= to at most 2 or set groups=None"
    ):
        fold_splits(labels, 3, seed=0, groups=two_malicious_captures)
    for train, test in fold_splits(labels, 2, seed=0, groups=two_malicious_captures):
        assert set(labels[test]) == {0, 1}
        assert not set(two_malicious_captures[train]) & set(two_malicious_captures[test])


def test_bad_input_is_a_one_line_error():
    bags = small_bags("flows")
    with pytest.raises(ValueError, match=r"bags are 'flows' .* features.make\('flows'\)"):
        run(bags, methods.make("original"), extractor=features.make("http"))
    few = bags[np.r_[np.flatnonzero(bags.labels == 1)[:2], np.flatnonzero(bags.labels == 0)]]
    with pytest.raises(ValueError, match="2 malicious .* lower folds= to at most 2"):
        run(few, methods.make("original"))
    unlabelled = bags[np.arange(len(bags))]
    unlabelled.labels[0] = -1
    with pytest.raises(ValueError, match="1 targets are unlabelled"):
        run(unlabelled, methods.make("original"))
    with pytest.raises(FoldError, match="need folds= >= 2"):
        run(bags, methods.make("original"), folds=1)
    with pytest.raises(TypeError, match="model must have fit and predict_proba"):
        run(bags, methods.make("original"), model=object())
