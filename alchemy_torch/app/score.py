"""``alchemy-score DETECTOR PATH...``: rank the targets of new logs with a saved detector.

alchemy-score outputs/.../detector.joblib conn.log.gz logs/ --out ranked.csv --top 20

Reads every file (folders: every file below them but hidden ones and notes, ``*.md``,
``*.txt``) in any format :mod:`alchemy_torch.io` reads, keeps every target (unlabelled ones
too), scores each with the detector's ensemble and writes a CSV sorted by score, highest
first (:data:`COLUMNS`). Prints the top rows and, when the files carry labels, ROC-AUC, PR-AUC
and TPR at 1 % FPR over the labelled targets. A detector file is a pickle: score only with
detectors you trust.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from alchemy_torch import Bags, datasets, methods
from alchemy_torch.app.job import one_line
from alchemy_torch.datasets.files import RELATIVE_BEFORE
from alchemy_torch.evaluation import detection_metrics
from alchemy_torch.labels import RULES
from alchemy_torch.resample import bucket_of

__all__ = ["COLUMNS", "log_files", "main", "rank", "score_in_chunks"]

log = logging.getLogger(__name__)
#: the ranked CSV's columns
COLUMNS = ("target", "score", "spread", "records", "first_seen", "last_seen", "source", "label")
#: file names a folder may hold beside its logs (read me's, notes)
NOT_LOGS = (".md", ".txt", ".sha256")
#: records scored at a time (whole resampling buckets, so the draws are those of all at once)
CHUNK_RECORDS = 1_000_000


class Refused(ValueError):
    """Input this detector cannot score; the message is the one line to print."""


def log_files(paths) -> list[Path]:
    """The files of ``paths``: files as given, folders as every file below them (sorted),
    without hidden files and :data:`NOT_LOGS`."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            below = sorted(p for p in path.rglob("*") if p.is_file())
            files += [
                p
                for p in below
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
                and not p.name.endswith(NOT_LOGS)
            ]
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    if not files:
        raise FileNotFoundError(f"no log files in {', '.join(map(str, paths))}")
    return files


def check_kind(files: list[Path], kind: str | None, detector: str, trained: str) -> str:
    """The kind to read ``files`` as: the detector's; :class:`Refused` when ``kind`` (asked
    for) or a file's content is of another kind."""
    fit_hint = "fit a {0} detector (alchemy mode=fit data=... with {0} data)"
    if kind is not None and kind != trained:
        raise Refused(
            f"--kind {kind}: {detector} was trained on {trained} records: score {trained} logs "
            f"or {fit_hint.format(kind)}"
        )
    for path in files:
        try:
            found = datasets.infer_kind(path)
        except ValueError:  # e.g. Suricata EVE holds every kind: read as the detector's
            continue
        if found != trained:
            raise Refused(
                f"{path}: holds {found} records, but {detector} was trained on {trained} "
                f"records: score {trained} logs or {fit_hint.format(found)}"
            )
    return trained


def score_in_chunks(method, bags: Bags, seed: int, chunk_records: int = CHUNK_RECORDS):
    """(B,) scores and spreads of ``bags``, a chunk of whole resampling buckets at a time
    (the same draws, so the same scores, as all at once), with a progress bar on a terminal."""
    bucket = bucket_of(bags.targets)
    records = np.bincount(bucket, weights=bags.lengths.cpu().numpy(), minlength=bucket.max() + 1)
    chunk_of_bucket = (np.cumsum(records) - records) // chunk_records
    chunk = chunk_of_bucket[bucket]
    score, spread = np.zeros(len(bags)), np.zeros(len(bags))
    chunks = np.unique(chunk)
    bar = tqdm(chunks, desc="scoring", unit="chunk", disable=None if len(chunks) > 1 else True)
    for c in bar:
        index = np.flatnonzero(chunk == c)
        score[index], spread[index] = method.score(
            bags[torch.from_numpy(index)], seed=seed, return_spread=True
        )
    return score, spread


