"""Leakage-free, target-level cross-validation of a method with a model (METHOD.md §6), and
the transfer protocol: train on some captures, test on others.

Folds are stratified over TARGETS (with ``groups``, stratified group folds: a capture is never
on both sides). Everything fitted -- the extractor's corpus context, scalers, target selection,
filtering, the model -- sees the training targets of a fold only.

Draws and features: a target's draws depend on its own records and the repeat's seed alone
(:meth:`Vectors.compute` with ``index``). When the extractor has no corpus context (flows,
http), its vectors do too, so they are computed once per repeat for every target and sliced
per fold. An extractor with context (dns) is fitted per fold on the training targets, and the
fold's vectors are computed with it, from the same draws.

:func:`transfer` shares the per-split step (:func:`fit_and_score`) and the result
(:func:`collect`): its split is given (training bags, test bags), so the extractor is fitted on
the training bags and each side's vectors are computed with it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from alchemy_torch import resolve_device
from alchemy_torch.bags import Bags
from alchemy_torch.evaluation.metrics import detection_metrics
from alchemy_torch.methods.base import Method
from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.resample import derive_seed

__all__ = [
    "FoldError",
    "FoldRun",
    "collect",
    "cross_validate",
    "fit_and_score",
    "fit_fold",
    "fold_splits",
    "repeat_draw_seed",
    "repeat_splits",
    "scarce_training",
    "transfer",
]

log = logging.getLogger(__name__)
_DRAW_STREAM = 31  # sub-stream of the seed for the draws of a repeat
_MODEL_STREAM = 32  # sub-stream of the seed for the model of a (repeat, fold)
_SCARCITY_STREAM = 33  # sub-stream of the seed for the kept malicious targets of a fold


def _reseeded(model, seed: int):
    """A clone of ``model`` with ``random_state=seed`` when it takes one, else ``model``:
    each (repeat, fold) trains its own seeded model, so repeats vary the model as well."""
    params = model.get_params(deep=False) if hasattr(model, "get_params") else {}
    if "random_state" not in params:
        return model
    return clone(model).set_params(random_state=seed % 2**32)


def _warn_if_repeated(splits: list, seen: list, repeat: int) -> None:
    """Warn when a repeat's folds equal an earlier repeat's (StratifiedGroupKFold shuffles only
    groups with the same class mix, so few captures can fix the folds); ``seen`` collects."""
    tests = [frozenset(test.tolist()) for _, test in splits]
    key = frozenset(tests)
    if key in seen:
        log.warning(
            "repeat %d has the folds of repeat %d (grouped folds with few groups cannot be "
            "shuffled): repeats differ only in their draws and model seeds",
            repeat,
            seen.index(key),
        )
    seen.append(key)


class FoldError(ValueError):
    """The targets cannot fill the requested folds. The message names what to change as
    :func:`cross_validate`'s arguments (``folds=``, ``groups=None``)."""


