"""Alchemy 4 end to end at the slides' sizes: per stage seconds and peak memory, and a plain
per-target pandas loop measured side by side.

Per kind (flows 15M records / 3,000 servers, http 1.7M / 2,364, dns 3.3M / 5,163; the builders
of bench_features.py): targets split 80/20 (stratified) into training and test; training =
context fit, originals, K draws (option 4 by default) and their features, Alchemy 4's target
selection (inner 5-fold CV) and filtering (the slides' p_range and f), the model fit
(``models.make("rf")``); prediction = the test targets' originals, draws and features, and the
ensemble. Every stage prints seconds, CPU seconds of this process (all threads: on a shared
machine, what the stage cost whatever the load) and its own peak resident memory (Linux: the
high-water mark is reset at each stage; elsewhere the process peak so far), and on cuda its
peak CUDA memory.

Beside it, on a random sample of targets holding about ``--reference-records`` records (600k),
the same draws are featurised by a straightforward pandas loop, one draw at a time (flows: the
49 default features; http: the 181 ``stats`` features from the per-request table), checked
against the fast path on those draws, and timed against the fast path's draw + features of
the same sample; the pandas time scaled to the full set by records is printed too. dns has no
pandas loop (its CUSUM and day-distance features are long to restate).

Flow bags are built from codes and carry random labels (10 % malicious): the flow figures
measure cost, not detection. http and dns come from the labelled generator.

    python experiments/bench_pipeline.py [--kinds flows http dns] [--scale 1.0]
        [--iterations 20] [--option 4] [--aggregation stats|bartos] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from bench_features import SIZES, make_bags
from sklearn.model_selection import train_test_split

from alchemy_torch import Resampler, features, methods, models
from alchemy_torch.features.http import request_table
from alchemy_torch.methods import Alchemy, Vectors

STATS = ["mean", "std", "min", "max", "median"]


# ---------------------------------------------------------------------- measuring
class Stages:
    """Seconds and peak resident memory per named stage (stages may nest)."""

    def __init__(self, device: torch.device):
        self.device, self.seconds, self.cpu_seconds, self.open = device, {}, {}, []
        self.peak, self.peak_cuda = {}, {}
        self.cuda = device.type == "cuda"

    @contextmanager
    def __call__(self, name: str):
        self._sample()
        self.seconds.setdefault(name, 0.0)  # rows in the order stages start
        self.cpu_seconds.setdefault(name, 0.0)
        self.open.append(name)
        _reset_high_water_mark()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            if self.cuda:
                torch.cuda.synchronize()
            self.seconds[name] += time.perf_counter() - start
            self.cpu_seconds[name] += time.process_time() - cpu_start
            self._sample()
            self.open.pop()

    def _sample(self) -> None:
        """Credit the high-water mark since the last reset to every open stage."""
        peak = _high_water_mark_gb()
        cuda = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else 0.0
        for name in self.open:
            self.peak[name] = max(self.peak.get(name, 0.0), peak)
            self.peak_cuda[name] = max(self.peak_cuda.get(name, 0.0), cuda)

    def table(self) -> pd.DataFrame:
        columns = {"seconds": self.seconds, "cpu_s": self.cpu_seconds, "peak_rss_gb": self.peak}
        if self.cuda:
            columns["peak_cuda_gb"] = self.peak_cuda
        return pd.DataFrame(columns).round(2)


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _high_water_mark_gb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class TimedExtractor:
    """An extractor whose calls count as stage ``{prefix} originals`` or ``{prefix} features``."""

    def __init__(self, extractor, stages: Stages, prefix: str):
        self.extractor, self.stages, self.prefix = extractor, stages, prefix

    def __call__(self, bags, draws=None):
        with self.stages(f"{self.prefix} {'originals' if draws is None else 'features'}"):
            return self.extractor(bags, draws)


class TimedResampler:
    """A resampler whose chunks of draws count as stage ``{prefix} draw``."""

    def __init__(self, resampler: Resampler, stages: Stages, prefix: str):
        self.resampler, self.stages, self.prefix = resampler, stages, prefix

    def iter_draws(self, bags, seed):
        chunks = self.resampler.iter_draws(bags, seed)
        while True:
            with self.stages(f"{self.prefix} draw"):
                draws = next(chunks, None)
            if draws is None:
                return
            yield draws


class TimedAlchemy(Alchemy):
    """Alchemy whose target selection and filtering count as stages of ``self.stages``."""

    stages: Stages

    def _select(self, *args):
        with self.stages("of which selection"):
            return super()._select(*args)

    def _distances(self, *args):
        with self.stages("of which filtering"):
            return Alchemy._distances(*args)

    def _filter(self, *args):
        with self.stages("of which filtering"):
            return super()._filter(*args)


# ---------------------------------------------------------------------- the pipeline
def split(bags) -> tuple:
    """(training, test) Bags: 80/20 of the targets, stratified by label."""
    train, test = train_test_split(
        np.arange(len(bags)), test_size=0.2, stratify=bags.labels.numpy(), random_state=0
    )
    return bags[train], bags[test]


def pipeline(train_bags, test_bags, kind: str, args, device: torch.device) -> pd.DataFrame:
    stages = Stages(device)
    resampler = Resampler(args.option, iterations=args.iterations)
    with stages("to device"):
        train_bags, test_bags = train_bags.to(device), test_bags.to(device)
    options = {"aggregation": args.aggregation} if kind == "http" else {}
    extractor = features.make(kind, **options)
    with stages("train context fit"):
        extractor.fit(train_bags)
    method = TimedAlchemy(**{**methods.paper_defaults(kind), "resampler": resampler})
    method.stages = stages
    model = models.make("rf", n_estimators=args.trees)
    for prefix, part, seed in (("train", train_bags, 0), ("test", test_bags, 1)):
        vectors = Vectors.compute(
            TimedExtractor(extractor, stages, prefix),
            part,
            TimedResampler(resampler, stages, prefix),
            seed,
        )
        if prefix == "train":
            with stages("train fit (all)"):
                method.fit_vectors(vectors, model, seed=0)
        else:
            with stages("test ensemble"):
                scores = method.score_vectors(vectors)
    table = stages.table()
    timed = ["seconds", "cpu_s"]
    inner = table.reindex(["of which selection", "of which filtering"])[timed].fillna(0).sum()
    rest = (table.loc[["train fit (all)"], timed] - inner).set_axis(["of which rest"])
    at = table.index.get_loc("test originals")
    table = pd.concat([table.iloc[:at], rest.round(2), table.iloc[at:]])
    kept = method.training_set_.kept.sum()
    print(
        f"[{kind}] train {len(train_bags)} targets -> {kept:,} kept training vectors; "
        f"test {len(test_bags)} targets; test ROC-AUC {_auc(vectors.labels, scores)}",
        flush=True,
    )
    return table


def _auc(labels, scores) -> str:
    from sklearn.metrics import roc_auc_score

    return f"{roc_auc_score(labels, scores):.3f}" if len(set(labels)) == 2 else "n/a"


# ---------------------------------------------------------------------- pandas, side by side
def flow_features_pandas(df: pd.DataFrame, bin_seconds: float = 300.0) -> list[float]:
    """FlowFeatures' 49 default features of one draw (rows in time order), with pandas."""
    n = len(df)
    if n == 0:
        return [0.0] * 49
    inbound = df.dst == df.server
    client = df.src.where(inbound, df.dst)
    per_packet = df.bytes / df.pkts.clip(lower=1)
    out = []
    for values in (df.pkts, per_packet):
        for side in (inbound, ~inbound):
            out += _stats5(values[side])
    for side in (inbound, ~inbound):
        sizes = df.bytes[side].astype(float)
        if sizes.empty:
            out += [0.0] * 5
            continue
        share = sizes.value_counts(normalize=True)
        centred = sizes - sizes.mean()
        m2, m4 = (centred**2).mean(), (centred**4).mean()
        kurtosis = m4 / m2**2 if m2 > 0 else 0.0
        out += [len(share), len(share) / len(sizes), -(share * np.log(share)).sum()]
        out += [share.max(), kurtosis]
    gaps = df.ts[inbound].groupby(client[inbound]).diff().dropna()
    by_client = gaps.groupby(client[inbound])
    per_client = pd.concat(
        [by_client.min(), by_client.max(), by_client.median(), by_client.std(ddof=0)], axis=1
    )
    out += list(per_client.mean()) if len(per_client) else [0.0] * 4
    out.append(len(per_client) / client.nunique())
    bins = np.floor((df.ts - df.ts.min()) / bin_seconds).astype(np.int64)
    every_bin = range(int(bins.max()) + 1)
    flows = bins.value_counts().reindex(every_bin, fill_value=0)
    clients = client.groupby(bins).nunique().reindex(every_bin, fill_value=0)
    direction = pd.crosstab([bins, client], inbound)
    balance = direction.get(True, 0) - direction.get(False, 0)
    unmatched = balance.abs().groupby(level=0).sum().reindex(every_bin, fill_value=0)
    out += [unmatched.mean(), unmatched.std(ddof=0), unmatched.sum() / n]
    out += _stats5(flows) + [(flows > 0).mean()] + _stats5(clients)
    return [float(v) for v in out]


