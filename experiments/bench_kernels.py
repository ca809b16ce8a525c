"""Segment primitives on the inputs the flow features really pass them: numpy, numba, torch.compile.

Draws ``bench_features.py``'s synthetic flows (``--scale`` of the slides' 15M flows, K = 20,
option 4), extracts their features once while recording every call of
``ops.segment_value_runs`` and ``ops.segment_diff`` (the primitives with a compiled kernel),
then times each recorded call on three paths, best of ``--runs``: the numpy path (compiled
kernels off), the numba kernel (``alchemy_torch.ops.kernels``) and ``torch.compile`` of the
torch path (``ops.device_branches``, inductor on the CPU; its compile time apart). Checks
that the three agree value by value.

    OMP_NUM_THREADS=1 python experiments/bench_kernels.py [--scale 0.04] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from bench_features import synthetic_flow_bags

from alchemy_torch import Resampler, features, ops
from alchemy_torch.ops import kernels
from alchemy_torch.ops import segment as seg

PRIMITIVES = ("segment_value_runs", "segment_diff")


def record(bags, draws) -> dict[str, list[tuple]]:
    """The arguments of every call of the PRIMITIVES while the flow features of ``draws`` run."""
    calls: dict[str, list[tuple]] = {name: [] for name in PRIMITIVES}
    originals = {name: getattr(seg, name) for name in PRIMITIVES}

    def recorder(name):
        def call(*args):
            calls[name].append(args)
            return originals[name](*args)

        return call

    extractor = features.make("flows").fit(bags)
    try:
        for name in PRIMITIVES:
            setattr(seg, name, recorder(name))
        extractor(bags, draws)
    finally:
        for name, fn in originals.items():
            setattr(seg, name, fn)
    return calls


def best(fn, calls, runs: int) -> tuple[float, list]:
    """Best total seconds of ``fn`` over all ``calls`` in ``runs`` runs, and the last outputs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = [fn(*args) for args in calls]
        times.append(time.perf_counter() - start)
    return min(times), out


def same(a, b) -> bool:
    a, b = (a,) if isinstance(a, torch.Tensor) else a, (b,) if isinstance(b, torch.Tensor) else b
    return all(torch.equal(x, y) for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.04)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args()
    bags = synthetic_flow_bags(int(3_000 * args.scale), int(15_000_000 * args.scale))
    draws = Resampler(4, iterations=20).draw(bags, 0)
    calls = record(bags, draws)
    print(
        f"{len(bags)} targets, {bags.num_records:,} flows, {draws.rows.numel():,} drawn; "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, threads {torch.get_num_threads()}"
    )
    for name, recorded in calls.items():
        fn = getattr(seg, name)
        with kernels.compiled_kernels(False):
            numpy_s, reference = best(fn, recorded, args.runs)
        with kernels.compiled_kernels(True):
            fn(*recorded[0])  # compile or load the kernel
            numba_s, out = best(fn, recorded, args.runs)
        line = f"{name}: {len(recorded)} calls; numpy {numpy_s:.3f} s, numba {numba_s:.3f} s"
        agree = all(same(a, b) for a, b in zip(out, reference))
        if not args.no_compile:
            compiled = torch.compile(fn, dynamic=True)
            with ops.device_branches():
                start = time.perf_counter()
                compiled(*recorded[0])
                compile_s = time.perf_counter() - start
                torch_s, out = best(compiled, recorded, args.runs)
            agree &= all(same(a, b) for a, b in zip(out, reference))
            line += f", torch.compile {torch_s:.3f} s (+ {compile_s:.1f} s compiling)"
        print(f"{line}; equal: {agree} (load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