def cross_validate(
    bags: Bags,
    extractor,
    method: Method,
    model,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    device: str = "auto",
    groups=None,
    progress: bool = False,
    train_malicious: int | float | None = None,
) -> pd.DataFrame:
    """One row per (repeat, fold): metrics, training-set counts and seconds.

    Columns: repeat, fold, roc_auc, pr_auc, tpr_at_1pct_fpr, test_targets, test_malicious,
    train_malicious, train_benign, train_original, train_pseudo_kept, train_filtered,
    train_synthetic, regenerated_targets, features_seconds, fit_seconds, score_seconds,
    fit_epochs (epochs trained, for a model that trains by epochs; NaN otherwise).
    ``groups``: one group per target (array in the Bags' target order, or a Series indexed by
    target name). ``progress`` logs each fold. ``seed``: the folds, the draws and the model of
    every (repeat, fold) derive from it (a model's ``random_state``, when it has one, is
    replaced by the derived seed).

    ``train_malicious``: the scarcity axis. In every (repeat, fold) keep a seeded random N of
    the fold's malicious TRAINING targets (all benign ones; the test fold is unchanged); a
    float in (0, 1) keeps that fraction. Subsets are nested over N (see
    :func:`scarce_training`), so a curve over N is paired; every method sees the same subset
    in the same (repeat, fold). ``None`` keeps all.

    ``result.attrs["scores"]``: the out-of-fold scores, one row per (repeat, target): fold,
    target, label, score, spread (std over the target's ensemble). ``result.attrs["fits"]``:
    per fold, what the method did (its training set's provenance and, for Alchemy 4, the
    selection scores and filtering threshold).
    """
    _check_inputs(bags, extractor, method, model, folds, repeats)
    bags = _on_device(bags, device)
    labels = bags.labels.cpu().numpy()
    group_of = _align_groups(groups, bags)
    resampler = _resampler_of(method)
    runs, seen_splits = [], []
    for repeat in range(repeats):
        draw_seed = repeat_draw_seed(seed, repeat)
        shared = _shared_vectors(extractor, bags, resampler, draw_seed)
        splits = repeat_splits(labels, folds, seed, repeat, group_of, train_malicious)
        _warn_if_repeated(splits, seen_splits, repeat)
        for fold, (train, test) in enumerate(splits):
            start = time.perf_counter()
            train_v, test_v = _fold_vectors(
                shared, extractor, bags, resampler, draw_seed, train, test
            )
            seconds = time.perf_counter() - start + (shared.seconds / folds if shared else 0.0)
            run = fit_and_score(method, model, train_v, test_v, seed, repeat, fold, seconds)
            runs.append(run)
            if progress:
                log.info(
                    "repeat %d fold %d/%d: ROC-AUC %.4f (%.1f s)",
                    repeat,
                    fold + 1,
                    folds,
                    run.row["roc_auc"],
                    run.seconds,
                )
    return collect(runs)


