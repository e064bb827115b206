"""Test-set metrics with AI-generated (FAKE) as the positive class, from probabilities."""
from typing import Dict

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


def evaluate_saved_model(model_path, data_dir, split: str = "test", batch_size: int = 64,
                         mirror: bool = True, limit: int = 0, seed: int = 42) -> Dict:
    """Metrics of a model file as loaded from disk and run by the Predictor (what users get).
    Imports TensorFlow (through the Predictor) only when called: this module stays light."""
    from . import data
    from .predict import Predictor

    predictor = Predictor.load(model_path, mirror)
    paths, labels = data.list_split(data_dir, split, limit, seed)
    dataset = data.make_dataset(paths, labels, predictor.image_size, batch_size)
    prob_ai = np.concatenate([predictor.prob_ai_batch(images) for images, _ in dataset])
    return dict(compute_metrics(labels, prob_ai), mirror_averaged=mirror)
