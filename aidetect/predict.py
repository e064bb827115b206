"""Predictor: load a model once, classify images (bytes, paths or arrays) in batches.

Shared by classify.py, the web app and the Beam pipeline so they preprocess and label alike.
"""
import functools
import gc
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from .calibrate import apply_temperature, read_temperature
from .scope import FEATURE_LAYER, SCOPE_FILE, Scope, lacks_detail
from .labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND, FAKE_INDEX, verdict
from .model import MODEL_FILE, load_model, model_file, model_image_size
from .preprocess import model_views, read_inputs
from .results import Result

MODEL_ENV_VAR = "AIDETECT_MODEL"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
# run folders shipped in git, in the page's picker order; the first is what every tool serves unless
# told otherwise (the better one on the CIFAKE test split and under photo processing: docs/results.md)
SHIPPED_MODELS = ("compact", "default")
DEFAULT_MODEL_PATH = MODELS_DIR / SHIPPED_MODELS[0] / MODEL_FILE


def default_model_path() -> Path:
    """$AIDETECT_MODEL if set, else the shipped models/default/model.keras."""
    return Path(os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL_PATH)


def resolve_model_path(path=None) -> Path:
    """A .keras file or a run folder, else the default model -> the .keras file path."""
    return model_file(path or default_model_path())


def shipped_model_paths() -> List[Path]:
    """The .keras files of SHIPPED_MODELS that are present, in that order."""
    return [path for path in (MODELS_DIR / name / MODEL_FILE for name in SHIPPED_MODELS) if path.is_file()]


def read_run_info(model_path) -> Dict:
    """metrics.json, settings.json, robustness.json (benchmarks/robustness.py --json) and wild.json
    (`evaluate` on the wild set, by generator family) from a model's run folder; a key is missing
    where its file is absent or unreadable."""
    info = {}
    for name in ("metrics", "settings", "robustness", "wild"):
        try:
            info[name] = json.loads((Path(model_path).parent / f"{name}.json").read_text())
        except (OSError, ValueError):       # absent or unreadable: the caller shows less
            pass
    return info


UNRELIABLE_ACCURACY = 0.70      # a model that measured less than this gets a warning wherever it answers


def reliability_warning(info: Dict) -> Optional[str]:
    """A warning when the model's own metrics.json measured it below UNRELIABLE_ACCURACY (e.g. a
    one-epoch quick run that calls everything Real), else None."""
    accuracy = info.get("metrics", {}).get("accuracy")
    if not isinstance(accuracy, (int, float)) or accuracy >= UNRELIABLE_ACCURACY:
        return None
    return (f"This model measured only {accuracy:.1%} accuracy on its test images (50% is a coin toss): "
            "its verdicts are not reliable. Train it longer, or use a shipped model.")


def settle_long_lived_process() -> None:
    """Process-wide changes for a server that keeps models loaded (the web page); call it once a
    model is loaded. It changes two things for the whole process:

    - keras.backend.clear_session() becomes a no-op. Streamlit calls it after every run, which
      empties TensorFlow's kernel cache, so ResNet101 rebuilt its kernels for every upload (~2.5 s
      instead of ~0.15 s). Such a server builds no models, so there is no Keras state to clear.
    - gc.freeze(): the objects alive now (TensorFlow's ~400k, the model's) leave the garbage
      collector's generations. Streamlit runs a full collection after every run (~0.3 s a click).
    """
    keras.backend.clear_session = lambda *args, **kwargs: None
    gc.collect()
    gc.freeze()


def mirror_averaged(model, batch: tf.Tensor) -> tf.Tensor:
    """Class probabilities averaged over each image and its left-right mirror, in one batch.

    The answer no longer depends on which way an image faces, and accuracy gains for twice the
    compute (measured in the results docs).
    """
    count = tf.shape(batch)[0]
    probs = model(tf.concat([batch, tf.reverse(batch, axis=[2])], axis=0), training=False)
    return (probs[:count] + probs[count:]) / 2


def forward(model, mirror: bool = True):
    """The callable that turns model inputs into class probabilities, as the app computes them."""
    return functools.partial(mirror_averaged, model) if mirror else model


def feature_width(model) -> int:
    """Width of the features scope.py measures (0 for a model without the pooling layer)."""
    try:
        return int(model.get_layer(FEATURE_LAYER).output.shape[-1])
    except ValueError:
        return 0


