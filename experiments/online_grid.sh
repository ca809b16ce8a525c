#!/usr/bin/env bash
# Issue 20's grid: online Alchemy (DNN and setnet: fresh draws every epoch) and setnet on whole
# bags (method=original) against the fixed-K = 20 cells, paired on the same folds (seed 0).
#   all:      the three synthetic kinds (1,000 targets), N = all, 5 folds x 3 repeats; every
#             fixed cell (Alchemy 3 and 4 with RF, SVM and the DNN)
#   iot23:    flows-iot23-small capture-grouped, 5 x 3, the same cells
#   scarcity: the synthetic kinds at N = 5, 10, 20 malicious training targets, 5 x 2; the fixed
#             cells: the DNN with Alchemy 3 (online's reference) and RF with Alchemy 3 (the best
#             fixed cell at most N in the scarcity tables), RF with Alchemy 4 on HTTP at N = 5
# Then: python experiments/online_vs_fixed.py multirun/online-grid-*
#   bash experiments/online_grid.sh [all|iot23|scarcity|variants]...   (JOBS=2 cells at a time)
#   DATA="synthetic-dns" JOBS=1 bash experiments/online_grid.sh all   (a share of the grid)
#   NS="5 20" bash experiments/online_grid.sh scarcity                 (some N only)
set -euo pipefail
read -r -a SYNTHETIC <<<"${DATA:-synthetic-flows synthetic-http synthetic-dns}"

sweep() { # sweep DIR OVERRIDES...: one multirun, one cell per core, one torch thread per cell
    local dir=$1
    shift
    OMP_NUM_THREADS=1 alchemy -m "$@" device=cpu progress=false hydra/launcher=joblib \
        hydra.launcher.n_jobs="${JOBS:-2}" hydra.sweep.dir="$dir"
}

cells() { # cells DIR FIXED OVERRIDES...: the online, whole-bag and fixed cells of one setting
    local dir=$1 fixed=$2
    shift 2
    sweep "$dir" "$@" method=online model=dnn,setnet
    sweep "$dir" "$@" method=original model=setnet
    sweep "$dir" "$@" method=alchemy3 model=dnn
    sweep "$dir" "$@" method=alchemy3 model=rf model.n_jobs=1
    if [[ $fixed == every ]]; then
        sweep "$dir" "$@" method=alchemy4 model=rf model.n_jobs=1
        sweep "$dir" "$@" method=alchemy3,alchemy4 model=svm
        sweep "$dir" "$@" method=alchemy4 model=dnn
    fi
}

for part in "${@:-all iot23 scarcity}"; do
    for what in $part; do # "all iot23" as one argument works too
        case $what in
        all)
            for data in "${SYNTHETIC[@]}"; do
                cells multirun/online-grid-all every data="$data" evaluation.repeats=3
            done
            ;;
        iot23)
            cells multirun/online-grid-iot23 every data=flows-iot23-small \
                data.dataset.align_time=capture evaluation=capture evaluation.repeats=3
            ;;
        scarcity)
            for n in ${NS:-5 10 20}; do
                for data in "${SYNTHETIC[@]}"; do
                    cells multirun/online-grid-scarcity some data="$data" evaluation.repeats=2 \
                        evaluation.train_malicious="$n"
                done
            done
            if [[ " ${SYNTHETIC[*]} " == *" synthetic-http "* ]]; then
                sweep multirun/online-grid-scarcity data=synthetic-http evaluation.repeats=2 \
                    evaluation.train_malicious=5 method=alchemy4 model=rf model.n_jobs=1
            fi
            ;;
        variants)
            for data in "${SYNTHETIC[@]}"; do
                dir=multirun/online-grid-variants
                sweep $dir data="$data" evaluation.repeats=3 method=online model=setnet \
                    model.pooling=attention
                sweep $dir data="$data" evaluation.repeats=3 method=online model=setnet \
                    model.with_features=true
                sweep $dir data="$data" evaluation.repeats=3 method=online model=dnn \
                    'method.rate_schedule=[0.2,1.0,20]'
            done
            ;;
        *)
            echo "online_grid.sh: unknown part '$what' (all, iot23, scarcity, variants)" >&2
            exit 2
            ;;
        esac
    done
done
