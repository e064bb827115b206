"""Heatmaps of which pixels drove a prediction, and overlays of them on the user's image.

Three methods, all for one class's score (by default "AI-generated"):
  gradcam               Grad-CAM on a convolutional feature map. At the trained 32 px input
                        ResNet101's last block is 1x1, so textbook Grad-CAM there is flat; the
                        default layer is the deepest one still at least GRADCAM_MIN_SIZE cells
                        wide (ResNet101 at 32 px: conv2_block3_out, 8x8, one cell per 4x4 pixels).
  smoothgrad            |gradient| averaged over noisy copies of the image (per pixel).
  integrated_gradients  gradient x (image - black) integrated along the path from black (per pixel).

The score is the class's log-odds, log(p / (1 - p)), computed from the pre-softmax logits: the
gradient of a probability vanishes when the model is confident, the log-odds' does not.
Every heatmap is (size, size) float32 in [0, 1], at the model's input size.
"""
import functools
from pathlib import Path
from typing import Optional, Union

import keras
import matplotlib
import numpy as np
import tensorflow as tf
from PIL import Image

from .labels import FAKE_INDEX
from .model import OUTPUT_NAME

METHODS = ("gradcam", "smoothgrad", "integrated_gradients")
# The deletion test (benchmarks/faithfulness.py, docs/results.md) on the model the tools serve
# (models/compact): only Integrated Gradients' top 5 % pixels matter more than random ones.
DEFAULT_METHOD = "integrated_gradients"
HOW_TO_READ = ("Red/yellow pixels are the ones the model's answer is most sensitive to, blue the least; "
               "it shows where the model looked, not proof of editing or generation.")
GRADCAM_MIN_SIZE = 8            # cells per side of the default Grad-CAM layer
OVERLAY_MIN_SIDE = 256          # saved overlays: a 32 px image is enlarged (crisp pixels) to be readable
OVERLAY_MAX_SIDE = 1024         # and a 4000 px photo shrunk, so that the PNG stays small
LEGEND_HEIGHT = 28
_FEATURE_LAYERS = (keras.layers.Conv2D, keras.layers.Activation, keras.layers.ReLU)

ClassIndex = Union[int, np.ndarray]     # one class for the batch, or one per image


# ---------------------------------------------------------------- scores and gradients
def _log_odds(model: keras.Model, features, class_per_image):
    """Penultimate features -> log(p / (1 - p)) of each image's chosen class."""
    head = model.get_layer(OUTPUT_NAME)
    logits = tf.matmul(features, head.kernel) + head.bias
    chosen = tf.one_hot(class_per_image, logits.shape[-1]) > 0
    return (tf.reduce_sum(tf.where(chosen, logits, 0.0), axis=-1)
            - tf.reduce_logsumexp(tf.where(chosen, -np.inf, logits), axis=-1))


def _feature_model(model: keras.Model, layer_name: Optional[str]) -> keras.Model:
    """image -> (the layer's activations, the prediction layer's input); the input if no layer."""
    head_input = model.get_layer(OUTPUT_NAME).input
    layer_output = model.get_layer(layer_name).output if layer_name else model.inputs[0]
    return keras.Model(model.inputs, [layer_output, head_input])


@functools.lru_cache(maxsize=4)
def _gradient_function(model: keras.Model, layer_name: Optional[str]):
    """A traced (images, class per image) -> (activations, d log-odds / d activations) of the
    layer, or of the input pixels. Tracing takes seconds once per model and layer; the calls
    after it run several times faster than eager ones, which matters for ResNet101 on a CPU."""
    features = _feature_model(model, layer_name)
    image_spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32)

    @tf.function(input_signature=[image_spec, tf.TensorSpec((None,), tf.int32)])
    def gradients(images, class_per_image):
        with tf.GradientTape() as tape:
            tape.watch(images)
            layer_output, head_input = features(images, training=False)
            score = _log_odds(model, head_input, class_per_image)
        return layer_output, tape.gradient(score, layer_output)
    return gradients


