"""One cell: data -> Bags, extractor, method and model from the config -> cross_validate, or
transfer to other captures (``evaluation=transfer``); or a detector fitted on all the data
(``mode=fit``: ``detector.joblib``, see :meth:`alchemy_torch.methods.Method.save`).

A cell's output folder gets (names in :mod:`alchemy_torch.evaluation.report`):

* ``results.json``: status ("ok" or "failed" with a one-line error), the cell's names, the
  metrics per (repeat, fold) and their mean and std, the objects' parameters, the data's size
  and report, the resolved config, the overrides, package versions, device, git revision;
* ``scores.parquet``: the out-of-fold score of every (repeat, target): fold, label, score,
  spread;
* ``filtering.parquet`` (Alchemy 4): every pseudo vector's filtering distance, whether it was
  kept and its fold's threshold.

A folder whose results.json says "ok" is not run again (``resume=true``).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from alchemy_torch import Bags, datasets, resolve_device
from alchemy_torch.evaluation import METRICS, FoldError, cross_validate, transfer
from alchemy_torch.evaluation.report import FILTERING_FILE, RESULTS_FILE, SCORES_FILE
from alchemy_torch.provenance import package_versions

__all__ = [
    "DETECTOR_FILE",
    "Cell",
    "CellFailed",
    "build",
    "fit_detector",
    "one_line",
    "read_results",
    "run_cell",
]

#: cross_validate's arguments, as FoldError messages name them, and the config keys that set them
EVALUATION_KEYS = {
    "folds=": "evaluation.folds=",
    "repeats=": "evaluation.repeats=",
    "groups=None": "evaluation.groups=null",
}

log = logging.getLogger(__name__)

GROUPINGS = (None, "capture")
PROTOCOLS = ("cross_validation", "transfer")
MODES = ("evaluate", "fit")
DETECTOR_FILE = "detector.joblib"


class CellFailed(RuntimeError):
    """A cell stopped; the message is the one-line reason (also in its results.json)."""


@dataclass
class Cell:
    """What one job cross-validates: B targets' bags (with optional capture groups, a Series
    target -> capture), an extractor, a method and a model, and the dataset's report (None for
    synthetic data)."""

    bags: Bags
    groups: pd.Series | None
    extractor: object
    method: object
    model: object
    report: object = None
    test: datasets.Dataset | None = None  # evaluation=transfer: the test side


def build(cfg: DictConfig, test: bool = True) -> Cell:
    """The cell of ``cfg``: its data loaded (with ``test``, a transfer's test data too), its
    objects instantiated (nothing fitted)."""
    if _protocol(cfg) == "transfer" and cfg.evaluation.groups is not None:
        raise ValueError("evaluation=transfer takes no groups: set evaluation.groups=null")
    if cfg.evaluation.groups not in GROUPINGS:
        raise ValueError(
            f"evaluation.groups must be one of {GROUPINGS}, got {cfg.evaluation.groups!r}"
        )
    loaded = instantiate(cfg.data.dataset)
    if isinstance(loaded, tuple):  # datasets.synthetic: (records, labels)
        records, labels = loaded
        dataset, bags = None, Bags.from_records(cfg.data.kind, records, labels)
    else:  # a datasets.Dataset
        dataset, bags = loaded, loaded.to_bags()
    if bags.kind != cfg.data.kind:
        raise ValueError(
            f"data.kind={cfg.data.kind} but data={cfg.data.name} holds {bags.kind} records"
        )
    groups = None
    if cfg.evaluation.groups == "capture":
        if dataset is None:
            raise ValueError(
                f"evaluation.groups=capture needs capture groups, which data={cfg.data.name} "
                "does not have: set evaluation.groups=null"
            )
        groups = dataset.groups
    return Cell(
        bags,
        groups,
        instantiate(cfg.features),
        instantiate(cfg.method),
        instantiate(cfg.model),
        None if dataset is None else dataset.report,
        _test_data(cfg) if test and _protocol(cfg) == "transfer" else None,
    )


def _protocol(cfg: DictConfig) -> str:
    protocol = cfg.evaluation.get("protocol", "cross_validation")
    if protocol not in PROTOCOLS:
        raise ValueError(f"evaluation.protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return protocol


def _test_data(cfg: DictConfig) -> datasets.Dataset:
    """A transfer's test side: ``evaluation.test_paths`` (files) and ``test_names`` (named
    sets, each with its own label rule), as one Dataset of the data's kind."""
    ev = cfg.evaluation
    paths, names = list(ev.get("test_paths") or []), list(ev.get("test_names") or [])
    if not (paths or names):
        raise ValueError(
            "evaluation=transfer needs test data: set evaluation.test_paths=[...] (files) "
            "or evaluation.test_names=[...] (named sets)"
        )
    align = ev.get("test_align_time")
    root = OmegaConf.select(cfg, "data.dataset.root", default=None)
    parts = {n: datasets.load(n, root, align_time=align) for n in names}
    if paths:
        parts["files"] = datasets.from_files(
            paths, cfg.data.kind, ev.get("test_label_rule", "any"), align_time=align
        )
    test = next(iter(parts.values())) if len(parts) == 1 else datasets.union(parts, _test_name(cfg))
    if test.kind != cfg.data.kind:
        raise ValueError(
            f"evaluation.test_*: the test data hold {test.kind} records, data={cfg.data.name} "
            f"{cfg.data.kind}: test on data of the training kind"
        )
    return test