def transfer(
    train_bags: Bags,
    test_bags: Bags,
    extractor,
    method: Method,
    model,
    repeats: int = 1,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> pd.DataFrame:
    """Train on ``train_bags``, test on ``test_bags`` (other captures): one row per repeat,
    with :func:`cross_validate`'s columns (``fold`` is 0).

    Everything fitted (the extractor's corpus context, the method, the model) sees the
    training targets only. A target present on both sides is dropped from the test side:
    ``result.attrs["dropped"]`` lists them. Repeats vary the draws and the model's seed
    (derived from ``seed`` as in :func:`cross_validate`); the split itself is fixed.
    ``attrs["scores"]`` and ``attrs["fits"]`` as in :func:`cross_validate`.
    """
    for bags in (train_bags, test_bags):
        _check_objects(bags, extractor, method, model)
    if repeats < 1:
        raise ValueError(f"need repeats= >= 1, got {repeats}")
    both = np.isin(test_bags.targets, train_bags.targets)
    dropped = list(test_bags.targets[both])
    if dropped:
        log.warning(
            "%d test target(s) are training targets too: dropped from the test side", len(dropped)
        )
        test_bags = test_bags[np.flatnonzero(~both)]
    for side, bags in (("training", train_bags), ("test", test_bags)):
        _check_both_classes(side, bags.labels.cpu().numpy())
    train_bags, test_bags = _on_device(train_bags, device), _on_device(test_bags, device)
    resampler = _resampler_of(method)
    runs = []
    for repeat in range(repeats):
        draw_seed = repeat_draw_seed(seed, repeat)
        start = time.perf_counter()
        fitted_extractor = clone(extractor).fit(train_bags)
        train_v, test_v = (
            Vectors.compute(fitted_extractor, bags, resampler, draw_seed)
            for bags in (train_bags, test_bags)
        )
        seconds = time.perf_counter() - start
        run = fit_and_score(method, model, train_v, test_v, seed, repeat, 0, seconds)
        runs.append(run)
        if progress:
            log.info(
                "repeat %d/%d: ROC-AUC %.4f (%.1f s)",
                repeat + 1,
                repeats,
                run.row["roc_auc"],
                run.seconds,
            )
    result = collect(runs)
    result.attrs["dropped"] = dropped
    return result


@dataclass
class FoldRun:
    """What one (repeat, fold) gave: its metrics row, its out-of-fold scores (one row per test
    target) and what the fitted method did."""

    row: dict
    scores: pd.DataFrame
    fit: dict

    @property
    def seconds(self) -> float:
        return sum(self.row[f"{step}_seconds"] for step in ("features", "fit", "score"))


def scarce_training(
    train: np.ndarray, labels: np.ndarray, train_malicious: int | float | None, seed: int
) -> np.ndarray:
    """``train`` (target positions) with only ``train_malicious`` of its malicious targets.

    The kept ones are the first N of one seeded permutation of the fold's malicious training
    targets, so the subsets are nested over N for a given ``seed`` (the 5 kept at N=5 are
    among the 10 kept at N=10). A float in (0, 1) is a fraction of them (at least one); N
    above what the fold holds keeps all, with a warning. Benign targets are all kept; the
    order of ``train`` is kept.
    """
    if train_malicious is None:
        return train
    malicious = train[labels[train] == 1]
    wanted = _count_of(train_malicious, len(malicious))
    if wanted >= len(malicious):
        if wanted > len(malicious):
            log.warning(
                "train_malicious=%s but the fold holds %d malicious training targets: all kept",
                train_malicious,
                len(malicious),
            )
        return train
    order = np.random.default_rng(seed % 2**63).permutation(len(malicious))
    dropped = malicious[order[wanted:]]
    return train[~np.isin(train, dropped)]


def _count_of(train_malicious: int | float, available: int) -> int:
    """How many malicious training targets ``train_malicious`` asks for out of ``available``."""
    if isinstance(train_malicious, bool) or not isinstance(train_malicious, (int, float)):
        raise ValueError(
            f"train_malicious must be a count >= 1 or a fraction in (0, 1), got {train_malicious!r}"
        )
    if isinstance(train_malicious, float) and 0 < train_malicious < 1:
        return max(1, round(train_malicious * available))
    if train_malicious < 1 or train_malicious != int(train_malicious):
        raise ValueError(
            f"train_malicious must be a count >= 1 or a fraction in (0, 1), got {train_malicious!r}"
        )
    return int(train_malicious)


@dataclass
class _Shared:
    """Vectors of every target for one repeat (an extractor without corpus context)."""

    vectors: Vectors
    seconds: float


def _shared_vectors(extractor, bags: Bags, resampler, draw_seed: int) -> _Shared | None:
    """Every target's vectors of a repeat, computed once and sliced per fold, when the
    extractor has no corpus context; None when it must be fitted per fold."""
    if extractor.corpus_context:
        return None
    start = time.perf_counter()
    vectors = Vectors.compute(extractor, bags, resampler, draw_seed)
    return _Shared(vectors, time.perf_counter() - start)


def _fold_vectors(shared, extractor, bags: Bags, resampler, draw_seed: int, train, test):
    """(train, test) :class:`Vectors` of a fold: sliced from ``shared``, or from an extractor
    fitted on the fold's training targets alone (same draws either way)."""
    if shared is not None:
        return shared.vectors.take(train), shared.vectors.take(test)
    fitted_extractor = clone(extractor).fit(bags[train])
    return tuple(
        Vectors.compute(fitted_extractor, bags, resampler, draw_seed, index=part)
        for part in (train, test)
    )


def repeat_draw_seed(seed: int, repeat: int) -> int:
    """The draw seed of ``repeat``: every target's draws in that repeat derive from it."""
    return derive_seed(seed, repeat, _DRAW_STREAM)


def repeat_splits(
    labels: np.ndarray,
    folds: int,
    seed: int,
    repeat: int,
    groups=None,
    train_malicious: int | float | None = None,
) -> list:
    """[(train, test)] target positions of ``repeat``'s folds, as :func:`cross_validate`
    makes them from ``seed`` (training sets reduced by :func:`scarce_training`)."""
    splits = fold_splits(labels, folds, seed=derive_seed(seed, repeat), groups=groups)
    return [
        (
            scarce_training(
                train, labels, train_malicious, derive_seed(seed, repeat, fold, _SCARCITY_STREAM)
            ),
            test,
        )
        for fold, (train, test) in enumerate(splits)
    ]


def fit_fold(method: Method, model, train_v: Vectors, seed: int, repeat: int, fold: int):
    """A clone of ``method`` fitted on ``train_v`` with a clone of ``model``, both seeded for
    (repeat, fold) from ``seed``: the model's ``random_state`` and the method's seed."""
    return clone(method).fit_vectors(
        train_v,
        _reseeded(model, derive_seed(seed, repeat, fold, _MODEL_STREAM)),
        seed=derive_seed(seed, repeat, fold),
    )


def fit_and_score(
    method: Method,
    model,
    train_v: Vectors,
    test_v: Vectors,
    seed: int,
    repeat: int,
    fold: int,
    features_seconds: float = 0.0,
) -> FoldRun:
    """Fit a clone of ``method`` with a (repeat, fold)-seeded clone of ``model`` on
    ``train_v``, score ``test_v``: the step every protocol shares."""
    start = time.perf_counter()
    fitted = fit_fold(method, model, train_v, seed, repeat, fold)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    score, spread = fitted.score_vectors(test_v, return_spread=True)
    score_seconds = time.perf_counter() - start
    train_labels = train_v.labels
    row = {
        "repeat": repeat,
        "fold": fold,
        **detection_metrics(test_v.labels, score),
        "test_targets": len(test_v.targets),
        "test_malicious": int(test_v.labels.sum()),
        "train_malicious": int((train_labels == 1).sum()),
        "train_benign": int((train_labels == 0).sum()),
        **_training_counts(fitted),
        "features_seconds": features_seconds,
        "fit_seconds": fit_seconds,
        "score_seconds": score_seconds,
        "fit_epochs": getattr(fitted.model_, "n_epochs_", np.nan),
    }
    scores = pd.DataFrame(
        {
            "repeat": repeat,
            "fold": fold,
            "target": test_v.targets,
            "label": test_v.labels,
            "score": score,
            "spread": spread,
        }
    )
    return FoldRun(row, scores, {"repeat": repeat, "fold": fold, **_what_it_did(fitted)})


def collect(runs: list[FoldRun]) -> pd.DataFrame:
    """The protocol's result: one row per run, with ``attrs["scores"]`` and ``attrs["fits"]``."""
    result = pd.DataFrame([run.row for run in runs])
    result.attrs["scores"] = pd.concat([run.scores for run in runs], ignore_index=True)
    result.attrs["fits"] = [run.fit for run in runs]
    return result


def _on_device(bags: Bags, device: str) -> Bags:
    device = resolve_device(device)
    return bags if bags.device == device else bags.to(device)  # moving drops cached values


def _resampler_of(method: Method):
    """The method's resampler when it resamples in training or prediction, else None."""
    if method.resamples_in_training or method.resamples_in_prediction:
        return method.resampler_or_default()
    return None


def fold_splits(labels: np.ndarray, folds: int, seed: int, groups=None) -> list:
    """[(train, test)] target positions of stratified (group) folds; every test fold holds
    both classes, else a one-line :class:`FoldError` says what to change."""
    if groups is None:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed % 2**32)
    else:
        _check_groups(labels, folds, np.asarray(groups))
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed % 2**32)
    splits = list(splitter.split(np.zeros(len(labels)), labels, groups))
    for fold, (_, test) in enumerate(splits):
        if len(np.unique(labels[test])) < 2:
            missing = "malicious" if not labels[test].any() else "benign"
            raise FoldError(
                f"fold {fold} has no {missing} test target"
                + (" (groups keep captures whole)" if groups is not None else "")
                + ": lower folds= or add targets"
            )
    return splits


