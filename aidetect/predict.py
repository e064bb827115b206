"""Predictor: load a model once, classify images (bytes, paths or arrays) in batches.

Shared by classify.py, the web app and the Beam pipeline so they preprocess and label alike.
"""
import functools
import gc
import json
import os
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from .calibrate import apply_temperature, logit, read_temperature
from .scope import FEATURE_LAYER, SCOPE_FILE, Scope, lacks_detail
from .labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND, FAKE_INDEX, verdict
from .model import MODEL_FILE, load_model, model_file, model_image_size
from .preprocess import model_views, to_inputs, view_count
from . import images as image_files
from .measured import Worth, image_kind, worth
from .provenance import read_evidence
from .results import Result

MODEL_ENV_VAR = "AIDETECT_MODEL"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
# run folders shipped in git, in the page's picker order; the first is what every tool serves unless
# told otherwise (the better one on the CIFAKE test split and under photo processing: docs/results.md)
SHIPPED_MODELS = ("compact", "resnet101")
RENAMED_MODELS = {"default": "resnet101"}   # old run-folder names that still work, with a notice
DEFAULT_MODEL_PATH = MODELS_DIR / SHIPPED_MODELS[0] / MODEL_FILE
# answers the images too small for a native-resolution model's crops (Predictor.route)
SMALL_IMAGE_MODEL_PATH = MODELS_DIR / "compact" / MODEL_FILE


def default_model_path() -> Path:
    """$AIDETECT_MODEL if set, else the first shipped model (models/compact/model.keras)."""
    return Path(os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL_PATH)


def renamed(path: Path) -> Path:
    """models/default[/model.keras] -> models/resnet101[/...] (with a one-line notice on stderr)
    where the old folder is gone and the new one is there; any other path as it is."""
    parts = list(path.parts)
    for index, part in enumerate(parts[:-1] if path.suffix else parts):
        if part in RENAMED_MODELS and index and parts[index - 1] == "models" and not path.exists():
            moved = Path(*parts[:index], RENAMED_MODELS[part], *parts[index + 1:])
            if moved.exists():
                print(f"note: models/{part} is now called models/{RENAMED_MODELS[part]}; using {moved}", file=sys.stderr)
                return moved
    return path


def resolve_model_path(path=None) -> Path:
    """A .keras file or a run folder, else the default model -> the .keras file path."""
    return model_file(renamed(Path(path or default_model_path())))


def shipped_model_paths() -> List[Path]:
    """The .keras files of SHIPPED_MODELS that are present, in that order."""
    return [path for path in (MODELS_DIR / name / MODEL_FILE for name in SHIPPED_MODELS) if path.is_file()]


def read_run_info(model_path) -> Dict:
    """metrics.json, settings.json, robustness.json (benchmarks/robustness.py --json), wild.json
    (`evaluate` on the wild set, by generator family) and wild_crops.json (benchmarks/wild_crops.py
    --write-records: held-out sources, under processing) from a model's run folder; a key is missing
    where its file is absent or unreadable."""
    info = {}
    for name in ("metrics", "settings", "robustness", "wild", "wild_crops"):
        try:
            info[name] = json.loads((Path(model_path).parent / f"{name}.json").read_text())
        except (OSError, ValueError):       # absent or unreadable: the caller shows less
            pass
    return info


def run_name(path) -> str:
    """models/compact/model.keras or models/compact -> "compact"; mine.keras -> "mine"."""
    path = Path(path)
    return path.parent.name if path.name == MODEL_FILE else path.stem


# views per forward pass of answers_batch (twice as many model inputs with mirroring): a call with
# many full-size images (a page upload, a benchmark) would otherwise hold every view's activations
# at once (1,461 images x 10 views of 128 px asked 14 GiB of a native model's first convolution)
VIEWS_PER_PASS = 256
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


def probabilities_and_features(model, mirror: bool, batch: tf.Tensor):
    """One forward pass of a two-output model (class probabilities, pooled features): the
    probabilities mirror-averaged as forward() does, the features of the images as given (as
    scope.py fitted them), so the scope costs no second pass."""
    if not mirror:
        return model(batch, training=False)
    count = tf.shape(batch)[0]
    probs, features = model(tf.concat([batch, tf.reverse(batch, axis=[2])], axis=0), training=False)
    return (probs[:count] + probs[count:]) / 2, features[:count]


def feature_width(model) -> int:
    """Width of the features scope.py measures (0 for a model without the pooling layer)."""
    try:
        return int(model.get_layer(FEATURE_LAYER).output.shape[-1])
    except ValueError:
        return 0


def mean_in_logits(prob: np.ndarray) -> np.ndarray:
    """(N, views) probabilities -> (N,): the sigmoid of the mean log-odds."""
    return (1 / (1 + np.exp(-logit(prob).mean(axis=1)))).astype(np.float32)


