"""Segment primitives on the inputs the flow features really pass them: numpy, numba, torch.compile.

Draws ``bench_features.py``'s synthetic flows (``--scale`` of the slides' 15M flows, K = 20,
option 4), extracts their features once while recording every call of
``ops.segment_value_runs`` and ``ops.segment_diff`` (the primitives with a compiled kernel),
then times the recorded calls on three paths taking turns, best of ``--runs``: the numpy path
(compiled kernels off), the numba kernel (``alchemy_torch.ops.kernels``) and
``torch.compile`` of the torch path (``ops.device_branches``, inductor on the CPU); first
calls (compiling) apart. Checks that the three agree value by value.

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


def interleaved(paths: dict, calls: list[tuple], runs: int) -> tuple[dict, dict]:
    """Best total seconds of every path over all ``calls``, the paths taking turns run by run
    (all see the same load), and each path's last outputs. ``paths``: name -> (fn, context)."""
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    outputs = {}
    for _ in range(runs):
        for name, (fn, context) in paths.items():
            with context():
                start = time.perf_counter()
                outputs[name] = [fn(*args) for args in calls]
                seconds[name].append(time.perf_counter() - start)
    return {name: min(s) for name, s in seconds.items()}, outputs


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
        paths = {
            "numpy": (fn, lambda: kernels.compiled_kernels(False)),
            "numba": (fn, lambda: kernels.compiled_kernels(True)),
        }
        compile_s = {}
        if not args.no_compile:
            paths["torch.compile"] = (torch.compile(fn, dynamic=True), ops.device_branches)
        for path, (call, context) in paths.items():  # compile (or load) every path first
            with context():
                start = time.perf_counter()
                call(*recorded[0])
                compile_s[path] = time.perf_counter() - start
        seconds, outputs = interleaved(paths, recorded, args.runs)
        agree = all(same(a, b) for out in outputs.values() for a, b in zip(out, outputs["numpy"]))
        timings = ", ".join(
            f"{path} {s:.3f} s (first call {compile_s[path]:.1f} s)" for path, s in seconds.items()
        )
        print(
            f"{name}: {len(recorded)} calls; {timings}; equal: {agree} "
            f"(load {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
