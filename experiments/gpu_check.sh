#!/usr/bin/env bash
# One short, prepared check of the cuda paths, for a machine with a GPU (CI never has one).
# Runs the device-parametrised tests (cpu + cuda) and the benchmarks on cuda at full size.
#   bash experiments/gpu_check.sh [OUTDIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-.bench}
mkdir -p "$out"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA here'; print(torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -x -k "cuda or gpu" tests 2>&1 | tee "$out/gpu-tests.log"
(cd experiments && python3 bench_resample.py --device cuda && python3 bench_features.py --device cuda) 2>&1 | tee "$out/gpu-bench.log"
