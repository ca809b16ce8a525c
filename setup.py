"""Packages only (the rest is in pyproject.toml): alchemy_torch, and the top-level configs/
folder shipped as alchemy_torch.configs. A mapped folder rules out pyproject's packages.find."""

from setuptools import find_namespace_packages, find_packages, setup

configs = find_namespace_packages("configs", exclude=["*__pycache__*"])
setup(
    packages=[
        *find_packages(include=["alchemy_torch*"]),
        "alchemy_torch.configs",
        *(f"alchemy_torch.configs.{name}" for name in configs),
    ]
)
