"""What the model knows: a score of how unlike its training images an input is.

The score is the Mahalanobis distance of the model's pooled features (the layer before its
classifier) to the nearer of the two classes' mean training features, with one covariance
shared by both classes (Lee et al., NeurIPS 2018). Inputs scoring above the 97.5th percentile of
the validation images, and images without fine detail (flat colours, smooth gradients), are
"outside what this model knows": drawings, graphics, noise. Fitted once per model from its training images and saved beside it as
scope.npz (the model file is never touched); `model_training.py scope` fits it for any model.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np
from threadpoolctl import ThreadpoolController

from .files import atomic_path, write_atomically

SCOPE_FILE = "scope.npz"
REPORT_FILE = "scope.json"      # what fit_for_model measured, beside it
FEATURE_LAYER = "pool"          # model.py's global average pooling, right before the classifier
QUANTILE = 0.975                # of validation scores: ~2.5 % of images like the training data are flagged
MIN_DETAIL = 2.0                # mean |Laplacian| of the model's view; CIFAKE's lowest 0.1 % is ~5,
                                # flat colours are 0 and smooth gradients ~1 (docs/results.md)
FIT_IMAGES = 10000              # training images the class means and covariance are taken from
MIN_AUROC = 0.8                 # a scope that separates synthetic images worse than this is not kept


# numpy's BLAS runs our small matrix products on one thread: its own threads would fight the
# model's for the same cores (classify.py lost ~15 % of its rate to them: issue 26)
_BLAS = ThreadpoolController()


@dataclass(frozen=True)
class Scope:
    means: np.ndarray           # (classes, features)
    precision: np.ndarray       # (features, features): inverse of the shared covariance
    threshold: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(N, features) -> (N,) squared Mahalanobis distance to the nearer class mean."""
        features = np.asarray(features, dtype=np.float64)
        with _BLAS.limit(limits=1, user_api="blas"):
            return np.min([((centred @ self.precision) * centred).sum(axis=1)
                           for centred in (features - mean for mean in self.means)], axis=0)

    def save(self, path) -> Path:
        with atomic_path(path, ".tmp.npz") as temporary:
            np.savez(temporary, means=self.means, precision=self.precision, threshold=self.threshold)
        return Path(path)

    @classmethod
    def load(cls, path) -> Optional["Scope"]:
        """The scope saved at path, or None where there is none (or it is unreadable)."""
        try:
            with np.load(path) as saved:
                return cls(saved["means"], saved["precision"], float(saved["threshold"]))
        except Exception:   # absent, empty, truncated or foreign: the model answers without a scope
            return None


def fit(features: np.ndarray, class_index: np.ndarray, validation_features: np.ndarray) -> Scope:
    """Class means and a shared, slightly regularised covariance from training features; the
    threshold from the validation features' scores."""
    features = np.asarray(features, dtype=np.float64)
    classes = np.unique(class_index)
    means = np.stack([features[class_index == c].mean(axis=0) for c in classes])
    centred = np.concatenate([features[class_index == c] - means[i] for i, c in enumerate(classes)])
    covariance = centred.T @ centred / len(centred)
    covariance += np.eye(len(covariance)) * 1e-3 * np.trace(covariance) / len(covariance)
    unthresholded = Scope(means, np.linalg.inv(covariance), np.inf)
    threshold = float(np.quantile(unthresholded.scores(validation_features), QUANTILE))
    return Scope(means, unthresholded.precision, threshold)


def detail(views: np.ndarray) -> np.ndarray:
    """(N, [views,] size, size, 3) model inputs -> (N,) mean absolute Laplacian (pixel-to-pixel
    detail): 0 for a flat colour, about 1 for a smooth gradient, 5-60 for photos."""
    views = np.asarray(views, dtype=np.float32)
    views = views.reshape((len(views), -1) + views.shape[-3:])
    laplacian = (4 * views[:, :, 1:-1, 1:-1] - views[:, :, :-2, 1:-1] - views[:, :, 2:, 1:-1]
                 - views[:, :, 1:-1, :-2] - views[:, :, 1:-1, 2:])
    return np.abs(laplacian).reshape(len(views), -1).mean(axis=1)


def lacks_detail(views: np.ndarray) -> np.ndarray:
    return detail(views) < MIN_DETAIL


def shares_flagged(scores: Dict[str, np.ndarray], plain: Dict[str, np.ndarray], threshold: float) -> Dict:
    """{set: share of its images outside the scope} for a report (plain: lacks_detail per image)."""
    return {name: float(np.mean((scores[name] > threshold) | plain[name])) for name in scores}


