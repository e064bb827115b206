"""Detectors of full-size images against the two controls, on held-out sources, as users meet them.

For each model (and the content and format controls, fitted on the same train split), on the
test split (or --split validation) of a labelled set prepared by source (e.g. `model_training.py prepare --source
../shared/data/wild-crops --data-dir data-crops`): the images as they are and after JPEG q90 /
q75 / q60, downscaling 0.75x / 0.5x (Lanczos, re-saved JPEG q90) and a screenshot-like round trip
(0.5x bilinear, PNG). Every image goes through the serving path (Predictor.classify: routing,
crops, mirror, calibration). Per change: AUC of photo-style generated images against all camera
photos (the headline), AUC of all, camera photos called AI-generated at the shipped threshold
(false positives), AI images caught, and per generator family and style.

    python benchmarks/wild_crops.py --data-dir data-crops --models models/crops-npr-residual models/compact \
        --json docs/wild_crops.json [--write-records]     (--write-records: wild_crops.json in each run folder)

Cross-validation over whole sources (`prepare --folds 4 --fold k` into data-crops-f<k>, one model
trained per fold): name each fold's model alike, then pool the folds' per-image scores, so every
source of the set is scored once by a model that never saw it:

    python benchmarks/wild_crops.py --data-dir data-crops-f0 --models recipe=models/cv-f0 compact=models/compact \
        --json cv/f0.json          (and so on for each fold)
    python benchmarks/wild_crops.py --pool cv/f0.json cv/f1.json cv/f2.json cv/f3.json --json cv/pooled.json
"""
import argparse
import io
import json
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
from PIL import Image

from aidetect import control, data, images
from aidetect.evaluate import breakdown, compute_metrics
from aidetect.files import write_atomically
from aidetect.labels import DEFAULT_THRESHOLD, FAKE_INDEX, REAL_INDEX
from aidetect.sources import manifest_groups