def rank(method, ds: datasets.Dataset, seed: int = 1, chunk_records: int = CHUNK_RECORDS):
    """The ranked table of ``ds``'s targets under the fitted ``method``: :data:`COLUMNS`,
    highest score first (ties by target); ``label`` is empty (NA) where unknown."""
    bags = ds.to_bags()
    score, spread = score_in_chunks(method, bags, seed, chunk_records)
    ts, offsets = bags.columns["ts"].cpu().numpy(), bags.offsets.cpu().numpy()
    labels = bags.labels.cpu().numpy()
    table = pd.DataFrame(
        {
            "target": bags.targets,
            "score": score,
            "spread": spread,
            "records": bags.lengths.cpu().numpy(),
            "first_seen": _times(ts[offsets[:-1]]),
            "last_seen": _times(ts[offsets[1:] - 1]),
            "source": ds.groups.reindex(bags.targets).to_numpy(),
            "label": pd.Series(labels, dtype="Int8").mask(labels < 0),
        }
    )
    return table.sort_values(
        ["score", "target"], ascending=[False, True], kind="stable", ignore_index=True
    )


def _times(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds as UTC times; relative ones (before 2001-09-09) as '+N s'."""
    stamps = pd.to_datetime(seconds, unit="s", utc=True).strftime("%Y-%m-%d %H:%M:%S")
    relative = "+" + pd.Series(seconds).round(1).astype(str) + " s"
    return np.where(seconds < RELATIVE_BEFORE, relative.to_numpy(), np.asarray(stamps))


def metrics_line(table: pd.DataFrame) -> str:
    """ROC-AUC, PR-AUC and TPR at 1 % FPR over the labelled targets, or why there are none."""
    labelled = table.dropna(subset=["label"])
    malicious = int((labelled["label"] == 1).sum())
    counts = f"{len(labelled)} labelled targets ({malicious} malicious)"
    if labelled.empty:
        return "no labels in the files: no metrics"
    if malicious in (0, len(labelled)):
        return f"{counts}: metrics need both classes"
    m = detection_metrics(labelled["label"].to_numpy(int), labelled["score"].to_numpy())
    return (
        f"{counts}: ROC-AUC {100 * m['roc_auc']:.2f} %, PR-AUC {100 * m['pr_auc']:.2f} %, "
        f"TPR at 1 % FPR {100 * m['tpr_at_1pct_fpr']:.2f} %"
    )


def main(argv: list[str] | None = None) -> None:
    """``alchemy-score``: rank the targets of log files with a detector (alchemy mode=fit)."""
    parser = argparse.ArgumentParser(prog="alchemy-score", description=main.__doc__)
    parser.add_argument("detector", help="a detector.joblib (a pickle: only one you trust)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="log files or folders of logs")
    parser.add_argument("--out", default="ranked.csv", help="the ranked CSV (ranked.csv)")
    parser.add_argument("--kind", choices=("flows", "http", "dns"), help="the logs' kind")
    parser.add_argument("--label-rule", default="any", choices=RULES, help="labels, if any")
    parser.add_argument("--seed", type=int, default=1, help="the prediction draws' seed (1)")
    parser.add_argument("--top", type=int, default=20, help="rows to print (20)")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            method = methods.load(args.detector)
        for warning in caught:
            print(f"alchemy-score: warning: {warning.message}", file=sys.stderr)
        files = log_files(args.paths)
        kind = check_kind(files, args.kind, args.detector, method.saved_["kind"])
        print(f"reading {len(files)} file(s) as {kind} logs", file=sys.stderr)
        ds = datasets.from_files(files, kind, args.label_rule, unknown="keep", name="scored")
        table = rank(method, ds, seed=args.seed)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        message = str(error) if isinstance(error, Refused) else one_line(error)
        sys.exit(f"alchemy-score: error: {message}")
    table.to_csv(args.out, index=False)
    records = int(table["records"].sum())
    print(f"{len(table)} targets ({records} records) ranked -> {args.out}")
    print(table.head(args.top).to_string(index=False))
    print(metrics_line(table))


if __name__ == "__main__":
    main()