def http_stats_pandas(requests: pd.DataFrame) -> list[float]:
    """HttpFeatures' 181 ``stats`` features of one draw from its per-request table."""
    if requests.empty:
        return [0.0] * (5 * requests.shape[1] + 1)
    stats = requests.agg(["mean", "min", "max", "median"])
    stats.loc["std"] = requests.std(ddof=0)
    return stats.loc[STATS].T.to_numpy().ravel().tolist() + [float(len(requests))]


def _stats5(values: pd.Series) -> list[float]:
    if values.empty:
        return [0.0] * 5
    return [values.mean(), values.std(ddof=0), values.min(), values.max(), values.median()]


def side_by_side(bags, kind: str, args) -> dict | None:
    """pandas loop vs the fast path on the draws of a sample of ~reference_records records."""
    if kind == "dns" or (kind == "http" and args.aggregation != "stats"):
        return None
    rng = np.random.default_rng(0)
    lengths = bags.lengths.numpy()
    order = rng.permutation(len(bags))
    fits = np.cumsum(lengths[order]) <= args.reference_records
    sample = bags[np.sort(order[fits])] if fits.any() else bags[order[:1]]
    extractor = features.make(kind)
    resampler = Resampler(args.option, iterations=args.iterations)
    extractor(sample)  # per-record values both sides compute once (http: the request table)
    resampler.draw(sample[np.arange(1)], 0)  # compiled kernels load on first use: not timed
    start = time.perf_counter()
    chunks = list(extractor.iter_draws(sample, resampler, seed=0))
    fast = time.perf_counter() - start
    frame = _pandas_frame(sample, kind)
    compute = flow_features_pandas if kind == "flows" else http_stats_pandas
    start = time.perf_counter()
    for x, draws in chunks:
        rows, offsets = draws.rows.numpy(), draws.offsets.numpy()
        expected = np.array(
            [compute(frame.take(rows[a:b])) for a, b in zip(offsets[:-1], offsets[1:])]
        )
        np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6, atol=1e-9)
    slow = time.perf_counter() - start
    records = sample.num_records
    return {
        "sample targets": len(sample),
        "sample records": records,
        "pandas s": round(slow, 2),
        "fast s (draw + features)": round(fast, 2),
        "speed-up": round(slow / fast, 1),
        "pandas s scaled to full set": round(slow * bags.num_records / records, 1),
    }


