#!/usr/bin/env bash
# Short, equal-budget runs of training variants (the README's comparison table): 1 epoch on 10,000
# training images, 2,000 validation and test images each. Each run writes models/compare-<name>/;
# a table of their first-epoch numbers is printed at the end.
#   bash benchmarks/compare_variants.sh            (IMAGES=... EPOCHS=... to change the budget)
set -euo pipefail
common=(--max-train-images "${IMAGES:-10000}" --max-eval-images 2000 --epochs "${EPOCHS:-1}" --verbose 2)
run() { name=$1; shift; python model_training.py train --run-name "compare-$name" "${common[@]}" "$@"; }
run seed-lr --initial-lr 1e-4                                 # the seed's schedule, our regularizer
run seed-regularizer --initial-lr 1e-4 --l1 0.02 --l2 0.04    # the seed's schedule and regularizer
run lr-1e-3 --initial-lr 1e-3                                 # the shipped model's schedule
python - <<'PY'
import glob, json
print(f"{'run':28s} {'train loss':>10s} {'train acc':>9s} {'train AUC':>9s} {'val AUC':>8s} {'s/epoch':>8s}")
for run in sorted(glob.glob("models/compare-*")):
    h = json.load(open(f"{run}/history.json"))
    print(f"{run:28s} {h['loss'][0]:10.3f} {h['accuracy'][0]:9.3f} {h['auc'][0]:9.3f} "
          f"{h['val_auc'][0]:8.3f} {h['epoch_seconds'][0]:8.0f}")
PY