def synthetic_inputs(count: int = 100, seed: int = 0) -> Dict[str, list]:
    """Images no photo detector should judge, `count` of each: flat colours, gradients, noise and
    drawings (shapes on white, as a transparent drawing shows on white)."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)

    def gradient():
        ramp = np.linspace(0, 1, 256)[np.newaxis, :, np.newaxis]
        return np.repeat(ramp * rng.integers(0, 256, 3) + (1 - ramp) * rng.integers(0, 256, 3), 192, axis=0)

    def drawing():
        image = Image.new("RGB", (128, 128), "white")
        pen = ImageDraw.Draw(image)
        for _ in range(3):
            x, y = rng.integers(0, 100, 2)
            pen.ellipse([x, y, x + rng.integers(10, 60), y + rng.integers(10, 60)],
                        fill=tuple(int(v) for v in rng.integers(0, 256, 3)), outline="black", width=3)
        return np.asarray(image)

    makers = {"flat colour": lambda: np.full((64, 64, 3), rng.integers(0, 256, 3)),
              "gradient": gradient, "noise": lambda: rng.integers(0, 256, (64, 64, 3)), "drawing": drawing}
    return {name: [np.asarray(make(), dtype=np.uint8) for _ in range(count)] for name, make in makers.items()}


def fit_for_model(model_path, data_dir, batch_size: int = 256, seed: int = 42) -> Dict:
    """Fit a model's scope from data_dir's train split (FIT_IMAGES, class-balanced), threshold it
    on validation, and report (also in scope.json beside the model) the share flagged on the test
    split and on synthetic_inputs(), and the AUROC of the score between test and synthetic images.
    scope.npz is saved beside the model only if that AUROC reaches MIN_AUROC."""
    from sklearn.metrics import roc_auc_score

    from . import data
    from .batch import make_dataset
    from .predict import Predictor
    from .preprocess import model_views

    predictor = Predictor.load(model_path)

    def measure(batches):
        """(features, lacks_detail) of the readable images and the mask of which were readable;
        one batch of inputs in memory at a time."""
        features, plain, readable = [], [], []
        for inputs, ok in batches:
            features.append(predictor.features_batch(inputs[ok]))
            plain.append(lacks_detail(inputs[ok]))
            readable.append(ok)
        return np.concatenate(features), np.concatenate(plain), np.concatenate(readable)

    def split_batches(split: str, limit: int = 0):
        paths, labels = data.list_split(data_dir, split, limit, seed)
        batches = ((inputs.numpy(), errors.numpy() == b"") for inputs, errors in make_dataset(paths, predictor, batch_size))
        return batches, labels

    train_batches, train_labels = split_batches("train", FIT_IMAGES)
    train_features, _, train_readable = measure(train_batches)
    validation_features, _, _ = measure(split_batches("validation")[0])
    scope = fit(train_features, train_labels[train_readable], validation_features)
    measured = {"test split": measure(split_batches("test")[0])}
    for name, pictures in synthetic_inputs().items():
        views = np.stack([model_views(p, predictor.image_size, predictor.view, predictor.crops).numpy()
                          for p in pictures]).astype(np.float32)
        measured[name] = measure([(views, np.ones(len(views), dtype=bool))])
    scores = {name: scope.scores(features) for name, (features, _, _) in measured.items()}
    plain = {name: flags for name, (_, flags, _) in measured.items()}
    inside = scores["test split"]
    outside = np.concatenate([scores[name] for name in measured if name != "test split"])
    auroc = float(roc_auc_score(np.r_[np.zeros(len(inside)), np.ones(len(outside))], np.r_[inside, outside]))
    path = Path(predictor.model_path).parent / SCOPE_FILE
    if auroc >= MIN_AUROC:
        scope.save(path)
    else:                               # e.g. the ResNet101: its features do not tell graphics from photos
        path.unlink(missing_ok=True)
    report = {"threshold": scope.threshold, "quantile": QUANTILE, "fit_images": int(len(train_features)),
              "data_dir": str(data_dir), "flagged": shares_flagged(scores, plain, scope.threshold),
              "auroc_test_vs_synthetic": auroc, "kept": auroc >= MIN_AUROC, "min_auroc": MIN_AUROC}
    write_atomically(Path(predictor.model_path).parent / REPORT_FILE, json.dumps(report, indent=2))
    return report
