"""alchemy_torch: Alchemy (NTT, FloCon 2020) stochastic resampling-based feature regeneration.

Data flow: canonical records -> :class:`Bags` -> :class:`Resampler` draws -> feature
extractors -> methods and models -> evaluation. See DESIGN.md.

The subpackages (``io``, ``datasets``, ``features``, ``methods``, ``models``, ``evaluation``,
``ops``, ``scale``) are imported on first attribute access, so ``import alchemy_torch as at`` stays
cheap and ``at.features.make("flows")`` works without a second import.
"""

import importlib

from alchemy_torch.bags import Bags
from alchemy_torch.resample import Draws, Resampler

__version__ = "0.1.0"

#: Subpackages loaded lazily on first access (PEP 562).
SUBPACKAGES = ("datasets", "evaluation", "features", "io", "methods", "models", "ops", "scale")

__all__ = ["Bags", "Draws", "Resampler", "resolve_device", *SUBPACKAGES]


def __getattr__(name: str):
    if name in SUBPACKAGES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBPACKAGES))


def resolve_device(device: str = "auto"):
    """``"auto"`` -> cuda when available else cpu; ``"cpu"``/``"cuda"`` as given."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available")
    return torch.device(device)
