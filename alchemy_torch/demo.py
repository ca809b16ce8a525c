"""A first run: synthetic bags, Alchemy draws, and a short summary (``make demo``)."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from alchemy_torch import Bags, Resampler, resolve_device


def demo_records(n_targets: int = 200, seed: int = 0) -> pd.DataFrame:
    """Flow records with Pareto bag sizes; every 10th server is malicious and small."""
    rng = np.random.default_rng(seed)
    malicious = np.arange(n_targets) % 10 == 0
    sizes = np.where(malicious, 5 + rng.poisson(20, n_targets), 30 + (rng.pareto(1.2, n_targets) * 100).astype(int))
    server = np.repeat([f"10.0.{i // 256}.{i % 256}" for i in range(n_targets)], sizes)
    n = sizes.sum()
    return pd.DataFrame({
        "ts": 1.6e9 + rng.random(n) * 86400, "proto": "tcp", "src": rng.choice([f"192.168.0.{i}" for i in range(50)], n),
        "dst": server, "sport": rng.integers(1024, 65535, n), "dport": 443, "pkts": rng.integers(1, 30, n),
        "bytes": rng.integers(60, 20000, n), "flags": "", "server": server, "label": np.repeat(malicious.astype(int), sizes),
    })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--option", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    bags = Bags.from_records("flows", demo_records(args.targets, args.seed)).to(resolve_device(args.device))
    print(bags)
    resampler = Resampler(args.option, iterations=args.iterations)
    draws = resampler.draw(bags, seed=args.seed)
    print(f"{resampler} -> {len(draws)} pseudo-bags, {draws.rows.numel():,} records")
    sizes = draws.lengths.to(torch.float64)
    for label, name in ((1, "malicious"), (0, "benign")):
        mine = bags.labels[draws.owner] == label
        print(f"  {name:9s}: {int(mine.sum()):5d} pseudo-bags of {sizes[mine].mean():7.1f} records on average "
              f"(originals {bags.lengths[bags.labels == label].double().mean():7.1f})")


if __name__ == "__main__":
    main()
