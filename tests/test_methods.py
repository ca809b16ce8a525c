"""Methods: training sets with provenance, the slides' patterns, selection and filtering."""

from __future__ import annotations

import numpy as np
import pytest
from detection_helpers import small_bags, small_forest

from alchemy_torch import Resampler, features, methods
from alchemy_torch.methods import Alchemy, Vectors

K = 4


@pytest.fixture(scope="module")
def vectors() -> Vectors:
    bags = small_bags("flows")
    return Vectors.compute(features.make("flows"), bags, Resampler(option=4, iterations=K), 3)


def fit(name: str, vectors: Vectors, **options):
    options.setdefault("resampler", Resampler(option=4, iterations=K)) if "alchemy" in name else 0
    return methods.make(name, **options).fit_vectors(vectors, small_forest(), seed=0)


@pytest.mark.parametrize("name", [n for n in methods.NAMES if n != "online"])  # test_online.py
def test_training_set_provenance(name, vectors):
    m = fit(name, vectors)
    table, X = m.training_set_, m.training_vectors_
    assert len(table) == len(X) and X.shape[1] == vectors.original.shape[1]
    originals = table[table.origin == "original"]
    assert originals.owner.tolist() == list(range(len(vectors)))
    assert (originals.label.to_numpy() == vectors.labels).all()
    np.testing.assert_array_equal(X[table.origin == "original"], vectors.original)
    owned = table[table.owner >= 0]
    # every derived row carries its target's name and label
    assert (owned.target.to_numpy() == vectors.targets[owned.owner]).all()
    assert (owned.label.to_numpy() == vectors.labels[owned.owner]).all()
    pseudo = table[table.origin == "pseudo"]
    if len(pseudo):  # a pseudo row is exactly its draw's vector
        rows = np.flatnonzero(table.origin == "pseudo")
        position = {(o, i): p for p, (o, i) in enumerate(zip(vectors.owner, vectors.iteration))}
        source = [position[(o, i)] for o, i in zip(pseudo.owner, pseudo.iteration)]
        np.testing.assert_array_equal(X[rows], vectors.pseudo[source])
    scores, spread = m.score_vectors(vectors, return_spread=True)
    assert scores.shape == spread.shape == (len(vectors),) and scores.dtype == np.float64
    assert ((scores >= 0) & (scores <= 1)).all() and (spread >= 0).all()


@pytest.mark.parametrize(
    "pattern, trains_on_pseudo, ensembles, selects",
    [
        (1, True, False, False),
        (2, False, True, False),
        (3, True, True, False),
        (4, True, True, True),
    ],
)
def test_patterns_switch_what_the_slides_table_says(
    pattern, trains_on_pseudo, ensembles, selects, vectors
):
    m = fit(f"alchemy{pattern}", vectors, p_range=(0.0, 1.0), f=np.inf)
    n_pseudo = int((m.training_set_.origin == "pseudo").sum())
    assert n_pseudo == (len(vectors.pseudo) if trains_on_pseudo else 0)
    assert hasattr(m, "selection_") == selects
    _, spread = m.score_vectors(vectors, return_spread=True)
    assert (spread > 0).any() == ensembles
    # a prediction ensemble without pseudo vectors is refused, not silently degraded
    originals_only = Vectors.compute(features.make("flows"), small_bags("flows"))
    if ensembles:
        with pytest.raises(ValueError, match="none were drawn"):
            m.score_vectors(originals_only)
    else:
        np.testing.assert_array_equal(m.score_vectors(originals_only), m.score_vectors(vectors))


def test_ensemble_is_the_mean_of_original_and_pseudo_scores(vectors):
    m = fit("alchemy2", vectors)
    p = m.model_.predict_proba(vectors.pseudo)[:, 1]
    p0 = m.model_.predict_proba(vectors.original)[:, 1]
    t = 5
    members = np.r_[p0[t], p[vectors.owner == t]]
    scores, spread = m.score_vectors(vectors, return_spread=True)
    assert scores[t] == pytest.approx(members.mean()) and spread[t] == pytest.approx(members.std())
    alone = fit("alchemy2", vectors, include_original=False).score_vectors(vectors)
    assert alone[t] == pytest.approx(p[vectors.owner == t].mean())


def test_selection_range_all_regenerates_every_target_and_empty_range_none(vectors):
    every = fit("alchemy4", vectors, p_range=(0.0, 1.0), f=np.inf)
    assert every.selection_.selected.all()
    assert set(every.training_set_.query("origin == 'pseudo'").owner) == set(range(len(vectors)))
    none = fit("alchemy4", vectors, p_range=(1.0, 0.5))
    assert not none.selection_.selected.any()
    assert (none.training_set_.origin == "original").all()


