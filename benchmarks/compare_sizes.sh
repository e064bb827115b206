#!/usr/bin/env bash
# Image size 32 vs 64 px on the same budget (the README's table): each run starts from the shipped
# model's weights, trains 1 epoch on 20,000 training images and is scored on the same 4,000
# validation and 4,000 test images, beside the shipped model itself. Writes models/size-32px/ and
# models/size-64px/; about 20 minutes on 2 CPUs.
#   bash benchmarks/compare_sizes.sh
set -euo pipefail
common=(--init-from models/default --max-train-images 20000 --max-eval-images 4000 --epochs 1
        --augment shift-flip --initial-lr 5e-5 --final-lr 5e-6 --verbose 2)
for size in 32 64; do
  python model_training.py train --run-name "size-${size}px" --image-size "$size" "${common[@]}"
done
python - <<'PY'
import json
from aidetect.train import evaluate_saved_model
print(f"{'variant':28s} {'epoch s':>8s} {'val acc':>8s} {'test acc':>9s} {'test AUC':>9s}")
shipped_val = evaluate_saved_model("models/default", "data", "validation", mirror=False, limit=4000)
shipped_test = evaluate_saved_model("models/default", "data", "test", limit=4000)
print(f"{'shipped model':28s} {'-':>8s} {shipped_val['accuracy']:8.4f} {shipped_test['accuracy']:9.4f} "
      f"{shipped_test['auc']:9.4f}")
for size in (32, 64):
    run = f"models/size-{size}px"
    history, metrics = (json.load(open(f"{run}/{name}.json")) for name in ("history", "metrics"))
    print(f"{run:28s} {history['epoch_seconds'][0]:8.0f} {history['val_accuracy'][0]:8.4f} "
          f"{metrics['accuracy']:9.4f} {metrics['auc']:9.4f}")
PY
