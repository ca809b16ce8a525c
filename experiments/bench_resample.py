"""Benchmark the vectorized Resampler at the slides' NetFlow scale.

B = 3,000 targets, N = 15M records with heavy-tailed (Pareto) bag sizes, K = 20 draws per
target, option 4 (one random rate per draw, U(0.2, 0.8)). Prints records/s (records drawn
into pseudo-bags per second) and peak memory, on CPU and on CUDA when present.

    python experiments/bench_resample.py [--targets 3000] [--records 15000000] [--iterations 20]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from alchemy_torch import Bags, Resampler


def heavy_tailed_offsets(
    n_targets: int, n_records: int, seed: int = 0, alpha: float = 1.2
) -> torch.Tensor:
    """(B+1,) offsets of Pareto(alpha) bag sizes (at least 1 record each) summing to n_records."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(alpha, n_targets) + 1.0
    lengths = np.maximum(1, np.floor(weights / weights.sum() * n_records)).astype(np.int64)
    lengths[np.argmax(lengths)] += n_records - lengths.sum()
    offsets = np.zeros(n_targets + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    return torch.from_numpy(offsets)


def synthetic_bags(offsets: torch.Tensor) -> Bags:
    """Bags holding only a float64 timestamp column: the resampler reads offsets alone."""
    n = int(offsets[-1])
    b = offsets.numel() - 1
    return Bags(
        kind="flows",
        columns={"ts": torch.arange(n, dtype=torch.float64)},
        offsets=offsets,
        targets=np.arange(b).astype(str).astype(object),
        labels=torch.zeros(b, dtype=torch.int64),
        vocab={},
    )


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run(device: torch.device, bags: Bags, resampler: Resampler, seed: int = 0) -> dict:
    bags = bags.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start, cpu = time.perf_counter(), time.process_time()
    drawn = draws = 0
    for chunk in resampler.iter_draws(bags, seed):
        drawn += chunk.rows.numel()
        draws += len(chunk)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    out = {
        "device": str(device),
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,  # less inflated than wall on a loaded machine
        "draws": draws,
        "records_drawn": drawn,
        "records_per_s": drawn / seconds,
        "peak_rss_gb": peak_rss_gb(),
    }
    if device.type == "cuda":
        out["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=3000)
    parser.add_argument("--records", type=int, default=15_000_000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--option", type=int, default=4)
    parser.add_argument("--mode", default="random", choices=Resampler.MODES)
    parser.add_argument(
        "--chunk-records", type=int, default=1 << 24, help="memory budget: records per chunk"
    )
    parser.add_argument(
        "--device", default="all", help="cpu, cuda or all (cpu + cuda when present)"
    )
    args = parser.parse_args()

    bags = synthetic_bags(heavy_tailed_offsets(args.targets, args.records))
    lengths = bags.lengths
    print(
        f"B={len(bags)} N={bags.num_records:,} K={args.iterations} option={args.option} "
        f"mode={args.mode} "
        f"bag sizes: median {int(lengths.median())}, max {int(lengths.max()):,}; "
        f"threads={torch.get_num_threads()}"
    )
    resampler = Resampler(
        args.option, iterations=args.iterations, mode=args.mode, chunk_records=args.chunk_records
    )
    devices = [torch.device("cpu")] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    for device in devices:
        r = run(device, bags, resampler)
        extra = f", peak CUDA {r['peak_cuda_gb']:.2f} GB" if "peak_cuda_gb" in r else ""
        print(
            f"[{r['device']}] {r['draws']:,} draws, {r['records_drawn']:,} records "
            f"in {r['seconds']:.2f} s ({r['cpu_seconds']:.2f} CPU s) = "
            f"{r['records_per_s'] / 1e6:.1f} M records/s; peak RSS {r['peak_rss_gb']:.2f} GB{extra}"
        )


if __name__ == "__main__":
    main()
