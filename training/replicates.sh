#!/usr/bin/env bash
# Train the replicate runs one at a time in the background and commit each record as it lands.
#
#   nohup nice -n 15 training/replicates.sh > /tmp/replicates.log 2>&1 &
#
# Runs whose record exists (model_store/replicates/<variant>/seed-<seed>.json) are skipped, so the
# same command resumes an interrupted set. A run is started only if it can finish before DEADLINE
# (HH:MM UTC, default 23:40; unset it with DEADLINE= to run everything) given the typical duration
# of its architecture on 2 shared CPU cores (MLP 4 min, CNN 30 min: generous, so it does not overrun).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DATA_DIR=${MNIST_DIR:-/work/shared/datasets/mnist}
DEADLINE=${DEADLINE-23:40}
MLP_RUNS=${MLP_RUNS:-"mlp mlp_dropout mlp_noise"}
MLP_SEEDS=${MLP_SEEDS:-"1 2 3 4 5"}
CNN_RUNS=${CNN_RUNS:-"cnn cnn_dropout cnn_noise"}
CNN_SEEDS=${CNN_SEEDS:-"1 2 3"}
COMMIT=${COMMIT:-1}

fits_before_deadline() {  # $1: minutes the run may take
    [ -z "$DEADLINE" ] && return 0
    local now end
    now=$(date -u +%s)
    end=$(date -u -d "$(date -u +%F) $DEADLINE" +%s)
    [ $((now + $1 * 60)) -le "$end" ]
}

commit_record() {  # $1: path of the record; retries while another commit holds the index
    [ "$COMMIT" = 1 ] || return 0
    for _ in $(seq 30); do
        if [ ! -e .git/index.lock ] && git add "$1" && git commit -q -m "Replicate run: $2 seed $3 ($(grep -m1 '"test_errors"' "$1" | tr -dc 0-9) test errors)" -- "$1"; then
            return 0
        fi
        sleep 5
    done
    echo "could not commit $1" >&2
}

run_one() {  # $1 variant, $2 seed, $3 minutes it may take
    local record="model_store/replicates/$1/seed-$2.json"
    [ -e "$record" ] && return 0
    if ! fits_before_deadline "$3"; then
        echo "$(date -u +%T) $1 seed $2: not started, would not finish before $DEADLINE UTC"
        return 1
    fi
    echo "$(date -u +%T) $1 seed $2: training"
    "$PYTHON" -m training replicate --variants "$1" --seeds "$2" --data-dir "$DATA_DIR" --no-download \
        && commit_record "$record" "$1" "$2"
}

for variant in $MLP_RUNS; do for seed in $MLP_SEEDS; do run_one "$variant" "$seed" 4; done; done
# CNN runs round-robin over the variants, so a partial set has the same n for each variant.
for seed in $CNN_SEEDS; do for variant in $CNN_RUNS; do run_one "$variant" "$seed" 30 || exit 0; done; done
echo "$(date -u +%T) done"
