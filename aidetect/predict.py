"""Predictor: load a model once, classify images (bytes, paths or arrays) in batches.

Shared by classify.py, the web app and the Beam pipeline so they preprocess and label alike.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from . import images
from .labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND, POSITIVE_INDEX, Verdict, verdict
from .model import load_model, model_image_size
from .preprocess import resize_to_model

MODEL_ENV_VAR = "AIDETECT_MODEL"
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "default" / "model.keras"


def default_model_path() -> Path:
    """$AIDETECT_MODEL if set, else the shipped models/default/model.keras."""
    return Path(os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL_PATH)


def resolve_model_path(path=None) -> Path:
    """A .keras file or a run folder (models/<run>/) -> the .keras file path."""
    path = Path(path) if path else default_model_path()
    return path / "model.keras" if path.is_dir() else path


@dataclass(frozen=True)
class Result:
    name: str
    prob_ai: Optional[float] = None
    verdict: Optional[Verdict] = None
    error: Optional[str] = None
    image: Optional[np.ndarray] = None        # the decoded RGB image, for display/explanations

    @property
    def label(self) -> str:
        return self.verdict.label if self.verdict else ""


class Predictor:
    def __init__(self, model, model_path: Optional[Path] = None):
        self.model = model
        self.model_path = model_path
        self.image_size = model_image_size(model)
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    @classmethod
    def load(cls, path=None) -> "Predictor":
        """Raises model.ModelError with a user-facing message when the model can't be used."""
        path = resolve_model_path(path)
        return cls(load_model(path), path)

    def run_info(self) -> Dict:
        """metrics.json and settings.json from the model's run folder ({} where absent)."""
        info = {}
        if self.model_path is not None:
            for name in ("metrics", "settings"):
                file = Path(self.model_path).parent / f"{name}.json"
                try:
                    info[name] = json.loads(file.read_text())
                except (OSError, ValueError):       # absent or unreadable: the caller shows less
                    pass
        return info

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """Decoded RGB uint8 -> the model's input (size x size x 3 float32, raw 0..255)."""
        return resize_to_model(rgb, self.image_size).numpy().astype(np.float32)

    def prob_ai_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) raw pixels -> P(AI-generated) per image."""
        if len(batch) == 0:
            return np.zeros((0,), dtype=np.float32)
        return self._forward(tf.convert_to_tensor(batch, tf.float32)).numpy()[:, POSITIVE_INDEX]

    def classify(self, sources: Sequence, names: Optional[Sequence[str]] = None,
                 threshold: float = DEFAULT_THRESHOLD, uncertain_band: float = DEFAULT_UNCERTAIN_BAND,
                 keep_images: bool = False) -> List[Result]:
        """Classify bytes/paths together; unreadable ones get a Result with an error."""
        names = list(names) if names is not None else [str(s) for s in sources]
        decoded = [images.try_load_rgb(source) for source in sources]
        good = [i for i, (rgb, _) in enumerate(decoded) if rgb is not None]
        probs = self.prob_ai_batch(np.stack([self.preprocess(decoded[i][0]) for i in good])) if good else []
        by_index = dict(zip(good, probs))
        results = []
        for i, (rgb, error) in enumerate(decoded):
            if error:
                results.append(Result(names[i], error=error))
            else:
                p = float(by_index[i])
                results.append(Result(names[i], p, verdict(p, threshold, uncertain_band),
                                       image=rgb if keep_images else None))
        return results

    def classify_one(self, source, name: str = "", **options) -> Result:
        return self.classify([source], [name or str(source)], **options)[0]


def iter_image_files(paths: Iterable) -> Iterable[Path]:
    """Files as given, and image files under folders (recursively, sorted)."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and images.is_image_path(p))
        else:
            yield path
