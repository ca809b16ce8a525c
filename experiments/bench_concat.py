"""torch.cat against numpy.concatenate (what ops.concat uses on the CPU) on 1-d int64 pieces.

The bucketed resampler joins a work unit's pieces; this is the measurement behind choosing
numpy there (default: 14 pieces, 4.2 MB in all).

    python experiments/bench_concat.py [--pieces 14] [--megabytes 4.2] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from alchemy_torch import ops


def median_ms(join, pieces, repeats: int) -> float:
    """Median wall milliseconds of ``join(pieces)`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        join(pieces)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=14)
    parser.add_argument("--megabytes", type=float, default=4.2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    length = int(args.megabytes * 1e6 / 8 / args.pieces)
    pieces = [torch.arange(length, dtype=torch.int64) + i for i in range(args.pieces)]
    joined = {"torch.cat": torch.cat, "ops.concat (numpy.concatenate)": ops.concat}
    assert torch.equal(ops.concat(pieces), torch.cat(pieces))
    print(
        f"{args.pieces} pieces of {length:,} int64 ({args.pieces * length * 8 / 1e6:.1f} MB), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for name, join in joined.items():
        print(f"{name}: {median_ms(join, pieces, args.repeats):.2f} ms")


if __name__ == "__main__":
    main()
