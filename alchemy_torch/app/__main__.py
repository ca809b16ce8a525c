"""``python -m alchemy_torch.app ...`` is the ``alchemy`` console script."""

from alchemy_torch.app.cli import main

main()
