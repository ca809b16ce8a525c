"""The resampler of two git revisions side by side, runs alternated, on the same bags.

Each revision's ``alchemy_torch`` is extracted (``git archive``) and imported by its own
worker process, which builds ``bench_resample.py``'s bags once (same seed, same bags) and,
after one untimed draw of small bags (compiled kernels compile or load there), times one pass
of ``Resampler.iter_draws`` per request. The runs alternate (A, B, B, A, ...) so that both
sides see the same load. Prints every run (wall and CPU seconds), the medians per revision and the
ratio of medians B / A, with the core count and the load average.

    python experiments/bench_side_by_side.py 3f0a5ce b598597 [--runs 5] [--records 15000000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: the worker: the revision's package first on the path, this folder's bench_resample builders
WORKER = """
import json, sys
sys.path.insert(0, sys.argv[1])
sys.path.append(sys.argv[2])
import torch
import alchemy_torch
from alchemy_torch import Resampler
from bench_resample import heavy_tailed_offsets, run, synthetic_bags
targets, records, iterations, option = map(int, sys.argv[3:7])
bags = synthetic_bags(heavy_tailed_offsets(targets, records))
resampler = Resampler(option=option, iterations=iterations)
resampler.draw(synthetic_bags(heavy_tailed_offsets(10, 10_000)), 0)  # warm-up: JIT, caches
print(alchemy_torch.__file__, flush=True)
for _ in sys.stdin:
    print(json.dumps(run(torch.device("cpu"), bags, resampler)), flush=True)
"""


def extract(revision: str, into: Path) -> Path:
    """The ``alchemy_torch`` folder of ``revision`` written below ``into``; returns its root."""
    archive = subprocess.run(
        ["git", "archive", revision, "alchemy_torch"],
        cwd=HERE.parent,
        check=True,
        capture_output=True,
    ).stdout
    root = into / revision
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the reference revision")
    parser.add_argument("b", help="the revision measured against it")
    parser.add_argument("--runs", type=int, default=5, help="runs per revision")
    parser.add_argument("--targets", type=int, default=3000)
    parser.add_argument("--records", type=int, default=15_000_000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--option", type=int, default=4)
    args = parser.parse_args()
    sizes = [str(v) for v in (args.targets, args.records, args.iterations, args.option)]
    with tempfile.TemporaryDirectory() as tmp:
        workers = {}
        for revision in (args.a, args.b):
            root = extract(revision, Path(tmp))
            workers[revision] = subprocess.Popen(
                [sys.executable, "-c", WORKER, str(root), str(HERE), *sizes],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": ""},
            )
        for revision, worker in workers.items():  # each imported its own revision's package
            assert worker.stdout.readline().startswith(str(Path(tmp) / revision)), revision
        seconds = {revision: [] for revision in workers}
        cpu = {revision: [] for revision in workers}
        peak = {}
        for i in range(args.runs):
            for revision in (args.a, args.b) if i % 2 == 0 else (args.b, args.a):
                worker = workers[revision]
                worker.stdin.write("run\n")
                worker.stdin.flush()
                out = json.loads(worker.stdout.readline())
                seconds[revision].append(out["seconds"])
                cpu[revision].append(out["cpu_seconds"])
                peak[revision] = out["peak_rss_gb"]
                print(
                    f"{revision}: {out['seconds']:.2f} s, {out['cpu_seconds']:.2f} CPU s "
                    f"(load {os.getloadavg()[0]:.1f})"
                )
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()
    median = {r: statistics.median(s) for r, s in seconds.items()}
    for revision in workers:
        print(
            f"{revision}: median {median[revision]:.2f} s, "
            f"{statistics.median(cpu[revision]):.2f} CPU s, peak RSS {peak[revision]:.2f} GB"
        )
    print(
        f"ratio of medians {args.b} / {args.a}: {median[args.b] / median[args.a]:.2f} "
        f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end)"
    )


if __name__ == "__main__":
    main()
