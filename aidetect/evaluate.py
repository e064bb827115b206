"""Test-set metrics with AI-generated (FAKE) as the positive class, from probabilities."""
from collections import defaultdict
from typing import Dict, Sequence

import numpy as np
from sklearn import metrics as skm

from .labels import CLASS_NAMES, DEFAULT_THRESHOLD, POSITIVE_CLASS, POSITIVE_INDEX

ROC_POINTS = 200        # enough for a smooth curve, small enough for metrics.json


def _downsample(values: np.ndarray, count: int) -> list:
    picks = np.unique(np.linspace(0, len(values) - 1, min(count, len(values))).round().astype(int))
    return [round(float(v), 6) for v in values[picks]]


def compute_metrics(true_index: np.ndarray, prob_ai: np.ndarray,
                    threshold: float = DEFAULT_THRESHOLD) -> Dict:
    """true_index: class indices (labels.CLASS_NAMES order); prob_ai: P(FAKE) per image."""
    true_index = np.asarray(true_index).astype(int)
    prob_ai = np.asarray(prob_ai, dtype=np.float64)
    is_fake = (true_index == POSITIVE_INDEX).astype(int)
    said_fake = (prob_ai >= threshold).astype(int)
    matrix = skm.confusion_matrix(is_fake, said_fake, labels=[0, 1])
    fpr, tpr, _ = skm.roc_curve(is_fake, prob_ai)
    return {
        "positive_class": POSITIVE_CLASS,
        "class_order": list(CLASS_NAMES),
        "threshold": threshold,
        "images": int(len(true_index)),
        "accuracy": float(skm.accuracy_score(is_fake, said_fake)),
        "precision": float(skm.precision_score(is_fake, said_fake, zero_division=0)),
        "recall": float(skm.recall_score(is_fake, said_fake, zero_division=0)),
        "f1": float(skm.f1_score(is_fake, said_fake, zero_division=0)),
        "f1_macro": float(skm.f1_score(is_fake, said_fake, average="macro", zero_division=0)),
        "auc": float(skm.roc_auc_score(is_fake, prob_ai)) if len(set(is_fake)) == 2 else float("nan"),
        # the categorical cross-entropy of the 2-way softmax, without the regularizer's share
        "loss": float(skm.log_loss(is_fake, np.clip(prob_ai, 1e-7, 1 - 1e-7), labels=[0, 1])),
        # rows = true class, columns = predicted class, named so nobody has to remember the order
        "confusion_matrix": {
            "true_REAL_pred_REAL": int(matrix[0, 0]), "true_REAL_pred_FAKE": int(matrix[0, 1]),
            "true_FAKE_pred_REAL": int(matrix[1, 0]), "true_FAKE_pred_FAKE": int(matrix[1, 1]),
        },
        "roc": {"fpr": _downsample(fpr, ROC_POINTS), "tpr": _downsample(tpr, ROC_POINTS)},
    }


def format_summary(metrics: Dict) -> str:
    cm = metrics["confusion_matrix"]
    lines = [
        f"Test images: {metrics['images']}  (positive class: {metrics['positive_class']} = AI-generated"
        + ("; each image averaged with its mirror)" if metrics.get("mirror_averaged") else ")"),
        f"Loss:      {metrics.get('loss', float('nan')):.4f}",
        f"Accuracy:  {metrics['accuracy']:.4f}",
        f"Precision: {metrics['precision']:.4f}",
        f"Recall:    {metrics['recall']:.4f}",
        f"AUC:       {metrics['auc']:.4f}",
        f"F1:        {metrics['f1']:.4f}  (macro {metrics['f1_macro']:.4f})",
        "Confusion matrix (rows true, columns predicted):",
        "            pred REAL  pred FAKE",
        f"  true REAL {cm['true_REAL_pred_REAL']:9d}  {cm['true_REAL_pred_FAKE']:9d}",
        f"  true FAKE {cm['true_FAKE_pred_REAL']:9d}  {cm['true_FAKE_pred_FAKE']:9d}",
    ]
    return "\n".join(lines)