def _check_groups(labels: np.ndarray, folds: int, groups: np.ndarray) -> None:
    """Every test fold needs a malicious and a benign target, and a group (capture) sits in
    one fold: each class must span at least ``folds`` groups."""
    malicious, benign = (len(np.unique(groups[labels == value])) for value in (1, 0))
    fewest = min(malicious, benign)
    if fewest < folds:
        change = f"lower folds= to at most {fewest} or " if fewest >= 2 else ""
        raise FoldError(
            f"malicious targets come from {malicious} group(s) and benign ones from {benign}; "
            f"grouped folds keep a group whole, so {folds} folds cannot all hold both classes: "
            f"{change}set groups=None (ungrouped folds keep the capture confound in)"
        )


def _check_inputs(bags, extractor, method, model, folds: int, repeats: int) -> None:
    _check_objects(bags, extractor, method, model)
    if folds < 2 or repeats < 1:
        raise FoldError(f"need folds= >= 2 and repeats= >= 1, got {folds} and {repeats}")
    labels = bags.labels.cpu().numpy()
    _check_labelled("", labels)
    malicious = int(labels.sum())
    if malicious < folds or len(labels) - malicious < folds:
        raise FoldError(
            f"{malicious} malicious and {len(labels) - malicious} benign targets for "
            f"{folds} folds: lower folds= to at most {min(malicious, len(labels) - malicious)}"
        )