class Predictor:
    def __init__(self, model, model_path: Optional[Path] = None, mirror: bool = True,
                 view: str = "resize", crops: int = 1, temperature: Optional[float] = None,
                 scope: Optional[Scope] = None, small: Optional["Predictor"] = None):
        self.model = model
        self.model_path = model_path
        self.image_size = model_image_size(model)
        self.view, self.crops = view, crops         # preprocess.model_views: how images become inputs
        self.temperature = temperature              # calibrate.py; None = the model's own probabilities
        self.scope = scope                          # scope.py; None = every input is taken at its word
        self.mirror = mirror
        self._forward = tf.function(forward(model, mirror), reduce_retracing=True)
        self._features = None                       # built on first use (models without a scope never)
        # traced once per Predictor and reused by every call (batch.classify_files runs it in threads)
        self.outputs = tf.function(self._model_outputs, reduce_retracing=True)
        self.small = small                          # "native" models: answers images smaller than a crop
        self._worth: Dict[str, Worth] = {}          # measured.worth per kind of image, read once

    @functools.cached_property
    def name(self) -> str:
        """The run folder's name ("compact"), or the file's stem for a bare .keras file (asked for
        every image: worked out once)."""
        return "" if self.model_path is None else run_name(self.model_path)

    def describe_view(self, width: int, height: int) -> str:
        """What this model looks at in a width x height image, in words."""
        if self.view == "native":
            return (f"{view_count(self.view, self.crops)} crops of {self.image_size} px at the image's own "
                    f"resolution ({width}x{height} px, nothing resized)")
        if self.view == "crops":
            return f"{self.crops} crops of {self.image_size} px after bringing the shorter side to 256 px"
        return f"the whole image shrunk to {self.image_size}x{self.image_size} px"

    def route(self, shape: Sequence[int]):
        """The one decision of which model and which view answers an image of this shape (height,
        width[, channels]: its size decides, so a file is routed before it is decoded):
        (predictor, reason). A native-resolution model answers every image that holds one of its
        crops; a smaller one goes to the model for small images (SMALL_IMAGE_MODEL_PATH) where there is one."""
        height, width = shape[:2]
        if self.view == "native" and min(height, width) < self.image_size:
            if self.small is not None:
                return self.small, (f"{self.small.name}: {width}x{height} px is smaller than {self.name}'s "
                                    f"{self.image_size} px crops; {self.small.describe_view(width, height)}")
            return self, (f"{self.name}: {width}x{height} px is smaller than its {self.image_size} px crops, "
                          "padded with black (no model for small images found): unreliable")
        return self, f"{self.name}: {self.describe_view(width, height)}"

    def kind(self, shape: Sequence[int]) -> str:
        """The kind of image (shape: height, width[, channels]) this model's records measure it
        against ('small', 'full-size')."""
        return image_kind(shape[1], shape[0], self.view)

    def worth(self, kind: str) -> Worth:
        """What this model's answer is worth for that kind of image (measured.worth on its records)."""
        if kind not in self._worth:
            self._worth[kind] = worth(self.run_info(), self.view, kind)
        return self._worth[kind]

    @property
    def scored(self) -> bool:
        """Whether some answers carry a scope score (this model's scope, or its small-image model's)."""
        return self.scope is not None or (self.small is not None and self.small.scope is not None)

    def inputs(self, rgb: np.ndarray) -> np.ndarray:
        """Decoded RGB -> this model's inputs for it, (views, size, size, 3) uint8."""
        return to_inputs(rgb, self.image_size, self.view, self.crops)

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
        view = settings.get("view", "resize")
        small = None
        if view == "native" and SMALL_IMAGE_MODEL_PATH.is_file() and SMALL_IMAGE_MODEL_PATH.resolve() != path.resolve():
            small = cls.load(SMALL_IMAGE_MODEL_PATH, mirror, calibrated)
        return cls(model, path, mirror, view, settings.get("crops", 1),
                   read_temperature(path, mirror) if calibrated else None, scope, small)

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
        return self._per_image(self._forward(tf.convert_to_tensor(flat)).numpy()[:, FAKE_INDEX], batch)

    def _per_image(self, prob_ai: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """P(AI) per view -> per image: views reduced, then calibrated."""
        if batch.ndim == 5:
            prob_ai = prob_ai.reshape(len(batch), -1)
            # native crops of one image can disagree strongly: averaging their logits lets a crop
            # that is sure count for more than one that is not, as NPR-style detectors do
            prob_ai = mean_in_logits(prob_ai) if self.view == "native" else prob_ai.mean(axis=1)
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

    @functools.cached_property
    def _two_outputs(self):
        """The model with its pooled features as a second output (models with a scope)."""
        return keras.Model(self.model.input, [self.model.output, self.model.get_layer(FEATURE_LAYER).output])

    def _model_outputs(self, inputs: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """The forward pass as TensorFlow ops (self.outputs: traced once and reused):
        (N >= 1, [views,] size, size, 3) float32 inputs -> per view, (class probabilities as
        forward() gives them, pooled features for the scope (width 0 for a model without one)),
        float32, from one pass."""
        flat = tf.reshape(inputs, (-1, self.image_size, self.image_size, 3))
        if self.scope is None:
            return tf.cast(forward(self.model, self.mirror)(flat), tf.float32), tf.zeros((tf.shape(flat)[0], 0))
        probs, features = probabilities_and_features(self._two_outputs, self.mirror, flat)
        return tf.cast(probs, tf.float32), tf.cast(features, tf.float32)

    def answers_from(self, batch: np.ndarray, probs, features):
        """(P(AI-generated), scope scores or None, outside) per image of a batch of inputs, from
        outputs()' probabilities and features for it: views reduced, calibrated, scope measured
        (outside: beyond the model's scope, or lacking fine detail)."""
        if len(batch) == 0:
            return np.zeros((0,), np.float32), None, np.zeros(0, dtype=bool)
        prob_ai, plain = self._per_image(np.asarray(probs)[:, FAKE_INDEX], batch), lacks_detail(batch)
        if self.scope is None:
            return prob_ai, None, plain
        features = np.asarray(features)
        scores = self.scope.scores(features.reshape(len(batch), -1, features.shape[-1]).mean(axis=1))
        return prob_ai, scores, (scores > self.scope.threshold) | plain

    def answers_batch(self, batch: np.ndarray):
        """answers_from for a batch of inputs, its forward passes run here, VIEWS_PER_PASS views
        at a time."""
        batch = np.asarray(batch, dtype=np.float32)
        if len(batch) == 0:
            return self.answers_from(batch, None, None)
        step = max(1, VIEWS_PER_PASS // int(np.prod(batch.shape[1:-3], dtype=int)))
        parts = [[t.numpy() for t in self.outputs(tf.convert_to_tensor(batch[i:i + step]))]
                 for i in range(0, len(batch), step)]
        return self.answers_from(batch, *(np.concatenate(outputs) for outputs in zip(*parts)))

    def results(self, names: Sequence[str], batch: np.ndarray, threshold: float, uncertain_band: float,
                images: Optional[Sequence] = None, routes: Optional[Sequence[str]] = None,
                evidence: Optional[Sequence] = None, kinds: Optional[Sequence[str]] = None,
                outputs: Optional[Tuple] = None) -> List[Result]:
        """One Result per image of a batch of this model's inputs: probability, scope, (routes) why
        this model answered it, (kinds) what that answer is worth for its kind of image, and the
        verdict of labels.verdict from the pixels and (evidence) what each file says about itself.
        outputs: outputs()' results for the batch where they were computed already."""
        prob_ai, scores, outside = (self.answers_from(batch, *outputs) if outputs is not None
                                    else self.answers_batch(batch))
        evidence = evidence if evidence is not None else [None] * len(names)
        worths = [self.worth(kind) for kind in kinds] if kinds is not None else [Worth("")] * len(names)
        return [Result(name, float(p), verdict(float(p), threshold, uncertain_band, bool(out), evidence[i], worths[i].cap),
                       image=None if images is None else images[i],
                       scope_score=None if scores is None else float(scores[i]), out_of_scope=bool(out),
                       model=self.name, route="" if routes is None else routes[i], evidence=evidence[i],
                       caveat=worths[i].caveat, cap=worths[i].cap)
                for i, (name, p, out) in enumerate(zip(names, prob_ai, outside))]

    def answer(self, names: Sequence[str], loaded: Iterable, threshold: float = DEFAULT_THRESHOLD,
               uncertain_band: float = DEFAULT_UNCERTAIN_BAND, keep_images: bool = False,
               trust_anchors: str = "") -> List[Result]:
        """One Result per (images.LoadedImage or None, error or None) pair, each answered by the
        model route() chooses for it and with its file's evidence (read against trust_anchors, a PEM
        list; '' = none), in the order of names. Pairs are consumed one at a time: only the models'
        inputs stay in memory, not the full-size images (unless keep_images)."""
        answered, groups = {}, {}
        for i, (image, error) in enumerate(loaded):
            if error:
                answered[i] = Result(names[i], error=error)
                continue
            predictor, reason = self.route(image.rgb.shape)
            groups.setdefault(id(predictor), (predictor, []))[1].append(
                (i, predictor.inputs(image.rgb), reason, image.rgb if keep_images else None,
                 read_evidence(image.metadata, trust_anchors), predictor.kind(image.rgb.shape)))
        for predictor, members in groups.values():
            index, inputs, reasons, rgbs, evidence, kinds = zip(*members)
            answered.update(zip(index, predictor.results(
                [names[i] for i in index], np.stack(inputs).astype(np.float32),
                threshold, uncertain_band, rgbs, reasons, evidence, kinds)))
        return [answered[i] for i in range(len(names))]

    def classify(self, sources: Sequence, names: Optional[Sequence[str]] = None,
                 threshold: float = DEFAULT_THRESHOLD, uncertain_band: float = DEFAULT_UNCERTAIN_BAND,
                 keep_images: bool = False, trust_anchors: str = "") -> List[Result]:
        """Classify bytes/paths together; unreadable ones get a Result with an error."""
        names = list(names) if names is not None else [str(s) for s in sources]
        return self.answer(names, (image_files.try_load_image(source, name) for source, name in zip(sources, names)),
                           threshold, uncertain_band, keep_images, trust_anchors)

    def classify_one(self, source, name: str = "", **options) -> Result:
        return self.classify([source], [name or str(source)], **options)[0]