def test_selection_scores_are_out_of_fold_true_class_probabilities(vectors):
    m = fit("alchemy4", vectors, p_range=(0.0, 0.9))
    sel = m.selection_
    assert ((sel.score >= 0) & (sel.score <= 1)).all()
    assert sel.selected.tolist() == (sel.score <= 0.9).tolist()
    flipped = fit("alchemy4", vectors, p_range=(0.0, 0.9), selection_score="p_malicious")
    benign = (sel.label == 0).to_numpy()
    np.testing.assert_allclose(flipped.selection_.score[benign], 1 - sel.score[benign])
    classes = fit("alchemy4", vectors, p_range=(0.0, 1.0), augment_classes=(1,))
    assert (classes.training_set_.query("origin == 'pseudo'").label == 1).all()


def test_filtering_infinite_f_keeps_all_and_tiny_f_drops_some(vectors):
    keep_all = fit("alchemy4", vectors, p_range=(0.0, 1.0), f=np.inf)
    pseudo = keep_all.training_set_.query("origin == 'pseudo'")
    assert pseudo.kept.all() and pseudo.distance.notna().all()
    strict = fit("alchemy4", vectors, p_range=(0.0, 1.0), f=0.0)
    pseudo = strict.training_set_.query("origin == 'pseudo'")
    threshold = strict.threshold_["all"]
    assert threshold == pytest.approx(pseudo.distance.mean())
    assert (~pseudo.kept).any()
    assert (pseudo.kept == (pseudo.distance <= threshold)).all()
    per_class = fit("alchemy4", vectors, p_range=(0.0, 1.0), f=0.0, pooling="per_class")
    assert set(per_class.threshold_) == {0, 1}


def test_filter_distances_come_from_the_inner_model_that_did_not_see_the_target(vectors):
    m = fit("alchemy4", vectors, p_range=(0.0, 1.0), f=np.inf)
    pseudo = m.training_set_.query("origin == 'pseudo'")
    # the original's own distance under that model is 0: re-derive one target by hand
    sel = m.selection_
    t = int(pseudo.owner.iloc[0])
    fold = sel.inner_fold[t]
    held_out = np.flatnonzero(sel.inner_fold.to_numpy() != fold)
    model = small_forest().fit(vectors.original[held_out], vectors.labels[held_out])
    rows = np.flatnonzero(vectors.owner == t)
    expect = np.abs(
        model.predict_proba(vectors.pseudo[rows])[:, 1]
        - model.predict_proba(vectors.original[[t]])[:, 1]
    )
    np.testing.assert_allclose(np.sort(pseudo[pseudo.owner == t].distance), np.sort(expect))


def test_noise_copies_scale_with_the_feature_spread(vectors):
    m = fit("noise", vectors, copies=3, scale=0.1)
    table, X = m.training_set_, m.training_vectors_
    synthetic = table.origin == "synthetic"
    assert synthetic.sum() == 3 * len(vectors)
    offset = X[synthetic] - vectors.original[table.owner[synthetic]]
    sigma = vectors.original.std(axis=0)
    assert (np.abs(offset) <= 0.1 * sigma + 1e-12).all()
    gaussian = fit("gaussian", vectors, copies=3)
    assert gaussian.training_set_.origin.eq("synthetic").sum() == 3 * len(vectors)


def test_smote_balances_the_classes_and_falls_back_with_few_malicious(vectors):
    m = fit("smote", vectors)
    labels = m.training_set_.label
    assert (labels == 1).sum() == (labels == 0).sum()
    malicious, benign = np.flatnonzero(vectors.labels == 1), np.flatnonzero(vectors.labels == 0)
    with pytest.warns(UserWarning, match="k_neighbors lowered from 5 to 2"):
        fit("smote", vectors.take(np.r_[malicious[:3], benign]))
    with pytest.warns(UserWarning, match="nothing synthesised"):
        m = fit("smote", vectors.take(np.r_[malicious[:1], benign]))
    assert (m.training_set_.origin == "original").all()


@pytest.mark.parametrize(
    "sampler", ["ADASYN", "BorderlineSMOTE", "SVMSMOTE", "RandomOverSampler", "SMOTE"]
)
def test_oversample_takes_any_over_sampler_and_maps_back_to_raw_features(sampler, vectors):
    m = fit("oversample", vectors, sampler=sampler)
    table, X = m.training_set_, m.training_vectors_
    synthetic = (table.origin == "synthetic").to_numpy()
    assert synthetic.any() and (table.label[synthetic] == 1).all()
    # standardised for the sampler, then mapped back: interpolations stay inside the
    # malicious originals' range (SVMSMOTE also extrapolates away from benign vectors)
    malicious = vectors.original[vectors.labels == 1]
    tolerance = 1e-9 * (1 + np.abs(malicious).max())
    inside = (X[synthetic] >= malicious.min(axis=0) - tolerance) & (
        X[synthetic] <= malicious.max(axis=0) + tolerance
    )
    assert inside.all() or sampler == "SVMSMOTE"
    if sampler == "RandomOverSampler":  # copies: every row is a malicious original
        gap = np.abs(X[synthetic][:, None] - malicious[None]).max(axis=2).min(axis=1)
        assert (gap <= tolerance).all()


