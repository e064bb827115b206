"""Calibrated probabilities: temperature scaling fitted on the validation split.

A model trained with cross-entropy is often over-confident: of the images it calls 99 %
AI-generated, fewer than 99 % are. One number, the temperature T, divides the model's log-odds:
P = sigmoid(logit(p) / T). T > 1 softens, T < 1 sharpens; the ranking (AUC) and the verdicts at
threshold 0.5 stay as they were. T is fitted by minimising the log-loss on the validation split
and saved beside the model as calibration.json, with the expected calibration error (ECE) and the
reliability bins before and after, which plots.py draws. No TensorFlow here.
"""
import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from scipy.optimize import minimize_scalar

CALIBRATION_FILE = "calibration.json"
BINS = 10                               # reliability diagram: equal-width bins of P(AI-generated)
_EPSILON = 1e-7


def logit(prob: np.ndarray) -> np.ndarray:
    prob = np.clip(np.asarray(prob, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    return np.log(prob / (1 - prob))


def apply_temperature(prob_ai: np.ndarray, temperature: float) -> np.ndarray:
    return 1 / (1 + np.exp(-logit(prob_ai) / temperature))


def log_loss(is_fake: np.ndarray, prob_ai: np.ndarray) -> float:
    prob = np.clip(prob_ai, _EPSILON, 1 - _EPSILON)
    return float(-np.mean(is_fake * np.log(prob) + (1 - is_fake) * np.log(1 - prob)))


def reliability(is_fake: np.ndarray, prob_ai: np.ndarray, bins: int = BINS) -> Dict:
    """Per bin of P(AI-generated): images, mean predicted probability, observed share of AI images;
    and the ECE, the image-weighted mean gap between the two."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(prob_ai, edges[1:-1]), 0, bins - 1)
    rows, gap = [], 0.0
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            predicted, observed = float(prob_ai[chosen].mean()), float(is_fake[chosen].mean())
            gap += chosen.sum() * abs(predicted - observed)
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "images": int(chosen.sum()),
                         "predicted": predicted, "observed": observed})
    return {"ece": gap / len(prob_ai), "bins": rows}


def fit_temperature(is_fake: np.ndarray, prob_ai: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the log-loss of apply_temperature(prob_ai, T)."""
    found = minimize_scalar(lambda log_t: log_loss(is_fake, apply_temperature(prob_ai, np.exp(log_t))),
                            bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def calibration_report(is_fake, prob_ai, test_is_fake=None, test_prob_ai=None) -> Dict:
    """Fit on (is_fake, prob_ai), the validation split; report before/after there and, if given,
    on the test split (which the fit never saw)."""
    is_fake, prob_ai = np.asarray(is_fake, dtype=np.float64), np.asarray(prob_ai, dtype=np.float64)
    temperature = fit_temperature(is_fake, prob_ai)
    report = {"temperature": temperature, "fitted_on": "validation", "images": int(len(prob_ai))}
    splits = {"validation": (is_fake, prob_ai)}
    if test_prob_ai is not None:
        splits["test"] = (np.asarray(test_is_fake, dtype=np.float64), np.asarray(test_prob_ai, dtype=np.float64))
    for split, (truth, prob) in splits.items():
        calibrated = apply_temperature(prob, temperature)
        report[split] = {
            "log_loss_before": log_loss(truth, prob), "log_loss_after": log_loss(truth, calibrated),
            "before": reliability(truth, prob), "after": reliability(truth, calibrated)}
    return report


def read_temperature(model_path, mirror: bool = True) -> Optional[float]:
    """The temperature in calibration.json beside a model, or None: absent, unreadable, not a
    finite positive number, or fitted for the other mirror setting than the one asked for."""
    try:
        saved = json.loads((Path(model_path).parent / CALIBRATION_FILE).read_text())
        value = saved["temperature"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if saved.get("mirror_averaged", mirror) != mirror:
        return None
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) and value > 0 else None