def _test_name(cfg: DictConfig) -> str:
    """The test side's name: its sets' names and files' names, joined by '+'."""
    ev = cfg.evaluation
    files = [Path(p).name for p in ev.get("test_paths") or []]
    return "+".join([*(ev.get("test_names") or []), *files])


def _evaluate(cfg: DictConfig, cell: Cell) -> pd.DataFrame:
    """The cell's protocol: cross_validate, or transfer to the test data."""
    if _protocol(cfg) == "transfer":
        return transfer(
            cell.bags,
            cell.test.to_bags(),
            cell.extractor,
            cell.method,
            cell.model,
            repeats=cfg.evaluation.repeats,
            seed=cfg.seed,
            device=cfg.device,
            progress=cfg.progress,
        )
    return cross_validate(
        cell.bags,
        cell.extractor,
        cell.method,
        cell.model,
        folds=cfg.evaluation.folds,
        repeats=cfg.evaluation.repeats,
        seed=cfg.seed,
        device=cfg.device,
        groups=cell.groups,
        progress=cfg.progress,
        train_malicious=cfg.evaluation.get("train_malicious"),
    )


def fit_detector(cfg: DictConfig) -> dict:
    """``mode=fit``: fit the method of ``cfg`` on ALL its data's labelled targets and save it
    to ``cfg.output_dir``/detector.joblib with the resolved config and the training data's
    report; returns {"path", "cell", "data", "seconds"}. Errors: :class:`CellFailed`."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        cell = build(cfg, test=False)
        method = cell.method.fit(cell.bags, cell.extractor, cell.model, seed=cfg.seed)
        about = _about(cfg)
        data = {**_dataset(cell), "name": cfg.data.name, "label_rule": _label_rule(cell)}
        path = method.save(
            out / DETECTOR_FILE, cell=about["cell"], config=about["config"], data=data
        )
    except Exception as error:
        raise CellFailed(one_line(error)) from error
    return {
        "path": path,
        "cell": about["cell"],
        "data": data,
        "seconds": time.perf_counter() - start,
    }


def _label_rule(cell: Cell) -> str:
    return cell.report.label_rule if cell.report is not None else "synthetic labels"


def run_cell(cfg: DictConfig) -> dict:
    """Cross-validate the cell of ``cfg`` into ``cfg.output_dir``; its results.json content.

    Skips a cell whose results.json says "ok" (``cfg.resume``). On any error writes a
    "failed" results.json and raises :class:`CellFailed` with a one-line message.
    """
    out = Path(cfg.output_dir)
    done = read_results(out)
    if cfg.resume and done is not None and done["status"] == "ok":
        log.info("%s: results exist, skipped", out)
        return {**done, "skipped": True}
    out.mkdir(parents=True, exist_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        cell = build(cfg)
        result = _evaluate(cfg, cell)
    except Exception as error:
        message = one_line(error)
        _write_json(out / RESULTS_FILE, {"status": "failed", "error": message, **_about(cfg)})
        raise CellFailed(message) from error
    result.attrs["scores"].to_parquet(out / SCORES_FILE)
    filtering = _filtering(result.attrs["fits"])
    if filtering is not None:
        filtering.to_parquet(out / FILTERING_FILE)
    results = {
        "status": "ok",
        "error": None,
        **_about(cfg),
        "summary": _summary(result),
        "folds": json.loads(result.to_json(orient="records")),
        "params": _params(cell),
        "dataset": _dataset(cell, result),
        "seconds": time.perf_counter() - start,
        # CPU seconds of this process (all its threads): a cost that the load moves less
        "cpu_seconds": time.process_time() - cpu_start,
    }
    _write_json(out / RESULTS_FILE, results)
    return results


def read_results(folder) -> dict | None:
    """The results.json of a cell folder, None when there is none."""
    path = Path(folder) / RESULTS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line; a failed instantiation is reported by its cause,
    after the config key that built it (``data.dataset: FileNotFoundError: ...``); a
    :class:`FoldError` names the ``evaluation.*`` keys to change."""
    where = ""
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        key = re.search(r"full_key: (\S+)", str(error))
        where = f"{key.group(1)}: " if key else ""
        error = error.__cause__
    text = " ".join(str(error).split())
    if isinstance(error, FoldError):
        for argument, key in EVALUATION_KEYS.items():
            text = text.replace(argument, key)
    return f"{where}{type(error).__name__}: {text}"


