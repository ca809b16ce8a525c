"""alchemy-score on 1M synthetic flow records: read, bags, score, write, per method.

python experiments/bench_score.py [--records 1000000]

Fits Original and Alchemy 4 (the slides' flows settings, K = 20, RF) on the default synthetic
flows (1,000 targets), saves each as a detector, writes ``--records`` synthetic flow records
(5,000 per target, as the slides' NetFlow set) to a canonical Parquet file and times
``alchemy-score``'s steps on it, end to end and per stage, in wall and CPU seconds (CPU: all
threads together). Prints cores and load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from alchemy_torch import Bags, datasets, features, methods, models
from alchemy_torch.app import score
from alchemy_torch.scale import synthetic_chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    print(
        f"cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, "
        f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "flows.parquet"
        records = next(synthetic_chunks("flows", args.records, chunk_records=args.records))
        records.to_parquet(logs)
        records, labels = datasets.synthetic("flows")
        train = Bags.from_records("flows", records, labels)
        for name in ("original", "alchemy4"):
            method = methods.make(name, kind="flows")
            method.fit(train, features.make("flows"), models.make("rf"), seed=0)
            detector = method.save(Path(tmp) / f"{name}.joblib")
            start, cpu = time.perf_counter(), time.process_time()
            loaded = methods.load(detector)
            ds = datasets.from_files(logs, "flows", unknown="keep")
            read, read_cpu = time.perf_counter() - start, time.process_time() - cpu
            table = score.rank(loaded, ds)
            table.to_csv(Path(tmp) / "ranked.csv", index=False)
            total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"{name}: {len(ds.records):,} records, {len(table)} targets: {total:.1f} s wall, "
                f"{total_cpu:.1f} s CPU (load + read {read:.1f} s wall, {read_cpu:.1f} s CPU; "
                f"bags + score + CSV {total - read:.1f} s wall, {total_cpu - read_cpu:.1f} s CPU)"
            )


if __name__ == "__main__":
    main()
