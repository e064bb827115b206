"""A content-only control: what can be told from an image's colours and rough layout alone.

Logistic regression on global colour statistics and an 8x8 thumbnail, trained on a prepared
split's train images, its strength chosen on validation, scored on test. A detector's number
means something only by how far it beats this: whatever the control gets, content gives away.
"""
from typing import Dict, List

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import data, images
from .evaluate import breakdown, compute_metrics
from .labels import POSITIVE_INDEX

THUMBNAIL = 8                           # px: layout and colour, no pixel-level traces
GREY_BINS = 16
STRENGTHS = (0.001, 0.01, 0.1, 1.0, 10.0)   # inverse regularisation tried on validation


def content_features(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> colour means/stds, saturation mean/std, a grey histogram and an 8x8
    thumbnail, as one float vector."""
    pixels = rgb.reshape(-1, 3).astype(np.float64) / 255.0
    saturation = pixels.max(axis=1) - pixels.min(axis=1)
    grey = pixels.mean(axis=1)
    histogram = np.histogram(grey, bins=GREY_BINS, range=(0, 1))[0] / len(grey)
    thumbnail = np.asarray(Image.fromarray(rgb).resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX),
                           dtype=np.float64).ravel() / 255.0
    return np.concatenate([pixels.mean(axis=0), pixels.std(axis=0), [saturation.mean(), saturation.std()],
                           histogram, thumbnail])


def _split_features(data_dir, split: str):
    paths, labels = data.list_split(data_dir, split)
    return paths, np.stack([content_features(images.load_rgb(p)) for p in paths]), labels


def fit_and_score(data_dir) -> Dict:
    """Train on train, choose the strength by validation AUC, report test metrics (and, with a
    manifest, the same per-source and per-family breakdown as evaluate)."""
    from .sources import manifest_groups

    _, train_x, train_y = _split_features(data_dir, "train")
    _, val_x, val_y = _split_features(data_dir, "validation")
    test_paths, test_x, test_y = _split_features(data_dir, "test")
    fits: List = []
    for strength in STRENGTHS:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=2000))
        model.fit(train_x, train_y == POSITIVE_INDEX)
        fits.append((roc_auc_score(val_y == POSITIVE_INDEX, model.predict_proba(val_x)[:, 1]), strength, model))
    val_auc, strength, model = max(fits, key=lambda fit: fit[0])
    prob_ai = model.predict_proba(test_x)[:, 1]
    metrics = dict(compute_metrics(test_y, prob_ai), control="logistic regression on colour statistics "
                   f"and a {THUMBNAIL}x{THUMBNAIL} thumbnail", strength=strength, validation_auc=float(val_auc))
    for key, groups in manifest_groups(data_dir, test_paths).items():
        metrics[f"by_{key}"] = breakdown(groups, test_y, prob_ai)
    return metrics