def test_oversample_with_smote_is_the_slides_smote(vectors):
    from imblearn.over_sampling import SMOTE

    smote = fit("smote", vectors).training_vectors_
    np.testing.assert_array_equal(fit("oversample", vectors).training_vectors_, smote)
    instance = fit("oversample", vectors, sampler=SMOTE(k_neighbors=5, random_state=99))
    np.testing.assert_array_equal(instance.training_vectors_, smote)  # seeded by the fold


def test_oversample_small_folds_fall_back_like_smote(vectors):
    malicious, benign = np.flatnonzero(vectors.labels == 1), np.flatnonzero(vectors.labels == 0)
    with pytest.warns(UserWarning, match="ADASYN: 3 malicious .* n_neighbors lowered from 5 to 2"):
        fit("adasyn", vectors.take(np.r_[malicious[:3], benign]))
    with pytest.warns(UserWarning, match="ADASYN: 1 malicious .* nothing synthesised"):
        m = fit("adasyn", vectors.take(np.r_[malicious[:1], benign]))
    assert (m.training_set_.origin == "original").all()
    m = fit("oversample", vectors.take(np.r_[malicious[:1], benign]), sampler="RandomOverSampler")
    assert (m.training_set_.origin == "synthetic").any()  # copies need no neighbour


def test_oversample_without_a_neighbour_to_learn_from_trains_on_the_originals(vectors):
    # ADASYN weighs malicious targets by their benign neighbours: far from every benign
    # one, it has nothing to generate from
    far = vectors.take(np.arange(len(vectors)))
    far.original[far.labels == 1] += 1e6
    with pytest.warns(UserWarning, match="ADASYN generates nothing here .*nothing synthesised"):
        m = fit("adasyn", far)
    assert (m.training_set_.origin == "original").all()


def test_oversample_refuses_what_is_not_an_over_sampler(vectors):
    from imblearn.over_sampling import SMOTE
    from imblearn.under_sampling import RandomUnderSampler

    for sampler in (RandomUnderSampler(), "NoSuchSampler", 3):
        with pytest.raises(ValueError, match="method.sampler must be an imbalanced-learn over"):
            methods.make("oversample", sampler=sampler)
    with pytest.raises(ValueError, match="sampling_strategy"):  # a bad option is not swallowed
        fit("oversample", vectors, sampler=SMOTE(sampling_strategy="bad"))


def test_same_seed_same_training_set(vectors):
    a = fit("alchemy4", vectors)
    b = fit("alchemy4", vectors)
    np.testing.assert_array_equal(a.training_vectors_, b.training_vectors_)
    np.testing.assert_array_equal(a.score_vectors(vectors), b.score_vectors(vectors))


def test_fit_and_score_from_bags():
    bags = small_bags("flows")
    train, test = np.arange(0, 60, 2), np.arange(1, 60, 2)
    m = methods.make("alchemy3", resampler=Resampler(option=2, iterations=2))
    assert m.fit(bags[train], features.make("flows"), small_forest(), seed=0) is m
    scores = m.score(bags[test], seed=1)
    assert scores.shape == (30,) and scores.dtype == np.float64
    with pytest.raises(RuntimeError, match="not fitted"):
        methods.make("original").score(bags[test])


def test_paper_defaults_and_make():
    m = methods.make("alchemy4", kind="dns")
    assert m.resampler == Resampler(option=4, iterations=20) and m.p_range == (0.0, 0.999)
    assert m.f == 5.0 and m.pattern == 4
    assert methods.make("alchemy4", kind="flows", f=2.0).f == 2.0
    assert methods.make("alchemy1", kind="flows").resampler.option == 1
    assert isinstance(methods.make("gaussian"), methods.Noise)
    with pytest.raises(ValueError, match="unknown method 'alchemy5'; choose one of original"):
        methods.make("alchemy5")


def test_methods_rebuild_from_their_params():
    from sklearn.base import clone

    for name in methods.NAMES:
        m = methods.make(name, kind="http")
        assert type(m)(**m.get_params(deep=False)) == m
        assert clone(m) == m


def test_unlabelled_or_one_class_training_sets_are_refused(vectors):
    unlabelled = vectors.take(np.arange(len(vectors)))
    unlabelled.labels[0] = -1
    with pytest.raises(ValueError, match="1 training targets are unlabelled"):
        fit("original", unlabelled)
    benign = vectors.take(np.flatnonzero(vectors.labels == 0))
    with pytest.raises(ValueError, match="one class only"):
        fit("original", benign)


def test_bad_options_are_one_line_errors():
    with pytest.raises(ValueError, match="pattern must be one of"):
        Alchemy(pattern=5)
    with pytest.raises(ValueError, match="pooling must be one of"):
        Alchemy(pooling="per_target")
    with pytest.raises(ValueError, match="distribution must be one of"):
        methods.make("noise", distribution="laplace")