def _pandas_frame(bags, kind: str) -> pd.DataFrame:
    if kind == "flows":
        columns = ("ts", "src", "dst", "server", "pkts", "bytes")
        return pd.DataFrame({c: bags.columns[c].numpy() for c in columns})
    return pd.DataFrame(request_table(bags).numpy().T)


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the slides' sizes")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--option", type=int, default=4, choices=Resampler.OPTIONS)
    parser.add_argument("--aggregation", default="stats", choices=["stats", "bartos"])
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--reference-records", type=int, default=600_000)
    parser.add_argument("--no-reference", action="store_true", help="skip the pandas loop")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    device = torch.device(args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"load average {load:.1f}; K={args.iterations} option {args.option}",
        flush=True,
    )
    for kind in args.kinds:
        start = time.perf_counter()
        bags = make_bags(kind, args.scale)
        if kind == "flows":  # the code-built flow bags carry no labels: 10 % malicious at random
            malicious = np.random.default_rng(0).random(len(bags)) < 0.1
            bags = replace(bags, labels=torch.from_numpy(malicious.astype(np.int64)))
        print(f"[{kind}] built {bags} in {time.perf_counter() - start:.1f} s", flush=True)
        reference = None if args.no_reference else side_by_side(bags, kind, args)
        if reference is not None:
            print(f"[{kind}] pandas side by side: {reference}", flush=True)
        train_bags, test_bags = split(bags)
        del bags  # the stages hold one copy of the records, as a training job would
        print(pipeline(train_bags, test_bags, kind, args, device).to_string(), flush=True)


if __name__ == "__main__":
    main()