# -- what results.json records ----------------------------------------------------------------
def _about(cfg: DictConfig) -> dict:
    """The cell's names and provenance: config, overrides, versions, device, git, time."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    data = OmegaConf.select(cfg, "data.name", throw_on_missing=False)
    protocol = cfg.evaluation.get("protocol", "cross_validation")
    test = {"train": data, "test": _test_name(cfg)} if protocol == "transfer" else {}
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    try:  # a failed cell may hold a value that does not resolve
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:
        config = OmegaConf.to_container(cfg)
    return {
        "cell": {
            # a transfer cell is named by both sides: the report's table marks it so
            "data": f"{data}\u2192{test['test']}" if test else data,
            "kind": OmegaConf.select(cfg, "data.kind", throw_on_missing=False),
            "method": choices.get("method"),
            "model": choices.get("model"),
            "protocol": protocol,
            **test,
        },
        "overrides": overrides,
        "config": config,
        "versions": package_versions(),
        "device": _device_name(cfg.device),
        "git": _git_revision(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _summary(result: pd.DataFrame) -> dict:
    """Mean and sample std over the (repeat, fold) rows of every metric."""
    out = {"folds": len(result)}
    for metric in METRICS:
        out[f"{metric}_mean"] = float(result[metric].mean())
        out[f"{metric}_std"] = float(result[metric].std()) if len(result) > 1 else 0.0
    return out


def _params(cell: Cell) -> dict:
    """The objects as they were built (repr rebuilds them), and the resampler's parameters."""
    method = cell.method
    resamples = method.resamples_in_training or method.resamples_in_prediction
    resampler = method.resampler_or_default() if resamples else None
    return {
        "extractor": repr(cell.extractor),
        "method": repr(method),
        "model": repr(cell.model),
        "resampler": None if resampler is None else _jsonable(resampler.get_params(deep=False)),
    }


def _dataset(cell: Cell, result: pd.DataFrame | None = None) -> dict:
    """Size and report of the data (and of a transfer's test data, with the test targets
    dropped for being training targets too)."""
    labels = cell.bags.labels.cpu().numpy()
    out = {
        "targets": len(labels),
        "malicious": int((labels == 1).sum()),
        "records": int(cell.bags.lengths.sum()),
        "report": None if cell.report is None else str(cell.report),
    }
    if cell.test is not None:
        test = cell.test.labels.to_numpy()
        dropped = [] if result is None else result.attrs["dropped"]
        out["test"] = {
            "targets": len(test),
            "malicious": int((test == 1).sum()),
            "records": len(cell.test.records),
            "dropped_targets": len(dropped),
            "dropped": [str(t) for t in dropped],
            "report": str(cell.test.report),
        }
    return out


def _filtering(fits: list) -> pd.DataFrame | None:
    """Alchemy 4's pseudo vectors of every fold: repeat, fold, target, label, iteration,
    distance, kept, threshold (of the vector's pooled population); None for other methods."""
    frames = []
    for fit in fits:
        if "threshold" not in fit:
            continue
        table = fit["training_set"]
        pseudo = table.loc[table["origin"] == "pseudo"]
        threshold = fit["threshold"]  # {"all": t} or {0: t0, 1: t1}
        by_label = [threshold.get(c, threshold.get("all", np.nan)) for c in (0, 1)]
        frames.append(
            pd.DataFrame(
                {
                    "repeat": fit["repeat"],
                    "fold": fit["fold"],
                    "target": pseudo["target"].to_numpy(),
                    "label": pseudo["label"].to_numpy(),
                    "iteration": pseudo["iteration"].to_numpy(),
                    "distance": pseudo["distance"].to_numpy(),
                    "kept": pseudo["kept"].to_numpy(),
                    "threshold": np.asarray(by_label)[pseudo["label"].to_numpy()],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else None


def _device_name(device: str) -> str:
    try:
        resolved = resolve_device(device)
    except ValueError:  # cuda asked for but absent: the cell fails on it
        return device
    if resolved.type != "cuda":
        return str(resolved)
    import torch

    return f"{resolved} ({torch.cuda.get_device_name(resolved)})"


def _git_revision() -> str | None:
    """``git describe --always --dirty`` of the package's checkout, None outside one."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _jsonable(params: dict) -> dict:
    return json.loads(json.dumps(params, default=str))


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2, default=str) + "\n")
