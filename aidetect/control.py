"""Controls: what a label could be told from without looking at generator traces.

Two logistic regressions, trained on a prepared split's train images, their strength chosen on
validation, scored on test:
- "content": global colour statistics and an 8x8 thumbnail (what the scene looks like);
- "format": JPEG-history statistics (8x8 blockiness, DCT coefficients of earlier compression,
  high-frequency energy, chroma detail): how the file was saved before, which a biased set can
  tie to its label (e.g. WebP only among generated images, JPEG q75 among photos).
A detector's number means something only by how far it beats both.
"""
from typing import Callable, Dict, List, Sequence

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


BLOCK = 8                               # JPEG's block size
DCT_FREQUENCIES = 15                    # the first AC coefficients in zigzag order
_ZIGZAG = sorted(((u, v) for u in range(BLOCK) for v in range(BLOCK)),
                 key=lambda uv: (uv[0] + uv[1], uv[1] if (uv[0] + uv[1]) % 2 else uv[0]))[1:DCT_FREQUENCIES + 1]


def _dct_matrix() -> np.ndarray:
    k = np.arange(BLOCK)
    matrix = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * BLOCK)) * np.sqrt(2 / BLOCK)
    matrix[0] /= np.sqrt(2)
    return matrix


def _luma_chroma(rgb: np.ndarray):
    pixels = rgb.astype(np.float64)
    luma = pixels @ [0.299, 0.587, 0.114]
    blue = pixels @ [-0.168736, -0.331264, 0.5]
    red = pixels @ [0.5, -0.418688, -0.081312]
    return luma, blue, red


def _laplacian(plane: np.ndarray) -> float:
    return float(np.abs(4 * plane[1:-1, 1:-1] - plane[:-2, 1:-1] - plane[2:, 1:-1]
                        - plane[1:-1, :-2] - plane[1:-1, 2:]).mean())


def format_features(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> how the pixels were compressed before, as one float vector: blockiness
    (steps across 8x8 block edges over steps inside blocks, both axes), per low AC frequency of
    the 8x8 luma DCT the share of near-zero coefficients and their spread (earlier quantisation
    leaves both), luma high-frequency energy and chroma detail relative to luma. The block grid
    is the image's own (wild-crops keeps a source's grid aligned)."""
    luma, blue, red = _luma_chroma(rgb)
    height, width = (np.array(luma.shape) // BLOCK) * BLOCK
    luma = luma[:height, :width]
    steps = []
    for axis in (0, 1):
        diff = np.abs(np.diff(luma, axis=axis))
        edge = (np.arange(diff.shape[axis]) % BLOCK) == BLOCK - 1
        across = diff.take(np.flatnonzero(edge), axis=axis).mean()
        inside = diff.take(np.flatnonzero(~edge), axis=axis).mean()
        steps.append(across / (inside + 1e-6))
    blocks = (luma - 128).reshape(height // BLOCK, BLOCK, width // BLOCK, BLOCK).transpose(0, 2, 1, 3)
    dct = _dct_matrix()
    coefficients = np.einsum("ui,abij,vj->abuv", dct, blocks, dct)
    chosen = np.stack([coefficients[:, :, u, v].ravel() for u, v in _ZIGZAG])
    near_zero = (np.abs(chosen) < 1.0).mean(axis=1)
    spread = np.log1p(chosen.std(axis=1))
    luma_detail = _laplacian(luma)
    chroma = [_laplacian(plane[:height, :width]) / (luma_detail + 1e-6) for plane in (blue, red)]
    return np.concatenate([steps, near_zero, spread, [np.log1p(luma_detail)], chroma])


FEATURES: Dict[str, Callable[[np.ndarray], np.ndarray]] = {"content": content_features, "format": format_features}
DESCRIPTIONS = {"content": f"logistic regression on colour statistics and a {THUMBNAIL}x{THUMBNAIL} thumbnail",
                "format": "logistic regression on JPEG-history statistics (8x8 blockiness, DCT coefficients, "
                          "high-frequency energy, chroma detail)"}


def features(kind: str, rgbs: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([FEATURES[kind](rgb) for rgb in rgbs])


def _split_features(data_dir, split: str, kind: str):
    paths, labels = data.list_split(data_dir, split)
    return paths, features(kind, [images.load_rgb(p) for p in paths]), labels


def fit(data_dir, kind: str = "content"):
    """(fitted pipeline, strength, validation AUC): trained on train, strength chosen by
    validation AUC. The pipeline's predict_proba(features(kind, rgbs))[:, 1] is P(AI-generated)."""
    if kind not in FEATURES:
        raise ValueError(f"unknown control {kind!r}: use one of {', '.join(FEATURES)}")
    _, train_x, train_y = _split_features(data_dir, "train", kind)
    _, val_x, val_y = _split_features(data_dir, "validation", kind)
    fits: List = []
    for strength in STRENGTHS:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=2000))
        model.fit(train_x, train_y == POSITIVE_INDEX)
        fits.append((roc_auc_score(val_y == POSITIVE_INDEX, model.predict_proba(val_x)[:, 1]), strength, model))
    val_auc, strength, model = max(fits, key=lambda fit: fit[0])
    return model, strength, float(val_auc)


def fit_and_score(data_dir, kind: str = "content") -> Dict:
    """Fit (above), report test metrics (and, with a manifest, the same per-source, per-family and
    per-style breakdown as evaluate)."""
    from .sources import manifest_groups

    model, strength, val_auc = fit(data_dir, kind)
    test_paths, test_x, test_y = _split_features(data_dir, "test", kind)
    prob_ai = model.predict_proba(test_x)[:, 1]
    metrics = dict(compute_metrics(test_y, prob_ai), control=DESCRIPTIONS[kind], kind=kind, strength=strength,
                   validation_auc=val_auc)
    for key, groups in manifest_groups(data_dir, test_paths).items():
        metrics[f"by_{key}"] = breakdown(groups, test_y, prob_ai)
    return metrics