def _encode(image: Image.Image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def _scaled(image: Image.Image, factor: float, method) -> Image.Image:
    return image.resize((round(image.width * factor), round(image.height * factor)), method)


CHANGES: Dict[str, Callable[[Image.Image], bytes]] = {
    "none": lambda image: _encode(image, "PNG"),
    "JPEG q90": lambda image: _encode(image, "JPEG", quality=90),
    "JPEG q75": lambda image: _encode(image, "JPEG", quality=75),
    "JPEG q60": lambda image: _encode(image, "JPEG", quality=60),
    "downscale 0.75x": lambda image: _encode(_scaled(image, 0.75, Image.LANCZOS), "JPEG", quality=90),
    "downscale 0.5x": lambda image: _encode(_scaled(image, 0.5, Image.LANCZOS), "JPEG", quality=90),
    "screenshot (0.5x, PNG)": lambda image: _encode(_scaled(image, 0.5, Image.BILINEAR), "PNG"),
}


def score(labels: np.ndarray, prob_ai: np.ndarray, groups: Dict[str, List[str]],
          threshold: float = DEFAULT_THRESHOLD) -> Dict:
    """The numbers of one model under one change."""
    real = labels == REAL_INDEX
    photo = real | (np.array(groups["style"]) == "photo")
    sources = np.array(groups["source"])
    metrics = compute_metrics(labels[photo], prob_ai[photo], threshold)
    return {
        "auc_photo_style": metrics["auc"],
        "auc_all_styles": compute_metrics(labels, prob_ai, threshold)["auc"],
        "camera_photos_called_ai": float(np.mean(prob_ai[real] >= threshold)),
        "ai_images_caught": float(np.mean(prob_ai[labels == FAKE_INDEX] >= threshold)),
        "photo_style_ai_caught": float(np.mean(prob_ai[~real & photo] >= threshold)),
        "by_family": breakdown(groups["family"], labels, prob_ai, threshold),
        "by_style": breakdown(groups["style"], labels, prob_ai, threshold),
        "by_real_source": {source: row for source, row in breakdown(groups["source"], labels, prob_ai, threshold).items()
                           if row["fake"] == 0},
        # each generated source (10+ images) against all the split's camera photos
        "auc_by_generated_source": {
            source: compute_metrics(labels[real | (sources == source)], prob_ai[real | (sources == source)], threshold)["auc"]
            for source in sorted(set(sources[~real])) if np.sum(sources[~real] == source) >= 10},
    }


def print_table(table: Dict, groups: Dict, changes: List[str], heading: str) -> None:
    print(heading + "; AUC photo-style / all styles, camera photos called AI, AI caught, at the shipped threshold")
    print(f"{'detector':28s} " + " ".join(f"{name[:22]:>24s}" for name in changes))
    for detector, rows in table.items():
        cells = [f"{r['auc_photo_style']:.2f}/{r['auc_all_styles']:.2f} {r['camera_photos_called_ai']:4.0%} {r['ai_images_caught']:4.0%}"
                 for r in rows.values()]
        print(f"{detector[:28]:28s} " + " ".join(f"{c:>24s}" for c in cells))
    for detector, rows in table.items():
        first = next(iter(rows.values()))["auc_by_generated_source"]
        print(f"{detector}, {changes[0]}: AUC per generated source vs all camera photos: "
              + ", ".join(f"{source} {auc:.3f}" for source, auc in first.items()))


def pool(files: List[str]) -> Dict:
    """The folds' per-image scores as one held-out set: each detector (by its --models label) and
    change scored on all folds' images together, and per fold."""
    runs = [json.loads(Path(f).read_text()) for f in files]
    for file, run in zip(files, runs):
        if not isinstance(run.get("images"), dict) or "labels" not in run["images"]:
            raise ValueError(f"{file} holds no per-image scores: write it with this script's --json (not --pool)")
    labels = np.concatenate([np.array(run["images"]["labels"]) for run in runs])
    groups = {key: sum((run["images"][key] for run in runs), []) for key in ("source", "family", "style")}
    detectors = [d for d in runs[0]["detectors"] if all(d in run["detectors"] for run in runs)]
    dropped = sorted({d for run in runs for d in run["detectors"]} - set(detectors))
    if dropped:             # e.g. fold models under their own names: label them alike (--models recipe=PATH)
        print(f"not in every fold, left out: {', '.join(dropped)}")
    if not detectors:
        raise ValueError("no detector is in every fold: name each fold's model alike with --models LABEL=PATH")
    changes = [c for c in runs[0]["detectors"][detectors[0]] if all(c in run["detectors"][d] for run in runs for d in detectors)]
    table = {d: {c: score(labels, np.concatenate([run["detectors"][d][c]["prob_ai"] for run in runs]), groups)
                 for c in changes} for d in detectors}
    per_fold = {d: [{"data_dir": run["data_dir"], "auc_photo_style": run["detectors"][d][changes[0]]["auc_photo_style"],
                     "auc_all_styles": run["detectors"][d][changes[0]]["auc_all_styles"]} for run in runs] for d in detectors}
    print_table(table, groups, changes, f"{len(labels)} images of {len(runs)} folds, each scored by its fold's detectors")
    for d, rows in per_fold.items():
        print(f"{d}, per fold ({changes[0]}): " + ", ".join(f"{r['data_dir']} {r['auc_photo_style']:.3f}/{r['auc_all_styles']:.3f}"
                                                     for r in rows))
    return {"folds": files, "test_images": len(labels), "threshold": DEFAULT_THRESHOLD, "detectors": table, "per_fold": per_fold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data-crops")
    parser.add_argument("--split", default="test", choices=["test", "validation"],
                        help="held-out sources to measure on (validation also chose each run's epoch)")
    parser.add_argument("--models", nargs="*", default=[],
                        help=".keras files or run folders, each optionally as LABEL=PATH (its name in the table)")
    parser.add_argument("--controls", nargs="*", default=["content", "format"], choices=list(control.FEATURES))
    parser.add_argument("--changes", nargs="*", default=list(CHANGES), choices=list(CHANGES))
    parser.add_argument("--json", help="write every number to this JSON file")
    parser.add_argument("--write-records", action="store_true", help="also wild_crops.json in each model's folder")
    parser.add_argument("--pool", nargs="+", metavar="JSON", help="no scoring: pool these runs' --json files (the folds "
                        "of a cross-validation) and score their images as one held-out set")
    args = parser.parse_args()
    if args.pool:
        try:
            pooled = pool(args.pool)
        except (OSError, ValueError) as error:
            parser.error(str(error))
        if args.json:
            write_atomically(args.json, json.dumps(pooled, indent=2))
        return

    from aidetect.predict import Predictor

    paths, labels = data.list_split(args.data_dir, args.split)
    groups = manifest_groups(args.data_dir, paths)
    originals = [Image.fromarray(images.load_rgb(path)) for path in paths]
    changed = {name: [CHANGES[name](image) for image in originals] for name in args.changes}
    table = {}
    for kind in args.controls:
        fitted, _, _ = control.fit(args.data_dir, kind)
        table[f"{kind} control"] = {}
        for name, files in changed.items():
            prob_ai = fitted.predict_proba(control.features(kind, [images.load_rgb(b) for b in files]))[:, 1]
            table[f"{kind} control"][name] = dict(score(labels, prob_ai, groups), prob_ai=prob_ai.tolist())
    for model in args.models:
        label, _, model = model.rpartition("=")
        predictor = Predictor.load(model)
        rows, started = {}, time.perf_counter()
        for name, files in changed.items():
            answers = predictor.classify(files, [str(p) for p in paths])
            prob_ai = np.array([a.prob_ai for a in answers])
            rows[name] = dict(score(labels, prob_ai, groups), prob_ai=prob_ai.tolist(),
                              answered_by=sorted({a.model for a in answers}))
        table[label or predictor.name] = rows
        print(f"{predictor.name}: {len(paths) * len(changed) / (time.perf_counter() - started):.1f} img/s")
        if args.write_records:
            write_atomically(Path(predictor.model_path).parent / "wild_crops.json", json.dumps(
                {"data_dir": args.data_dir, "split": args.split, "test_images": len(paths), "threshold": DEFAULT_THRESHOLD,
                 "command": "python benchmarks/wild_crops.py --write-records",
                 "changes": {name: {k: v for k, v in row.items() if k != "prob_ai"} for name, row in rows.items()}}, indent=2))
    print_table(table, groups, args.changes, f"{len(paths)} {args.split} images of {args.data_dir} (held-out sources)")
    if args.json:
        write_atomically(args.json, json.dumps({"data_dir": args.data_dir, "split": args.split, "test_images": len(paths),
                                                "threshold": DEFAULT_THRESHOLD, "images": dict(groups, labels=labels.tolist()),
                                                "detectors": table}, indent=2))


if __name__ == "__main__":
    main()