def _gradients(model: keras.Model, images: np.ndarray, class_index: ClassIndex,
               layer_name: Optional[str] = None, batch_size: int = 64):
    """Activations and gradients for a batch of any length, in chunks of batch_size."""
    gradient_function = _gradient_function(model, layer_name)
    class_per_image = np.broadcast_to(np.asarray(class_index, np.int32), (len(images),))
    activations, gradients = [], []
    for start in range(0, len(images), batch_size):
        chunk = slice(start, start + batch_size)
        layer_output, gradient = gradient_function(images[chunk], class_per_image[chunk])
        activations.append(layer_output.numpy())
        gradients.append(gradient.numpy())
    return np.concatenate(activations), np.concatenate(gradients)


# ---------------------------------------------------------------- maps to [0, 1]
def _resize(maps: np.ndarray, size: int) -> np.ndarray:
    return tf.image.resize(maps[..., None], (size, size), method="bilinear").numpy()[..., 0]


def _scale_by_max(maps: np.ndarray) -> np.ndarray:
    """Non-negative maps -> [0, 1]; an all-zero map (nothing supports the class) stays zero."""
    return (maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)).astype(np.float32)


def _pixel_map(attributions: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) attributions -> (N, H, W) in [0, 1]; the 99th percentile maps to 1 so that a
    few extreme pixels do not leave the rest of the map black."""
    magnitude = np.abs(attributions).sum(axis=-1)
    top = np.percentile(magnitude, 99, axis=(1, 2), keepdims=True)
    return np.clip(magnitude / np.maximum(top, 1e-12), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- methods (batches in, maps out)
def default_gradcam_layer(model: keras.Model, min_size: int = GRADCAM_MIN_SIZE) -> str:
    """The deepest conv/activation layer whose feature map is at least min_size cells wide."""
    input_size = int(model.input_shape[1])
    for layer in reversed(model.layers):
        shape = layer.output.shape
        if isinstance(layer, _FEATURE_LAYERS) and len(shape) == 4 and shape[1] >= min(min_size, input_size):
            return layer.name
    raise ValueError(f"{model.name} has no feature map of at least {min_size} cells for Grad-CAM")


def gradcam_heatmap(model: keras.Model, images: np.ndarray, layer_name: Optional[str] = None,
                    class_index: ClassIndex = FAKE_INDEX) -> np.ndarray:
    """Grad-CAM: feature maps weighted by their mean gradient, positive part, upsampled."""
    layer_name = layer_name or default_gradcam_layer(model)
    activations, gradients = _gradients(model, images, class_index, layer_name)
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    cams = np.maximum((activations * weights).sum(axis=-1), 0.0)
    return _scale_by_max(_resize(cams, images.shape[1]))


def smoothgrad(model: keras.Model, images: np.ndarray, samples: int = 32, noise: float = 0.15,
               seed: int = 0, class_index: ClassIndex = FAKE_INDEX) -> np.ndarray:
    """Mean |gradient| over `samples` copies with Gaussian noise of std noise x 255 (seeded)."""
    rng = np.random.default_rng(seed)
    shape = (len(images), samples) + images.shape[1:]
    noisy = (images[:, None] + rng.normal(0.0, noise * 255.0, shape)).astype(np.float32)
    per_copy = np.repeat(np.broadcast_to(class_index, (len(images),)), samples)
    _, gradients = _gradients(model, noisy.reshape((-1,) + images.shape[1:]), per_copy)
    return _pixel_map(np.abs(gradients).reshape(noisy.shape).mean(axis=1))


def integrated_gradients(model: keras.Model, images: np.ndarray, steps: int = 32,
                         class_index: ClassIndex = FAKE_INDEX) -> np.ndarray:
    """(image - black) x the mean gradient along the straight path from black (trapezoid rule)."""
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32)[None, :, None, None, None]
    path = images[:, None] * alphas
    per_step = np.repeat(np.broadcast_to(class_index, (len(images),)), steps + 1)
    _, gradients = _gradients(model, path.reshape((-1,) + images.shape[1:]), per_step)
    gradients = gradients.reshape(path.shape)
    mean_gradient = ((gradients[:, :-1] + gradients[:, 1:]) / 2).mean(axis=1)
    return _pixel_map(images * mean_gradient)


_BY_NAME = {"gradcam": gradcam_heatmap, "smoothgrad": smoothgrad,
            "integrated_gradients": integrated_gradients}


def explain_batch(model: keras.Model, images: np.ndarray, method: str = DEFAULT_METHOD,
                  **options) -> np.ndarray:
    """(N, size, size, 3) raw 0..255 pixels -> (N, size, size) heatmaps in [0, 1].

    options go to the method: class_index (default the AI-generated class) for all; layer_name
    for gradcam; samples, noise, seed for smoothgrad; steps for integrated_gradients.
    """
    if method not in _BY_NAME:
        raise ValueError(f"unknown explanation method {method!r}: use one of {', '.join(METHODS)}")
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(f"expected images of shape (N, {', '.join(map(str, expected))}), "
                         f"got {images.shape}")
    return _BY_NAME[method](model, images, **options)


def explain(model: keras.Model, image: np.ndarray, method: str = DEFAULT_METHOD,
            **options) -> np.ndarray:
    """One model input (size x size x 3, raw 0..255) -> a (size, size) heatmap in [0, 1]."""
    return explain_batch(model, np.asarray(image)[None], method, **options)[0]


def explain_answer(predictor, rgb: np.ndarray, prob_ai: float):
    """(the picture the heatmap belongs to, heatmap) for the model that answered a decoded image
    (Predictor.route), explaining that model's own answer: the whole image for a model that sees
    it shrunk, the centre crop for a native-resolution model (it never sees the whole image)."""
    from .labels import predicted_index

    answering, _ = predictor.route(rgb.shape)
    view = answering.preprocess(rgb)
    heatmap = explain(answering.model, view, class_index=predicted_index(prob_ai))
    return (view.astype(np.uint8) if answering.view == "native" else rgb), heatmap


# ---------------------------------------------------------------- display
def overlay(rgb: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4,
            colormap: str = "jet") -> np.ndarray:
    """Blend the heatmap, stretched to the image's own size (any size), over an RGB uint8 image."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    stretched = np.asarray(Image.fromarray(np.asarray(heatmap, np.float32))
                           .resize((width, height), Image.Resampling.BILINEAR))
    colours = matplotlib.colormaps[colormap](np.clip(stretched, 0.0, 1.0))[..., :3] * 255.0
    return np.round((1.0 - alpha) * rgb + alpha * colours).astype(np.uint8)


