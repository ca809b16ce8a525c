"""Command line: write a synthetic partitioned corpus; compute its vectors partition by partition.

    python -m alchemy_torch.scale write-synthetic flows --records 100_000_000 --out DIR
    python -m alchemy_torch.scale vectors DIR --out VECTORS [--workers N | --scheduler ADDR]

Each command ends with one line: records or vectors, seconds and the peak resident memory;
while it runs, a progress bar on stderr (records/s, time left) where stderr is a terminal and
``--quiet`` is not given.
"""

from __future__ import annotations

import argparse
import resource
import time

from alchemy_torch import Resampler, features
from alchemy_torch.io.schema import KINDS
from alchemy_torch.methods import PAPER_ITERATIONS
from alchemy_torch.ops.segment import CHUNK_RECORDS
from alchemy_torch.scale.dataset import PartitionedRecords
from alchemy_torch.scale.synthetic import PARTITION_RECORDS, WRITE_CHUNK_RECORDS, write_synthetic
from alchemy_torch.scale.vectors import fit_extractor, write_vectors


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _write_synthetic(args) -> None:
    start = time.perf_counter()
    n = write_synthetic(
        args.kind,
        args.records,
        args.out,
        partitions=args.partitions,
        chunk_records=args.chunk_records,
        seed=args.seed,
        progress=False if args.quiet else None,
    )
    print(
        f"wrote {n:,} {args.kind} records to {args.out} in {time.perf_counter() - start:.1f} s; "
        f"peak RSS {peak_rss_gb():.2f} GB"
    )


def _vectors(args) -> None:
    source = PartitionedRecords(args.dataset)
    start = time.perf_counter()
    extractor = fit_extractor(source, features.make(source.kind))
    fitted = time.perf_counter() - start
    resampler = Resampler(args.option, iterations=args.iterations, chunk_records=args.chunk_records)
    client = _client(args)
    try:
        table = write_vectors(
            source,
            extractor,
            resampler,
            args.seed,
            args.out,
            client=client,
            progress=False if args.quiet else None,
        )
    finally:
        if client is not None:
            client.close()
    seconds = time.perf_counter() - start
    print(table.to_string(index=False))
    print(
        f"{table.vectors.sum():,} vectors of {table.records.sum():,} records in "
        f"{len(table)} partitions: {seconds:.1f} s (context pass {fitted:.1f} s); "
        f"peak RSS of this process {peak_rss_gb():.2f} GB"
    )


def _client(args):
    if args.scheduler is None and args.workers is None:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise SystemExit(
            "--workers/--scheduler need Dask: pip install 'alchemy_torch[scale]'"
        ) from exc
    if args.scheduler is not None:
        return Client(args.scheduler)
    return Client(LocalCluster(n_workers=args.workers, threads_per_worker=1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alchemy_torch.scale", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write-synthetic", help="a synthetic corpus as a partitioned dataset")
    w.add_argument("kind", choices=KINDS)
    w.add_argument("--records", type=int, required=True, help="e.g. 100_000_000")
    w.add_argument("--out", required=True, help="a new folder")
    w.add_argument(
        "--partitions", type=int, help=f"default: one per ~{PARTITION_RECORDS:_} records"
    )
    w.add_argument(
        "--chunk-records", type=int, default=WRITE_CHUNK_RECORDS, help="records in memory"
    )
    w.add_argument("--seed", type=int, default=0)
    w.set_defaults(run=_write_synthetic)
    v = sub.add_parser("vectors", help="original and pseudo vectors of every partition")
    v.add_argument("dataset", help="a folder written by write-synthetic or write_partitioned")
    v.add_argument("--out", required=True)
    v.add_argument("--iterations", type=int, default=PAPER_ITERATIONS)
    v.add_argument("--option", type=int, default=4, choices=Resampler.OPTIONS)
    v.add_argument("--chunk-records", type=int, default=CHUNK_RECORDS, help="draw memory budget")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--workers", type=int, help="run on a local Dask cluster of N processes")
    v.add_argument("--scheduler", help="run on the Dask cluster at this address")
    v.set_defaults(run=_vectors)
    for command in (w, v):  # the bars go to stderr, and only where it is a terminal
        command.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
