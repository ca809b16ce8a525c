#!/usr/bin/env bash
# Leave-one-capture-set-out transfer on the real flows sets (experiments/README.md, "Train on
# captures, test on others"): for every flows set with both classes, train on all the other
# flows sets (data=union) and test on it; Original and Alchemy 1-4 with RF.
#   experiments/transfer_real.sh [REPEATS [TEST_SET...]]   # then: alchemy-report multirun/transfer
set -euo pipefail
REPEATS=${1:-5}
ALCHEMY=${ALCHEMY:-.venv/bin/alchemy}
ALL=(flows-iot23-small flows-ctu-sme11 flows-ctu13-s6-menti flows-ctu-malware-botnet-4
     flows-ctu-normal-attacked flows-android-mischief-rat01 flows-ctu-benign-2023-02-20)
# flows-android-mischief-rat01 (no benign target) and flows-ctu-benign-2023-02-20 (no malicious
# one) cannot be tested on: they only train
TESTS=(flows-iot23-small flows-ctu-sme11 flows-ctu13-s6-menti flows-ctu-malware-botnet-4
       flows-ctu-normal-attacked)
if [ $# -gt 1 ]; then TESTS=("${@:2}"); fi
for test in "${TESTS[@]}"; do
    others=$(printf '%s\n' "${ALL[@]}" | grep -vx "$test" | paste -sd, -)
    "$ALCHEMY" -m evaluation=transfer data=union data.name=others "data.names=[$others]" \
        data.dataset.align_time=capture "evaluation.test_names=[$test]" \
        evaluation.repeats="$REPEATS" model=rf method=original,alchemy1,alchemy2,alchemy3,alchemy4 \
        hydra.sweep.dir=multirun/transfer "hydra.sweep.subdir=$test/\${hydra:runtime.choices.method}"
done