def readable_size(rgb: np.ndarray) -> np.ndarray:
    """The image at a size people can read: the shorter side at least OVERLAY_MIN_SIDE (whole-pixel
    enlargement, so small images stay sharp), the longer side at most OVERLAY_MAX_SIDE."""
    height, width = rgb.shape[:2]
    scale = max(1, OVERLAY_MIN_SIDE // min(height, width))
    if max(height, width) * scale > OVERLAY_MAX_SIDE:
        scale = OVERLAY_MAX_SIDE / max(height, width)
    if scale == 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(rgb).resize(size, method))


def legend(width: int, colormap: str = "jet") -> np.ndarray:
    """A strip under a saved overlay: the colour scale, labelled 'least' and 'most' sensitive."""
    from PIL import ImageDraw
    strip = Image.new("RGB", (width, LEGEND_HEIGHT), "white")
    bar_left, bar_right = 52, max(53, width - 48)
    colours = matplotlib.colormaps[colormap](np.linspace(0, 1, bar_right - bar_left))[:, :3] * 255
    strip.paste(Image.fromarray(np.repeat(colours[np.newaxis].astype(np.uint8), 12, axis=0)), (bar_left, 8))
    draw = ImageDraw.Draw(strip)
    draw.text((4, 8), "least", fill="black")
    draw.text((bar_right + 4, 8), "most", fill="black")
    return np.asarray(strip)


def save_overlay_png(rgb: np.ndarray, heatmap: np.ndarray, path, alpha: float = 0.4) -> Path:
    """The overlay at a readable size with its colour legend underneath, as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blended = overlay(readable_size(np.asarray(rgb, dtype=np.uint8)), heatmap, alpha)
    Image.fromarray(np.concatenate([blended, legend(blended.shape[1])])).save(path, format="PNG")
    return path
