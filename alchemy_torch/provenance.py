"""What produced a result or a saved detector: the versions of the packages it ran with."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["PACKAGES", "package_versions", "version_differences"]

#: packages whose versions every results.json and detector file records
PACKAGES = (
    "alchemy_torch",
    "torch",
    "numpy",
    "pandas",
    "scikit-learn",
    "imbalanced-learn",
    "pytorch-lightning",
    "hydra-core",
)


def package_versions() -> dict:
    """{"python": version, package: version or None (not installed)} for :data:`PACKAGES`."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def version_differences(saved: dict, current: dict | None = None) -> str:
    """'package saved -> current, ...' for every package whose version differs ('' if none)."""
    current = package_versions() if current is None else current
    return ", ".join(
        f"{name} {saved.get(name)} -> {current.get(name)}"
        for name in dict.fromkeys([*saved, *current])
        if saved.get(name) != current.get(name)
    )
