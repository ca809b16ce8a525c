"""Feature sets per kind: DISCLOSURE-derived flows, Bartos-derived HTTP, EXPOSURE-derived DNS.

``make(kind, **options)`` returns the extractor (``drop=`` / ``drop_time=True``: without those
features, see :class:`Subset`); ``describe(kind, **options)`` its table of features and their
behaviour under resampling (also ``python -m alchemy_torch.features KIND``).
"""

from __future__ import annotations

import importlib

import pandas as pd

from alchemy_torch.features.base import Behaviour, Feature, FeatureExtractor, Segments, stats5
from alchemy_torch.features.subset import Subset
from alchemy_torch.io.schema import check_kind

__all__ = [
    "make",
    "describe",
    "EXTRACTORS",
    "Behaviour",
    "Feature",
    "FeatureExtractor",
    "Segments",
    "Subset",
    "stats5",
]

#: kind (one of :data:`alchemy_torch.io.schema.KINDS`) -> "module:Class" of its extractor
EXTRACTORS = {
    "flows": "alchemy_torch.features.flows:FlowFeatures",
    "http": "alchemy_torch.features.http:HttpFeatures",
    "dns": "alchemy_torch.features.dns:DnsFeatures",
}


def make(
    kind: str, drop: tuple[str, ...] = (), drop_time: bool = False, **options
) -> FeatureExtractor:
    """The feature extractor of ``kind`` (``"flows"``, ``"http"``, ``"dns"``) with ``options``;
    with ``drop`` or ``drop_time``, a :class:`Subset` of it without those features."""
    check_kind(kind)
    module, name = EXTRACTORS[kind].split(":")
    extractor = getattr(importlib.import_module(module), name)(**options)
    return Subset(extractor, tuple(drop), drop_time) if drop or drop_time else extractor


def describe(kind: str, **options) -> pd.DataFrame:
    """Feature name, behaviour under resampling and definition, one row per feature."""
    return make(kind, **options).describe()