def _check_objects(bags, extractor, method, model) -> None:
    if not isinstance(method, Method):
        raise TypeError(f"method must be an alchemy_torch Method, got {type(method).__name__}")
    if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        raise TypeError(f"model must have fit and predict_proba, got {type(model).__name__}")
    if bags.kind != extractor.kind:
        raise ValueError(
            f"bags are {bags.kind!r} but the extractor is for {extractor.kind!r}: "
            f"use features.make({bags.kind!r})"
        )


def _check_labelled(side: str, labels: np.ndarray) -> None:
    unlabelled = int((labels < 0).sum())
    if unlabelled:
        raise ValueError(
            f"{unlabelled} {side}{' ' if side else ''}targets are unlabelled (-1): drop them to "
            "evaluate (datasets.from_files(..., unknown='drop'))"
        )


def _check_both_classes(side: str, labels: np.ndarray) -> None:
    """Labelled targets of both classes on one side of a transfer split."""
    _check_labelled(side, labels)
    malicious, benign = int((labels == 1).sum()), int((labels == 0).sum())
    if not (malicious and benign):
        raise ValueError(
            f"the {side} side holds {malicious} malicious and {benign} benign targets "
            f"(after dropping targets on both sides): it needs both classes"
        )


def _align_groups(groups, bags: Bags):
    if groups is None:
        return None
    if isinstance(groups, pd.Series):
        missing = pd.Index(bags.targets).difference(groups.index.astype(str))
        if len(missing):
            raise ValueError(f"groups name no group for {len(missing)} targets, e.g. {missing[0]}")
        groups = groups.set_axis(groups.index.astype(str)).reindex(bags.targets)
    groups = np.asarray(groups)
    if len(groups) != len(bags):
        raise ValueError(f"groups has {len(groups)} entries for {len(bags)} targets")
    return groups


def _training_counts(fitted: Method) -> dict:
    table = fitted.training_set_
    origin, kept = table["origin"], table["kept"]
    pseudo = origin == "pseudo"
    return {
        "train_original": int((origin == "original").sum()),
        "train_pseudo_kept": int((pseudo & kept).sum()),
        "train_filtered": int((pseudo & ~kept).sum()),
        "train_synthetic": int((origin == "synthetic").sum()),
        "regenerated_targets": int(table.loc[pseudo, "owner"].nunique()),
    }


def _what_it_did(fitted: Method) -> dict:
    """Provenance of a fold's fit: training set, and Alchemy 4's selection and threshold."""
    out = {"training_set": fitted.training_set_}
    for name in ("selection_", "threshold_"):
        if hasattr(fitted, name):
            out[name.rstrip("_")] = getattr(fitted, name)
    return out
