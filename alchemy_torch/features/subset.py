"""An extractor without some of its features: the control for a confound.

A real set can hand a detector its labels through features that tell the captures apart
(:func:`alchemy_torch.datasets.audit` lists them). Cross-validating again without them says
how much of a result the detector earned on the traffic itself.
"""

from __future__ import annotations

from torch import Tensor

from alchemy_torch.bags import Bags
from alchemy_torch.features.base import Feature, FeatureExtractor
from alchemy_torch.resample import Draws

__all__ = ["Subset"]


class Subset(FeatureExtractor):
    """``extractor``'s features without those named in ``drop`` and, with ``drop_time``,
    without every feature that reads absolute time (a non-empty ``Feature.clock``).

    Columns keep the extractor's order: (P, D') of the extractor's (P, D). Fitting fits the
    wrapped extractor; memory chunks and dtype are the wrapped extractor's.
    """

    def __init__(
        self, extractor: FeatureExtractor, drop: tuple[str, ...] = (), drop_time: bool = False
    ):
        if not isinstance(extractor, FeatureExtractor):
            raise TypeError(f"extractor must be a FeatureExtractor, got {type(extractor).__name__}")
        unknown = sorted(set(drop) - set(extractor.feature_names))
        if unknown:
            raise ValueError(
                f"drop names {len(unknown)} features that {extractor.kind} has not, e.g. "
                f"{unknown[0]!r}: see features.describe({extractor.kind!r})"
            )
        self.extractor, self.drop, self.drop_time = extractor, drop, drop_time
        if not self._kept():
            raise ValueError("drop and drop_time leave no feature: keep at least one")

    @property
    def kind(self) -> str:
        return self.extractor.kind

    @property
    def corpus_context(self) -> bool:
        return self.extractor.corpus_context

    def _kept(self) -> list[int]:
        """Positions of the kept features among the extractor's."""
        dropped = set(self.drop)
        return [
            i
            for i, f in enumerate(self.extractor.features)
            if f.name not in dropped and not (self.drop_time and f.clock)
        ]

    @property
    def features(self) -> list[Feature]:
        every = self.extractor.features
        return [every[i] for i in self._kept()]

    def fit(self, bags: Bags) -> "Subset":
        self.extractor.fit(bags)
        return self

    def __call__(self, bags: Bags, draws: Draws | None = None) -> Tensor:
        """(P, D') the kept columns of the extractor's features."""
        return self.extractor(bags, draws)[:, self._kept()]
