"""Composing the app's configs in-process (Hydra's compose API) and running tiny cells."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import alchemy_torch.app.cli  # noqa: F401  (registers the ${paper:...} resolver)
from alchemy_torch.app import run_cell

CONFIG_MODULE = "alchemy_torch.configs"
#: a cell in seconds: 40 synthetic targets (4 malicious), 2 folds, 1 repeat, a small forest
TINY_RUN = [
    "evaluation.folds=2",
    "evaluation.repeats=1",
    "model.n_estimators=10",
    "model.n_jobs=1",
    "device=cpu",
    "progress=false",
]
TINY = ["data.dataset.n_targets=40", *TINY_RUN]
TINY_K = ["method.resampler.iterations=2"]


def compose_config(overrides: list[str], hydra_config: bool = False) -> DictConfig:
    """The composed root config, as a job sees it (``hydra`` node kept on request)."""
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        return compose("alchemy", overrides=overrides, return_hydra_config=hydra_config)


def job_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """A job's config for ``overrides``, writing into ``output_dir``, with HydraConfig set
    (the group choices and overrides a results.json records)."""
    cfg = compose_config(overrides, hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.output_dir = str(output_dir)  # what hydra.run.dir gives a real job
    return cfg


def run_tiny(overrides: list[str], output_dir: Path, data: bool = True) -> dict:
    """run_cell on a tiny cell: :data:`TINY` (:data:`TINY_RUN` when not ``data``, for data
    that are not synthetic) before ``overrides``."""
    return run_cell(job_config([*(TINY if data else TINY_RUN), *overrides], output_dir))


def alchemy(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The ``alchemy`` console script in a subprocess (``python -m alchemy_torch.app``)."""
    return subprocess.run(
        [sys.executable, "-m", "alchemy_torch.app", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
