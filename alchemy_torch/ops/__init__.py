"""Native-torch reductions over CSR segments (bags, draws, time bins)."""

from alchemy_torch.ops.segment import *  # noqa: F401,F403
from alchemy_torch.ops.segment import __all__  # noqa: F401