def breakdown(groups: Sequence[str], true_index, prob_ai, threshold: float = DEFAULT_THRESHOLD) -> Dict:
    """Per group (e.g. source or generator family), largest first: images per class, accuracy and
    AUC. A group of one class is ranked against every image of the other class (a generator's
    images against all the real photos), a mixed group against itself."""
    is_fake = np.asarray(true_index) == POSITIVE_INDEX
    prob_ai = np.asarray(prob_ai, dtype=np.float64)
    members = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    table = {}
    for group, index in sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        true, prob = is_fake[index], prob_ai[index]
        if true.all() or not true.any():            # rank against the other class
            other = is_fake != true[0]
            true, prob = np.concatenate([true, is_fake[other]]), np.concatenate([prob, prob_ai[other]])
        table[group] = {
            "real": int((~is_fake[index]).sum()), "fake": int(is_fake[index].sum()),
            "accuracy": float(np.mean((prob_ai[index] >= threshold) == is_fake[index])),
            "auc": float(skm.roc_auc_score(true, prob)) if 0 < true.sum() < len(true) else None,
        }
    return table


def format_breakdown(table: Dict, title: str) -> str:
    lines = [f"{title:40s} {'real':>5s} {'fake':>5s} {'accuracy':>9s} {'AUC':>6s}"]
    for group, row in table.items():
        auc = "-" if row["auc"] is None else f"{row['auc']:.3f}"
        lines.append(f"{group[:40]:40s} {row['real']:5d} {row['fake']:5d} {row['accuracy']:9.3f} {auc:>6s}")
    return "\n".join(lines)


def split_probabilities(predictor, data_dir, split: str = "test", batch_size: int = 64, limit: int = 0,
                        seed: int = 42):
    """(paths, class indices, P(AI-generated)) of a prepared split ("all" = every split), through
    classify.py's pipeline (each image answered by the model Predictor.route chooses)."""
    from . import data
    from .batch import classify_files

    paths, labels = [], []
    for name in data.SPLITS if split == "all" else (split,):
        split_paths, split_labels = data.list_split(data_dir, name, limit, seed)
        paths, labels = paths + split_paths, labels + list(split_labels)
    answers = list(classify_files(predictor, paths, batch_size, progress=False))
    unreadable = [answer for answer in answers if answer.error]
    if unreadable:
        raise data.DataError(f"{unreadable[0].name}: {unreadable[0].error} (run `model_training.py prepare` again)")
    prob_ai = np.array([answer.prob_ai for answer in answers], dtype=np.float32)
    return paths, np.asarray(labels), prob_ai


def evaluate_saved_model(model_path, data_dir, split: str = "test", batch_size: int = 64,
                         mirror: bool = True, limit: int = 0, seed: int = 42) -> Dict:
    """Metrics of a model file as loaded from disk and run by the Predictor through classify.py's
    pipeline (what users get, calibrated if the model has a calibration.json); split "all" scores
    every split. With a manifest in data_dir (a labelled set prepared by source) the metrics are
    also broken down per source and family.
    Imports TensorFlow (through the Predictor) only when called: this module stays light."""
    from .predict import Predictor
    from .preprocess import view_count
    from .sources import manifest_groups

    predictor = Predictor.load(model_path, mirror)
    paths, labels, prob_ai = split_probabilities(predictor, data_dir, split, batch_size, limit, seed)
    metrics = dict(compute_metrics(labels, prob_ai), mirror_averaged=mirror, view=predictor.view,
                   views_per_image=view_count(predictor.view, predictor.crops),
                   temperature=predictor.temperature)
    for key, groups in manifest_groups(data_dir, paths).items():
        metrics[f"by_{key}"] = breakdown(groups, labels, prob_ai)
    return metrics


def calibrate_saved_model(model_path, data_dir, batch_size: int = 64, mirror: bool = True, limit: int = 0,
                          seed: int = 42) -> Dict:
    """Fit the temperature on the validation split, report before/after there and on test, and
    write calibration.json beside the model (never touching the model file). Returns the report."""
    import json
    from pathlib import Path

    from .calibrate import CALIBRATION_FILE, calibration_report
    from .files import write_atomically
    from .predict import Predictor

    predictor = Predictor.load(model_path, mirror, calibrated=False)
    _, val_labels, val_prob = split_probabilities(predictor, data_dir, "validation", batch_size, limit, seed)
    _, test_labels, test_prob = split_probabilities(predictor, data_dir, "test", batch_size, limit, seed)
    report = calibration_report(val_labels == POSITIVE_INDEX, val_prob, test_labels == POSITIVE_INDEX, test_prob)
    report.update(mirror_averaged=mirror, data_dir=str(data_dir))
    write_atomically(Path(predictor.model_path).parent / CALIBRATION_FILE, json.dumps(report, indent=2))
    return report
