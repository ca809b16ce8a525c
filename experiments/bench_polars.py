"""Flows draws + features against a polars group-by computing the same 49 features, side by
side on the same draws (issue 21's comparison).

The fast path times ``FlowFeatures.iter_draws`` (draw + features, K = 20, option 4) on
``bench_features.py``'s flow bags; polars is given the draws for free (their record indices)
and times the gather of the records into one frame plus its group-bys: per (draw, direction)
stats5 of packets and bytes per packet, distinct sizes, entropy, mode share and kurtosis of
bytes; per (draw, client) the inter-arrival statistics of in-flows; per (draw, 300 s bin) the
flows, distinct clients and sum over clients of |#in - #out|, then their statistics over the
non-empty bins (the fast path also counts empty bins, which polars would have to
materialise: the same work or more). Runs alternate (fast, polars, fast, ...).
``pip install polars`` (the ``bench`` extra); it is no dependency of the package.

    POLARS_MAX_THREADS=1 OMP_NUM_THREADS=1 python experiments/bench_polars.py [--scale 0.04]
        [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import polars as pl
from bench_features import make_bags

from alchemy_torch import Resampler, features


def stats5(column: str) -> list[pl.Expr]:
    c = pl.col(column)
    stats = [c.mean(), c.std(ddof=0), c.min(), c.max(), c.median()]
    return [e.alias(f"{column}_{n}") for e, n in zip(stats, ("mean", "std", "min", "max", "med"))]


def polars_features(frame: pl.DataFrame, bin_seconds: float = 300.0) -> pl.DataFrame:
    """(P, 49) features of the draws in ``frame`` (draw, ts, inbound, client, pkts, bytes)."""
    frame = frame.with_columns(bpp=pl.col("bytes") / pl.max_horizontal("pkts", 1))
    sizes = (
        frame.group_by("draw", "inbound", "bytes")
        .agg(pl.len().alias("count"))
        .group_by("draw", "inbound")
        .agg(
            pl.len().alias("nunique"),
            (pl.len() / pl.col("count").sum()).alias("unique_ratio"),
            pl.col("count").entropy().alias("entropy"),
            (pl.col("count").max() / pl.col("count").sum()).alias("mode_share"),
        )
    )
    per_direction = (
        frame.group_by("draw", "inbound")
        .agg(
            *stats5("pkts"),
            *stats5("bpp"),
            pl.col("bytes").kurtosis(fisher=False).alias("kurtosis"),
        )
        .join(sizes, on=["draw", "inbound"])
        .pivot(on="inbound", index="draw")
    )
    gaps = (
        frame.filter(pl.col("inbound"))
        .sort("draw", "client", "ts")
        .with_columns(gap=pl.col("ts").diff().over("draw", "client"))
        .drop_nulls("gap")
        .group_by("draw", "client")
        .agg(*stats5("gap")[1:])
    )
    access = gaps.group_by("draw").agg(pl.all().exclude("client").mean(), pl.len().alias("n"))
    clients = frame.group_by("draw").agg(pl.col("client").n_unique().alias("clients"))
    binned = frame.with_columns(
        bin=((pl.col("ts") - pl.col("ts").min().over("draw")) / bin_seconds).floor()
    )
    per_client = binned.group_by("draw", "bin", "client").agg(
        pl.len().alias("flows"),
        (2 * pl.col("inbound").sum().cast(pl.Int64) - pl.len()).abs().alias("unmatched"),
    )
    per_bin = per_client.group_by("draw", "bin").agg(
        pl.col("flows").sum(), pl.len().alias("clients"), pl.col("unmatched").sum()
    )
    bins = per_bin.group_by("draw").agg(
        *stats5("flows"),
        *stats5("clients"),
        pl.col("unmatched").mean().alias("unmatched_mean"),
        pl.col("unmatched").std(ddof=0).alias("unmatched_std"),
        (pl.col("unmatched").sum() / pl.col("flows").sum()).alias("unmatched_ratio"),
        ((pl.col("bin").max() + 1) / pl.len()).alias("share"),
    )
    return (
        per_direction.join(clients, on="draw")
        .join(access, on="draw", how="left")
        .join(bins, on="draw")
        .with_columns(access_ratio=pl.col("n") / pl.col("clients"))
        .sort("draw")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.04)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bags = make_bags("flows", args.scale)
    extractor = features.make("flows").fit(bags)
    extractor(bags)  # the per-record values, cached once per Bags
    resampler = Resampler(4, iterations=20)
    draws = [d for _, d in extractor.iter_draws(bags, resampler, seed=0)]
    c = {k: v.numpy() for k, v in bags.columns.items()}
    inbound = c["dst"] == c["server"]
    columns = {
        "ts": c["ts"],
        "inbound": inbound,
        "client": np.where(inbound, c["src"], c["dst"]),
        "pkts": c["pkts"],
        "bytes": c["bytes"],
    }

    def fast() -> int:
        return sum(x.shape[0] for x, _ in extractor.iter_draws(bags, resampler, seed=0))

    def polars() -> int:
        n, first = 0, 0
        for d in draws:
            rows, lengths = d.rows.numpy(), d.offsets.diff().numpy()
            frame = pl.DataFrame(
                {"draw": np.repeat(np.arange(first, first + lengths.size), lengths)}
                | {name: values[rows] for name, values in columns.items()}
            )
            out = polars_features(frame)
            n, first = n + out.height, first + lengths.size
        return n

    seconds: dict[str, list[float]] = {"fast": [], "polars": []}
    for i in range(args.runs):
        for name, run in (("fast", fast), ("polars", polars))[:: 1 if i % 2 == 0 else -1]:
            start = time.perf_counter()
            vectors = run()
            seconds[name].append(time.perf_counter() - start)
            print(f"{name}: {vectors:,} vectors in {seconds[name][-1]:.2f} s", flush=True)
    fast_s, polars_s = (statistics.median(seconds[k]) for k in ("fast", "polars"))
    print(
        f"{bags.num_records:,} flows, K = 20, option 4: fast {fast_s:.2f} s, polars "
        f"{polars_s:.2f} s ({pl.thread_pool_size()} threads): {polars_s / fast_s:.1f}x "
        f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
