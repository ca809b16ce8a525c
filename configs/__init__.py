"""Hydra configs of the ``alchemy`` app, packaged as ``alchemy_torch.configs`` (pyproject's
package-dir), so ``pkg://alchemy_torch.configs`` finds them from a plain ``pip install .``."""
