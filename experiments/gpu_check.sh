#!/usr/bin/env bash
# One short, prepared check of the cuda paths, for a machine with a GPU (CI never has one).
# Under 12 minutes in all (each step has its own time limit; a step that fails or runs out
# of time is reported and the next one still runs):
#   1. the gpu-marked tests and the device-parametrised tests on cuda (CPU and CUDA features
#      agree within float tolerance; the same seed gives the same subset sizes);
#   2. the DNN fitted on CUDA through Lightning (models.make("dnn", device="cuda"));
#   3. the resampler and draw + features for flows at full size on cuda (goal: under 2 s);
#   4. the Alchemy 4 pipeline benchmark on cuda at the slides' sizes (no pandas loop);
#   5. one cell each of method=online with the DNN and with setnet on cuda (synthetic flows,
#      3 folds): fresh draws and their features on the device every epoch; and setnet on
#      whole bags (method=original).
#   bash experiments/gpu_check.sh [OUTDIR]        (PYTHON=... to pick the interpreter)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-.bench}
py=${PYTHON:-python3}
mkdir -p "$out"
declare -a summary=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    local verdict=ok
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then verdict="TIMEOUT"; elif [ "$rc" -ne 0 ]; then verdict="FAILED (rc $rc)"; fi
    summary+=("$name: $verdict in $((SECONDS - start)) s")
}

"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA here'; print(torch.__version__, torch.cuda.get_device_name(), '|', torch.get_num_threads(), 'CPU threads')" || exit 1

step gpu-tests 120 "$py" -m pytest -q -x -m "gpu or not slow" -k "cuda or gpu" -p no:cacheprovider tests

step dnn-cuda 60 "$py" - <<'EOF'
import numpy as np
import torch
from alchemy_torch import models

rng = np.random.default_rng(0)
X = rng.normal(size=(4000, 50))
y = (X[:, :5].sum(1) + rng.normal(size=4000) > 0).astype(np.int64)
dnn = models.make("dnn", max_epochs=3, device="cuda").fit(X[:3000], y[:3000])
p = dnn.predict_proba(X[3000:])[:, 1]
assert dnn.device_.type == "cuda" and torch.cuda.max_memory_allocated() > 0, dnn.device_
print(f"dnn on {dnn.device_}: {dnn.n_epochs_} epochs, "
      f"accuracy {((p > 0.5) == y[3000:]).mean():.3f}, "
      f"peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
EOF

step resample-cuda 45 "$py" experiments/bench_resample.py --device cuda
step features-flows-cuda 75 "$py" experiments/bench_features.py --kinds flows --device cuda
step pipeline-cuda 180 "$py" experiments/bench_pipeline.py --device cuda --no-reference

for model in dnn setnet; do
    step "online-$model-cuda" 120 "$py" -m alchemy_torch.app method=online model=$model \
        evaluation=quick device=cuda hydra.run.dir="$out/online-$model"
done
step original-setnet-cuda 90 "$py" -m alchemy_torch.app method=original model=setnet \
    evaluation=quick device=cuda hydra.run.dir="$out/original-setnet"

echo "== summary (logs in $out)"
printf '%s\n' "${summary[@]}" | tee "$out/summary.log"
