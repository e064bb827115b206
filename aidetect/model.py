"""Build the classifier (the seed's head on ResNet101) and save/load slim model files.

Raw RGB pixels (0..255, float) go in; scaling happens in the first layer, so training and serving
cannot disagree. The output is the softmax over labels.CLASS_NAMES.
"""
import json
import os
from pathlib import Path

import keras
import numpy as np

from .labels import CLASS_NAMES
from .settings import Settings

MODEL_FILE = "model.keras"          # a run folder's model: models/<run>/model.keras
INPUT_NAME = "image"
OUTPUT_NAME = "prediction"


class ModelError(ValueError):
    """A model file that cannot be used; the message names the path and what to do."""


def model_file(path) -> Path:
    """A .keras file or a run folder (models/<run>/) -> the .keras file's path."""
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() else path


def _tiny_backbone(x):
    """A small CNN with the same interface, for tests and smoke runs (not for real use)."""
    for index, filters in enumerate((8, 16)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"tiny_conv{index + 1}")(x)
        x = keras.layers.MaxPooling2D(name=f"tiny_pool{index + 1}")(x)
    return x


def build_model(settings: Settings, dtype: str = "float32") -> keras.Model:
    """dtype sets the weights' type of every layer but the softmax (float16 for slim files)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)   # the only way to reach the layers ResNet101 makes itself
    try:
        return _build(settings)
    finally:
        keras.config.set_dtype_policy(previous)


def _build(settings: Settings) -> keras.Model:
    inputs = keras.Input((settings.image_size, settings.image_size, 3), name=INPUT_NAME)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    if settings.backbone == "resnet101":
        # input_tensor keeps the ResNet layers flat in this model, so explain.py can reach them
        backbone = keras.applications.ResNet101(weights=None, include_top=False, input_tensor=x)
        x = backbone.output
    elif settings.backbone == "tiny":
        x = _tiny_backbone(x)
    else:
        raise ValueError(f"unknown backbone {settings.backbone!r}: use 'resnet101' or 'tiny'")
    x = keras.layers.GaussianNoise(settings.noise_stddev, seed=settings.seed, name="noise")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(settings.dense_units, activation="relu",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=settings.seed),
                           kernel_regularizer=keras.regularizers.L1L2(l1=settings.l1, l2=settings.l2),
                           name="dense")(x)
    x = keras.layers.Dropout(settings.dropout, seed=settings.seed, name="dropout")(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax", name=OUTPUT_NAME,
                                 dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"aidetect_{settings.backbone}")


def _atomic_save(model: keras.Model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)           # a reader never sees a half-written model


def save_slim(trained: keras.Model, settings: Settings, path) -> Path:
    """Save the weights in a fresh, uncompiled model (no optimizer state), float16 if the settings say."""
    dtype = "float16" if settings.float16_weights else "float32"
    fresh = build_model(settings, dtype=dtype)
    fresh.set_weights([w.astype(dtype) if w.dtype.kind == "f" else w for w in trained.get_weights()])
    _atomic_save(fresh, Path(path))
    return Path(path)


def _as_float32(model: keras.Model) -> keras.Model:
    """float16 file -> float32 model: CPUs compute float16 convolutions slowly."""
    if all(w.dtype == "float32" for w in model.weights):
        return model
    config = json.loads(json.dumps(model.get_config()).replace('"float16"', '"float32"'))
    model32 = keras.Model.from_config(config)
    model32.set_weights([np.asarray(w, dtype=np.float32) for w in model.get_weights()])
    return model32


def load_model(path) -> keras.Model:
    """Load a .keras classifier safely (no unsafe deserialization) and check it is one of ours."""
    path = model_file(path)
    if not path.is_file():
        raise ModelError(f"no model at {path}: train one with `python model_training.py train` "
                         "or pass --model with the path of a .keras file")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for broken, foreign or unsafe files
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot load model {path}: {reason}. Re-download or retrain it.") from None
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[-1] != 3 or tuple(model.output_shape) != (None, len(CLASS_NAMES)):
        raise ModelError(f"{path} is not an AI-vs-real classifier: expected input (None, H, W, 3) and "
                         f"output (None, {len(CLASS_NAMES)}), got {shape} -> {model.output_shape}")
    return _as_float32(model)


def model_image_size(model: keras.Model) -> int:
    return int(model.input_shape[1])
