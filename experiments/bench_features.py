"""Benchmark feature extraction end to end (draw + features) at the slides' dataset sizes.

flows: B = 3,000 servers, N = 15M one-way flows with heavy-tailed bag sizes, K = 20 draws of
option 4; http: 1.7M requests; dns: 3.3M records (the slides' HTTP and PDNS sizes), same K and
option. Prints seconds for the originals and for the draws (wall, and CPU seconds of this
process for the draws), vectors/s and peak memory, on CPU and on CUDA when present.

    python experiments/bench_features.py [--kinds flows http dns] [--scale 1.0] [--iterations 20]
        [--aggregation stats|bartos]   (HTTP's aggregation)
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from bench_resample import heavy_tailed_offsets

from alchemy_torch import Bags, Resampler, datasets, features

#: kind -> (targets, records) at scale 1 (the slides' dataset sizes, §2.2 of METHOD.md)
SIZES = {"flows": (3_000, 15_000_000), "http": (2_364, 1_713_216), "dns": (5_163, 3_345_966)}


def synthetic_flow_bags(n_targets: int, n_records: int, seed: int = 0) -> Bags:
    """Flow Bags built straight from codes (a pandas round trip of 15M rows is not what we time).

    Each server's flows alternate in (client -> server) and out (server -> client) among a
    heavy-tailed number of clients, over one day, with log-normal packet and byte counts.
    """
    rng = np.random.default_rng(seed)
    offsets = heavy_tailed_offsets(n_targets, n_records, seed)
    lengths = offsets.diff().numpy()
    target = np.repeat(np.arange(n_targets), lengths)
    n_clients = 5000
    clients_per_target = np.minimum(
        1 + (rng.pareto(1.0, n_targets) * 5).astype(np.int64), n_clients
    )
    client = (
        n_targets
        + (rng.random(n_records) * clients_per_target[target]).astype(np.int64)
        + target % 97
    )
    ts = 1.6e9 + rng.random(n_records) * 86400
    order = np.lexsort((ts, target))
    ts, client = ts[order], client[order]
    inbound = rng.random(n_records) < 0.55
    pkts = np.maximum(1, rng.lognormal(1.5, 1.0, n_records)).astype(np.int64)
    columns = {
        "ts": ts,
        "proto": np.zeros(n_records, np.int64),
        "flags": np.zeros(n_records, np.int64),
        "src": np.where(inbound, client, target),
        "dst": np.where(inbound, target, client),
        "server": target,
        "sport": rng.integers(1024, 65535, n_records),
        "dport": np.full(n_records, 443),
        "pkts": pkts,
        "bytes": pkts * rng.integers(40, 1500, n_records),
        "duration": rng.random(n_records),
    }
    address = np.array(
        [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(n_targets + n_clients + 97)],
        dtype=object,
    )
    return Bags(
        kind="flows",
        columns={k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in columns.items()},
        offsets=offsets,
        targets=address[:n_targets],
        labels=torch.zeros(n_targets, dtype=torch.int64),
        vocab={
            "address": address,
            "proto": np.array(["tcp"], dtype=object),
            "flags": np.array([""], dtype=object),
        },
    )


def make_bags(kind: str, scale: float, seed: int = 0) -> Bags:
    n_targets, n_records = SIZES[kind]
    n_targets, n_records = max(10, int(n_targets * scale)), max(1000, int(n_records * scale))
    if kind == "flows":
        return synthetic_flow_bags(n_targets, n_records, seed)
    records, labels = datasets.synthetic(kind, n_targets=n_targets, n_records=n_records, seed=seed)
    return Bags.from_records(kind, records, labels)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def bench(
    kind: str, bags: Bags, device: torch.device, iterations: int, option: int, aggregation: str
) -> None:
    bags = bags.to(device)
    options = {"aggregation": aggregation} if kind == "http" else {}
    extractor = features.make(kind, **options).fit(bags)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    sync()
    start = time.perf_counter()
    originals = extractor(bags)
    sync()
    t_orig = time.perf_counter() - start
    resampler = Resampler(option, iterations=iterations)
    start, cpu_start = time.perf_counter(), time.process_time()
    vectors = 0
    for x, _ in extractor.iter_draws(bags, resampler, seed=0):
        vectors += x.shape[0]
        assert bool(torch.isfinite(x).all())
    sync()
    t_draws, cpu_draws = time.perf_counter() - start, time.process_time() - cpu_start
    cuda = (
        f", peak CUDA {torch.cuda.max_memory_allocated() / 2**30:.2f} GB"
        if device.type == "cuda"
        else ""
    )
    print(
        f"[{kind} {device}] B={len(bags):,} N={bags.num_records:,} D={originals.shape[1]}: "
        f"originals {t_orig:.2f} s; "
        f"K={iterations} option {option}: {vectors:,} vectors in {t_draws:.2f} s "
        f"(CPU {cpu_draws:.2f} s; draw + features, "
        f"{vectors / t_draws:,.0f} vectors/s, "
        f"{iterations * bags.num_records / t_draws / 1e6:.1f} M candidate records/s); "
        f"peak RSS {peak_rss_gb():.2f} GB{cuda}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the slides' sizes")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--option", type=int, default=4)
    parser.add_argument("--aggregation", default="stats", choices=["stats", "bartos"])
    parser.add_argument(
        "--device", default="all", help="cpu, cuda or all (cpu + cuda when present)"
    )
    args = parser.parse_args()
    devices = [torch.device("cpu")] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(f"threads={torch.get_num_threads()}", flush=True)
    for kind in args.kinds:
        start = time.perf_counter()
        bags = make_bags(kind, args.scale)
        print(f"[{kind}] built {bags} in {time.perf_counter() - start:.1f} s", flush=True)
        for device in devices:
            bench(kind, bags, device, args.iterations, args.option, args.aggregation)


if __name__ == "__main__":
    main()
