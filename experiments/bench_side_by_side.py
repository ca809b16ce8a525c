"""The resampler (or an extractor's draws + features) of two git revisions side by side, runs
alternated, on the same bags.

Each revision's ``alchemy_torch`` is extracted (``git archive``) and imported by its own
worker process, which builds ``bench_resample.py``'s bags once (same seed, same bags) and,
after one untimed draw of small bags (compiled kernels compile or load there), times one pass
of ``Resampler.iter_draws`` per request. The runs alternate (A, B, B, A, ...) so that both
sides see the same load. Prints every run (wall and CPU seconds), the medians per revision and the
ratio of medians B / A, with the core count and the load average.

    python experiments/bench_side_by_side.py 3f0a5ce b598597 [--runs 5] [--records 15000000]

``--features flows --scale 0.04`` times instead one pass of ``iter_draws`` (draw + features,
K = ``--iterations``, ``--option``) of that extractor on ``bench_features.py``'s bags at that
scale (0.04: 600k flows), and prints CPU seconds beside the wall seconds (on a shared machine
the CPU seconds are the steadier of the two).
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


#: the worker for ``--features``: one pass of draw + features per request
FEATURES_WORKER = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.append(sys.argv[2])
import alchemy_torch
from alchemy_torch import Resampler, features
from bench_features import make_bags
kind, scale, iterations, option = sys.argv[3], float(sys.argv[4]), *map(int, sys.argv[5:7])
bags = make_bags(kind, scale)
extractor = features.make(kind).fit(bags)
resampler = Resampler(option=option, iterations=iterations)
extractor(bags)  # the per-record values, cached once per Bags
small = make_bags(kind, 0.0005)
for _ in features.make(kind).fit(small).iter_draws(small, resampler, seed=0):
    pass  # warm-up: the compiled kernels compile or load here, not in a timed run
print(alchemy_torch.__file__, flush=True)
for _ in sys.stdin:
    start, cpu = time.perf_counter(), time.process_time()
    for _ in extractor.iter_draws(bags, resampler, seed=0):
        pass
    print(json.dumps({
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }), flush=True)
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
    parser.add_argument("--features", help="time this kind's draws + features instead")
    parser.add_argument("--scale", type=float, default=0.04, help="with --features")
    args = parser.parse_args()
    worker_code, sizes = WORKER, [args.targets, args.records, args.iterations, args.option]
    if args.features:
        worker_code, sizes = FEATURES_WORKER, [args.features, args.scale, *sizes[2:]]
    sizes = [str(v) for v in sizes]
    with tempfile.TemporaryDirectory() as tmp:
        workers = {}
        for revision in (args.a, args.b):
            root = extract(revision, Path(tmp))
            workers[revision] = subprocess.Popen(
                [sys.executable, "-c", worker_code, str(root), str(HERE), *sizes],
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
                cpu[revision].append(out.get("cpu_seconds", float("nan")))
                peak[revision] = out["peak_rss_gb"]
                print(
                    f"{revision}: {out['seconds']:.2f} s, CPU {cpu[revision][-1]:.2f} s "
                    f"(load {os.getloadavg()[0]:.1f})"
                )
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()
    median = {r: statistics.median(s) for r, s in seconds.items()}
    median_cpu = {r: statistics.median(s) for r, s in cpu.items()}
    for revision in workers:
        print(
            f"{revision}: median {median[revision]:.2f} s, CPU {median_cpu[revision]:.2f} s, "
            f"peak RSS {peak[revision]:.2f} GB"
        )
    print(
        f"ratio of medians {args.b} / {args.a}: {median[args.b] / median[args.a]:.2f}, CPU "
        f"{median_cpu[args.b] / median_cpu[args.a]:.2f} "
        f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end)"
    )


if __name__ == "__main__":
    main()
