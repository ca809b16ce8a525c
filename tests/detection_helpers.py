"""Small labelled bags of every kind and cheap models, shared by the detection tests."""

from __future__ import annotations

from functools import lru_cache

from sklearn.ensemble import RandomForestClassifier

from alchemy_torch import Bags
from alchemy_torch.datasets import synthetic


@lru_cache(maxsize=None)
def small_bags(kind: str, n_targets: int = 60, seed: int = 0) -> Bags:
    """``n_targets`` synthetic targets of ``kind``, a fifth malicious, about 40 records each."""
    records, labels = synthetic(
        kind, n_targets=n_targets, malicious_fraction=0.2, seed=seed, n_records=40 * n_targets
    )
    return Bags.from_records(kind, records, labels)


def small_forest(seed: int = 0) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=20, random_state=seed, n_jobs=1)
