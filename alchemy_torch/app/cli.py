"""Console scripts: ``alchemy`` (the Hydra app) and ``alchemy-report DIR`` (``alchemy-score``:
:mod:`.score`).

Errors end the command with one line on stderr and exit status 1 (``HYDRA_FULL_ERROR=1``
shows the traceback). In a multirun a failed cell is recorded in its results.json and the
other cells run; the sweep then exits with status 1 and names the failed cells.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from alchemy_torch import datasets, methods
from alchemy_torch.app.job import MODES, CellFailed, fit_detector, one_line, run_cell
from alchemy_torch.evaluation import report

__all__ = ["CONFIGS", "SweepSummary", "app", "main", "paper_setting", "report_main"]

log = logging.getLogger(__name__)
CONFIGS = "pkg://alchemy_torch.configs"
#: whether the user asked for tracebacks (HYDRA_FULL_ERROR=1); :func:`main` sets it
_tracebacks = True


def paper_setting(kind: str, key: str):
    """``${paper:KIND,KEY}`` in the configs: the slides' Alchemy setting of a data type
    (:func:`alchemy_torch.methods.paper_defaults`): option, iterations, p_lower, p_upper or f
    (scalars: OmegaConf cannot resolve a list in place)."""
    defaults = methods.paper_defaults(kind)
    resampler, (p_lower, p_upper) = defaults["resampler"], defaults["p_range"]
    settings = {
        "option": resampler.option,
        "iterations": resampler.iterations,
        "p_lower": p_lower,
        "p_upper": p_upper,
        "f": defaults["f"],
    }
    return settings[key]


OmegaConf.register_new_resolver("paper", paper_setting, replace=True)
# ${kind_of:${data.names}}: the kind of named sets (data=union)
OmegaConf.register_new_resolver(
    "kind_of", lambda names: datasets.kind_of(list(names)), replace=True
)


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="alchemy")
def app(cfg: DictConfig) -> float | None:
    """One cell; prints its one-line summary and returns its mean ROC-AUC (for sweepers).
    ``mode=fit``: fits a detector on all the data instead and prints where it is."""
    try:
        if cfg.mode not in MODES:
            raise CellFailed(f"ValueError: mode must be one of {MODES}, got {cfg.mode!r}")
        if cfg.mode == "fit":
            print(fit_line(fit_detector(cfg)))
            return None
        results = run_cell(cfg)
    except CellFailed as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.error("cell failed: %s", error)
            return None  # recorded in its results.json; the sweep goes on
        if _tracebacks:
            raise
        sys.exit(f"alchemy: error: {error}")  # before Hydra adds its own line
    print(summary_line(results, cfg.output_dir))
    return results["summary"]["roc_auc_mean"]


def summary_line(results: dict, output_dir) -> str:
    cell, summary = results["cell"], results["summary"]
    done = " (done before)" if results.get("skipped") else ""
    runs = "repeats" if cell.get("protocol") == "transfer" else "folds"
    return (
        f"{cell['data']} {cell['method']} {cell['model']}: ROC-AUC "
        f"{100 * summary['roc_auc_mean']:.2f} ± {100 * summary['roc_auc_std']:.2f} % over "
        f"{summary['folds']} {runs}{done} -> {output_dir}"
    )


def fit_line(fitted: dict) -> str:
    """What ``mode=fit`` fitted, on what, where it is and how to use it."""
    cell, data = fitted["cell"], fitted["data"]
    return (
        f"{cell['method']} {cell['model']} fitted on {data['name']} ({data['targets']} targets, "
        f"{data['malicious']} malicious) in {fitted['seconds']:.1f} s -> {fitted['path']}\n"
        f"score logs with: alchemy-score {fitted['path']} PATH... [--out ranked.csv]"
    )


class SweepSummary(Callback):
    """At the end of a multirun, logs how many cells of the sweep folder are ok and which
    failed; :func:`main` then exits with status 1 if any did."""

    failed: list[str] = []

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        cells = report.collect(config.hydra.sweep.dir)
        failed = cells[cells["status"] != "ok"]
        SweepSummary.failed = [f"{row.folder}: {row.error}" for row in failed.itertuples()]
        log.info(
            "%d of %d cells ok in %s; report: alchemy-report %s",
            len(cells) - len(failed),
            len(cells),
            config.hydra.sweep.dir,
            config.hydra.sweep.dir,
        )
        for line in SweepSummary.failed:
            log.error("failed: %s", line)


def main() -> None:
    """``alchemy``: the Hydra app with one-line errors and a non-zero exit on failure."""
    global _tracebacks
    _tracebacks = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, so the error reaches us whole
    SweepSummary.failed = []
    try:
        app()
    except Exception as error:
        if _tracebacks:
            raise
        sys.exit(f"alchemy: error: {_hydra_one_line(error)}")
    if SweepSummary.failed:
        sys.exit(f"alchemy: {len(SweepSummary.failed)} cell(s) failed (see above)")


def _hydra_one_line(error: BaseException) -> str:
    """:func:`one_line`, plus the first line of a config error's OmegaConf cause."""
    text = one_line(error).split(" Config search path:")[0]
    cause = error.__cause__
    if cause is not None and type(cause).__module__.startswith("omegaconf"):
        text += f" ({str(cause).splitlines()[0]})"
    return text


def report_main(argv: list[str] | None = None) -> None:
    """``alchemy-report DIR``: the slides' table, paired gains with p-values (against N for a
    scarcity sweep) and plots of a run or multirun folder."""
    parser = argparse.ArgumentParser(prog="alchemy-report", description=report_main.__doc__)
    parser.add_argument("folder", help="a run or multirun folder of the alchemy app")
    parser.add_argument("--out", help="where to write the report (default: FOLDER/report)")
    args = parser.parse_args(argv)
    try:
        written = report.write_report(args.folder, args.out)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"alchemy-report: error: {one_line(error)}")
    print(written["table"])
    if written["scarcity"]:
        print(f"Scarcity: ROC-AUC and paired gains against N\n\n{written['scarcity']}")
    elif written["gains"]:
        print(f"Paired gain over Original:\n\n{written['gains']}")
    else:
        print("No paired gains: no Original cell with the same folds (add method=original).\n")
    for row in written["failed"].itertuples():
        print(f"failed: {row.folder}: {row.error}")
    out = Path(written["files"][0]).parent
    pngs = ", ".join(p.name for p in written["files"] if p.suffix == ".png")
    print(f"Cells and their full output: {args.folder}\nReport (CSV, Markdown, plots): {out}")
    print(f"Plots: {pngs or 'none'}")
