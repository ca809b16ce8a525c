"""Leakage-free, target-level cross-validation of a method with a model (METHOD.md §6).

Folds are stratified over TARGETS (with ``groups``, stratified group folds: a capture is never
on both sides). Everything fitted -- the extractor's corpus context, scalers, target selection,
filtering, the model -- sees the training targets of a fold only.

Draws and features: a target's draws depend on its own records and the repeat's seed alone
(:meth:`Vectors.compute` with ``index``). When the extractor has no corpus context (flows,
http), its vectors do too, so they are computed once per repeat for every target and sliced
per fold. An extractor with context (dns) is fitted per fold on the training targets, and the
fold's vectors are computed with it, from the same draws.
"""

from __future__ import annotations

import logging
import time

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

__all__ = ["FoldError", "cross_validate", "fold_splits"]

log = logging.getLogger(__name__)
_DRAW_STREAM = 31  # sub-stream of the seed for the draws of a repeat
_MODEL_STREAM = 32  # sub-stream of the seed for the model of a (repeat, fold)


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
) -> pd.DataFrame:
    """One row per (repeat, fold): metrics, training-set counts and seconds.

    Columns: repeat, fold, roc_auc, pr_auc, tpr_at_1pct_fpr, test_targets, test_malicious,
    train_original, train_pseudo_kept, train_filtered, train_synthetic, regenerated_targets,
    features_seconds, fit_seconds, score_seconds. ``groups``: one group per target (array in
    the Bags' target order, or a Series indexed by target name). ``progress`` logs each fold.
    ``seed``: the folds, the draws and the model of every (repeat, fold) derive from it (a
    model's ``random_state``, when it has one, is replaced by the derived seed).

    ``result.attrs["scores"]``: the out-of-fold scores, one row per (repeat, target): fold,
    target, label, score, spread (std over the target's ensemble). ``result.attrs["fits"]``:
    per fold, what the method did (its training set's provenance and, for Alchemy 4, the
    selection scores and filtering threshold).
    """
    _check_inputs(bags, extractor, method, model, folds, repeats)
    device = resolve_device(device)
    if bags.device != device:  # moving drops the Bags' cached per-record values
        bags = bags.to(device)
    labels = bags.labels.cpu().numpy()
    group_of = _align_groups(groups, bags)
    resampler = (
        method.resampler_or_default()
        if method.resamples_in_training or method.resamples_in_prediction
        else None
    )
    rows, scores, fits, seen_splits = [], [], [], []
    for repeat in range(repeats):
        draw_seed = derive_seed(seed, repeat, _DRAW_STREAM)
        shared, shared_seconds = None, 0.0
        if not extractor.corpus_context:
            start = time.perf_counter()
            shared = Vectors.compute(extractor, bags, resampler, draw_seed)
            shared_seconds = (time.perf_counter() - start) / folds
        splits = fold_splits(labels, folds, seed=derive_seed(seed, repeat), groups=group_of)
        _warn_if_repeated(splits, seen_splits, repeat)
        for fold, (train, test) in enumerate(splits):
            start = time.perf_counter()
            if shared is not None:
                train_v, test_v = shared.take(train), shared.take(test)
            else:
                fitted_extractor = clone(extractor).fit(bags[train])
                train_v, test_v = (
                    Vectors.compute(fitted_extractor, bags, resampler, draw_seed, index=part)
                    for part in (train, test)
                )
            features_seconds = shared_seconds + time.perf_counter() - start
            start = time.perf_counter()
            fitted = clone(method).fit_vectors(
                train_v,
                _reseeded(model, derive_seed(seed, repeat, fold, _MODEL_STREAM)),
                seed=derive_seed(seed, repeat, fold),
            )
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            score, spread = fitted.score_vectors(test_v, return_spread=True)
            score_seconds = time.perf_counter() - start
            rows.append(
                {
                    "repeat": repeat,
                    "fold": fold,
                    **detection_metrics(test_v.labels, score),
                    "test_targets": len(test),
                    "test_malicious": int(test_v.labels.sum()),
                    **_training_counts(fitted),
                    "features_seconds": features_seconds,
                    "fit_seconds": fit_seconds,
                    "score_seconds": score_seconds,
                }
            )
            scores.append(
                pd.DataFrame(
                    {
                        "repeat": repeat,
                        "fold": fold,
                        "target": test_v.targets,
                        "label": test_v.labels,
                        "score": score,
                        "spread": spread,
                    }
                )
            )
            fits.append({"repeat": repeat, "fold": fold, **_what_it_did(fitted)})
            if progress:
                log.info(
                    "repeat %d fold %d/%d: ROC-AUC %.4f (%.1f s)",
                    repeat,
                    fold + 1,
                    folds,
                    rows[-1]["roc_auc"],
                    features_seconds + fit_seconds + score_seconds,
                )
    result = pd.DataFrame(rows)
    result.attrs["scores"] = pd.concat(scores, ignore_index=True)
    result.attrs["fits"] = fits
    return result


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
    if not isinstance(method, Method):
        raise TypeError(f"method must be an alchemy_torch Method, got {type(method).__name__}")
    if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        raise TypeError(f"model must have fit and predict_proba, got {type(model).__name__}")
    if bags.kind != extractor.kind:
        raise ValueError(
            f"bags are {bags.kind!r} but the extractor is for {extractor.kind!r}: "
            f"use features.make({bags.kind!r})"
        )
    if folds < 2 or repeats < 1:
        raise FoldError(f"need folds= >= 2 and repeats= >= 1, got {folds} and {repeats}")
    labels = bags.labels.cpu().numpy()
    unlabelled = int((labels < 0).sum())
    if unlabelled:
        raise ValueError(
            f"{unlabelled} targets are unlabelled (-1): drop them to evaluate "
            "(datasets.from_files(..., unknown='drop'))"
        )
    malicious = int(labels.sum())
    if malicious < folds or len(labels) - malicious < folds:
        raise FoldError(
            f"{malicious} malicious and {len(labels) - malicious} benign targets for "
            f"{folds} folds: lower folds= to at most {min(malicious, len(labels) - malicious)}"
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
