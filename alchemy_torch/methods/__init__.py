"""Methods: Original, Noise, Gaussian, SMOTE, any imbalanced-learn over-sampler, Alchemy 1-4
(METHOD.md §3-§4) and online Alchemy (fresh draws every epoch).

method = methods.make("alchemy4", resampler=Resampler(option=1, iterations=20))
method.fit(train_bags, features.make("flows"), models.make("rf"), seed=0)
scores = method.score(test_bags, seed=1)            # (B,) P(malicious) per target
method.save("detector.joblib"); methods.load("detector.joblib").score(new_bags)  # a pickle
methods.make("alchemy4", kind="dns")                 # the slides' settings for DNS
methods.make("oversample", sampler=ADASYN())         # or sampler="BorderlineSMOTE"
"""

from __future__ import annotations

from alchemy_torch.methods.alchemy import PATTERNS, Alchemy
from alchemy_torch.methods.base import (
    DETECTOR_FORMAT,
    ORIGINS,
    Method,
    Rows,
    fit_model,
    load,
    p_malicious,
)
from alchemy_torch.methods.baselines import Noise, Original, Oversample, Smote
from alchemy_torch.methods.online import Online
from alchemy_torch.methods.vectors import Vectors
from alchemy_torch.resample import Resampler

__all__ = [
    "DETECTOR_FORMAT",
    "NAMES",
    "ORIGINS",
    "Alchemy",
    "Method",
    "Noise",
    "Online",
    "Original",
    "Oversample",
    "Rows",
    "Smote",
    "Vectors",
    "fit_model",
    "load",
    "make",
    "p_malicious",
    "paper_defaults",
]

#: name -> (class, fixed options): the slides' table in its row order, with the extra baselines
#: beside their kin (the report's row order)
NAMES = {
    "original": (Original, {}),
    "noise": (Noise, {}),
    "gaussian": (Noise, {"distribution": "gaussian"}),
    "smote": (Smote, {}),
    "oversample": (Oversample, {}),
    "adasyn": (Oversample, {"sampler": "ADASYN"}),
    **{f"alchemy{p}": (Alchemy, {"pattern": p}) for p in PATTERNS},
    "online": (Online, {}),
}

#: The slides' Alchemy settings per data type (METHOD.md §3.9): option, [P_lower, P_upper]
_PAPER = {"flows": (1, (0.0, 0.98)), "http": (4, (0.0, 0.999)), "dns": (4, (0.0, 0.999))}
PAPER_ITERATIONS, PAPER_F = 20, 5.0


def paper_defaults(kind: str) -> dict:
    """The slides' Alchemy options for ``kind``: resampler (option, K = 20), p_range, f = 5."""
    if kind not in _PAPER:
        raise ValueError(f"kind must be one of {sorted(_PAPER)}, got {kind!r}")
    option, p_range = _PAPER[kind]
    resampler = Resampler(option=option, iterations=PAPER_ITERATIONS)
    return {"resampler": resampler, "p_range": p_range, "f": PAPER_F}


def make(name: str, kind: str | None = None, **options) -> Method:
    """The method ``name`` (see :data:`NAMES`); ``kind`` applies :func:`paper_defaults` to an
    Alchemy pattern, under any explicit ``options``."""
    if name not in NAMES:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(NAMES)}")
    cls, fixed = NAMES[name]
    defaults = paper_defaults(kind) if kind is not None and issubclass(cls, Alchemy) else {}
    return cls(**{**defaults, **fixed, **options})
