"""alchemy_torch: Alchemy (NTT, FloCon 2020) stochastic resampling-based feature regeneration.

Data flow: canonical records -> :class:`Bags` -> :class:`Resampler` draws -> feature
extractors -> methods and models -> evaluation. See DESIGN.md.
"""
from alchemy_torch.bags import Bags
from alchemy_torch.resample import Draws, Resampler

__all__ = ["Bags", "Draws", "Resampler", "resolve_device"]
__version__ = "0.1.0"


def resolve_device(device: str = "auto"):
    """``"auto"`` -> cuda when available else cpu; ``"cpu"``/``"cuda"`` as given."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available")
    return torch.device(device)