class Predictor:
    def __init__(self, model, model_path: Optional[Path] = None, mirror: bool = True,
                 view: str = "resize", crops: int = 1, temperature: Optional[float] = None,
                 scope: Optional[Scope] = None):
        self.model = model
        self.model_path = model_path
        self.image_size = model_image_size(model)
        self.view, self.crops = view, crops         # preprocess.model_views: how images become inputs
        self.temperature = temperature              # calibrate.py; None = the model's own probabilities
        self.scope = scope                          # scope.py; None = every input is taken at its word
        self._forward = tf.function(forward(model, mirror), reduce_retracing=True)
        self._features = None                       # built on first use (models without a scope never)

    @classmethod
    def load(cls, path=None, mirror: bool = True, calibrated: bool = True) -> "Predictor":
        """Raises model.ModelError with a user-facing message when the model can't be used.
        The view comes from the run's settings.json ("resize" where there is none), the
        temperature from its calibration.json (if any, and unless calibrated=False)."""
        path = resolve_model_path(path)
        settings = read_run_info(path).get("settings", {})
        model = load_model(path)
        scope = Scope.load(path.parent / SCOPE_FILE)
        if scope is not None and scope.means.shape[-1] != feature_width(model):
            scope = None                            # another model's file: answer without a scope
        return cls(model, path, mirror, settings.get("view", "resize"), settings.get("crops", 1),
                   read_temperature(path, mirror) if calibrated else None, scope)

    def run_info(self) -> Dict:
        """The run folder's records (read_run_info; {} where absent)."""
        return read_run_info(self.model_path) if self.model_path is not None else {}

    def views(self, rgb: np.ndarray) -> np.ndarray:
        """Decoded RGB uint8 -> the model's inputs for it ((views, size, size, 3) float32, 0..255)."""
        return model_views(rgb, self.image_size, self.view, self.crops).numpy().astype(np.float32)

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """One input (size x size x 3 float32): the whole image resized, or its centre crop; what
        explanations are drawn on."""
        return model_views(rgb, self.image_size, self.view, 1)[0].numpy().astype(np.float32)

    def prob_ai_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) raw pixels, or (N, views, size, size, 3) -> P(AI-generated) per
        image (the mean over its views, then calibrated when the Predictor has a temperature)."""
        batch = np.asarray(batch, dtype=np.float32)
        if len(batch) == 0:
            return np.zeros((0,), dtype=np.float32)
        flat = batch.reshape((-1,) + batch.shape[-3:])
        prob_ai = self._forward(tf.convert_to_tensor(flat)).numpy()[:, FAKE_INDEX]
        prob_ai = prob_ai.reshape(len(batch), -1).mean(axis=1) if batch.ndim == 5 else prob_ai
        if self.temperature is None:
            return prob_ai
        return apply_temperature(prob_ai, self.temperature).astype(np.float32)

    def features_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, [views,] size, size, 3) -> (N, features): the pooled features, averaged over views."""
        if self._features is None:
            self._features = tf.function(keras.Model(self.model.input, self.model.get_layer(FEATURE_LAYER).output),
                                         reduce_retracing=True)
        batch = np.asarray(batch, dtype=np.float32)
        features = self._features(tf.convert_to_tensor(batch.reshape((-1,) + batch.shape[-3:]))).numpy()
        return features.reshape(len(batch), -1, features.shape[-1]).mean(axis=1)

    def scope_batch(self, batch: np.ndarray):
        """(scores, outside) per image: scope.py's distance (None for a model without a scope) and
        whether the image is beyond the model's scope or lacks fine detail (for every model)."""
        if len(batch) == 0:
            return None, np.zeros(0, dtype=bool)
        plain = lacks_detail(batch)
        if self.scope is None:
            return None, plain
        scores = self.scope.scores(self.features_batch(batch))
        return scores, (scores > self.scope.threshold) | plain

    def results(self, names: Sequence[str], batch: np.ndarray, threshold: float, uncertain_band: float,
                images: Optional[Sequence] = None) -> List[Result]:
        """One Result per image of a batch of model inputs: probability, scope and verdict."""
        prob_ai = self.prob_ai_batch(batch)
        scores, outside = self.scope_batch(batch)
        return [Result(name, float(p), verdict(float(p), threshold, uncertain_band, bool(out)),
                       image=None if images is None else images[i],
                       scope_score=None if scores is None else float(scores[i]), out_of_scope=bool(out))
                for i, (name, p, out) in enumerate(zip(names, prob_ai, outside))]

    def classify(self, sources: Sequence, names: Optional[Sequence[str]] = None,
                 threshold: float = DEFAULT_THRESHOLD, uncertain_band: float = DEFAULT_UNCERTAIN_BAND,
                 keep_images: bool = False) -> List[Result]:
        """Classify bytes/paths together; unreadable ones get a Result with an error."""
        names = list(names) if names is not None else [str(s) for s in sources]
        inputs, kept, errors = {}, {}, {}
        for i, source in enumerate(sources):     # one full-size decode in memory at a time
            rgb, views, error = read_inputs(source, self.image_size, self.view, self.crops)
            if error:
                errors[i] = error
                continue
            inputs[i] = views.astype(np.float32)
            kept[i] = rgb if keep_images else None
        readable = list(inputs)
        answered = dict(zip(readable, self.results(
            [names[i] for i in readable], np.stack([inputs[i] for i in readable]) if readable else np.zeros((0,)),
            threshold, uncertain_band, [kept[i] for i in readable])))
        return [Result(name, error=errors[i]) if i in errors else answered[i] for i, name in enumerate(names)]

    def classify_one(self, source, name: str = "", **options) -> Result:
        return self.classify([source], [name or str(source)], **options)[0]
