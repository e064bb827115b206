#!/usr/bin/env bash
# Short, equal-budget runs of training variants (issue 4's comparisons). Each writes
# models/compare-<name>/ with history.json and metrics.json; summarise with
#   python benchmarks/summarise_runs.py models/compare-*
set -euo pipefail
common=(--max-train-images "${IMAGES:-10000}" --max-eval-images 2000 --epochs "${EPOCHS:-1}" --verbose 2)
run() { name=$1; shift; python model_training.py train --run-name "compare-$name" "${common[@]}" "$@"; }
run baseline
run seed-regularizer --l1 0.02 --l2 0.04
run lr-1e-3 --initial-lr 1e-3 --final-lr 1e-5
run augment --augment
