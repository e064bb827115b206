"""Build the classifier (the seed's head on a backbone) and save/load slim model files.

Raw RGB pixels (0..255, float) go in; scaling happens in the first layer, so training and serving
cannot disagree. The output is the softmax over labels.CLASS_NAMES.

Backbones: ResNet101 (bottleneck v1, as keras.applications builds it) with one of three stems, a
compact CNN that keeps full resolution in its first block, and a tiny CNN for tests.
"""
import json
from pathlib import Path

import keras
import numpy as np

from .errors import InputError
from .files import atomic_path
from .labels import CLASS_NAMES
from .quiet import native_logs_silenced
from .settings import Settings

MODEL_FILE = "model.keras"          # a run folder's model: models/<run>/model.keras
INPUT_NAME = "image"
OUTPUT_NAME = "prediction"


class ModelError(InputError):
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


def _compact_backbone(x):
    """3 blocks of 2x (3x3 conv, batch norm, ReLU) + 2x2 max pool, 32/64/128 filters: the first
    block sees every pixel at full resolution (32 px -> 32, 16, 8 cells)."""
    for block, filters in enumerate((32, 64, 128), start=1):
        for conv in (1, 2):
            name = f"block{block}_conv{conv}"
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
            x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
            x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
        x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    return x


# The "residual" backbone: (stage name, filters, basic blocks, first stride) after a stride-2 stem
# and a max pool, as NPR's truncated ResNet (Tan et al., CVPR 2024: conv1, layer1, layer2), with
# basic blocks (0.68 M parameters): a 96 px crop is 24x24 at layer1, 12x12 at layer2.
RESIDUAL_STAGES = (("layer1", 64, 2, 1), ("layer2", 128, 2, 2))


def _basic_block(x, filters: int, stride: int, name: str):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projected) shortcut."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = keras.layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_conv1_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_conv1_relu")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_conv2_bn")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def _residual_backbone(x):
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, filters, blocks, first_stride in RESIDUAL_STAGES:
        for block in range(1, blocks + 1):
            x = _basic_block(x, filters, first_stride if block == 1 else 1, f"{stage}_block{block}")
    return x


# ResNet101: (stage name, bottleneck width, blocks, first stride), as in keras.applications
RESNET101_STAGES = (("conv2", 64, 3, 1), ("conv3", 128, 4, 2), ("conv4", 256, 23, 2), ("conv5", 512, 3, 2))
# stem -> (first conv's stride, max pool kept); spatial size at conv2..conv5 for a 32 px input:
#   imagenet 8, 4, 2, 1   pool-only 16, 8, 4, 2   cifar 32, 16, 8, 4
STEM_LAYOUT = {"imagenet": (2, True), "pool-only": (1, True), "cifar": (1, False)}


def _bottleneck(x, filters: int, stride: int, name: str, project: bool):
    """keras.applications' residual_block_v1, with its layer names (explain.py and weight
    transfer between stems rely on them)."""
    batch_norm = dict(axis=3, epsilon=1.001e-5)
    if project:
        shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = keras.layers.BatchNormalization(**batch_norm, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = keras.layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = keras.layers.BatchNormalization(**batch_norm, name=f"{name}_1_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = keras.layers.BatchNormalization(**batch_norm, name=f"{name}_2_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = keras.layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = keras.layers.BatchNormalization(**batch_norm, name=f"{name}_3_bn")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def resnet101_backbone(x, stem: str = "imagenet"):
    """ResNet101 without its top. The 7x7 stem kernel has the same shape for every stem, so
    weights move between stems (training with --init-from)."""
    if stem not in STEM_LAYOUT:
        raise ValueError(f"unknown stem {stem!r}: use one of {', '.join(STEM_LAYOUT)}")
    stride, pool = STEM_LAYOUT[stem]
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(64, 7, strides=stride, name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(axis=3, epsilon=1.001e-5, name="conv1_bn")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    if pool:
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, filters, blocks, first_stride in RESNET101_STAGES:
        for block in range(1, blocks + 1):
            x = _bottleneck(x, filters, first_stride if block == 1 else 1, f"{stage}_block{block}",
                            project=block == 1)
    return x


def build_model(settings: Settings, dtype: str = "") -> keras.Model:
    """dtype sets the policy of every layer but the softmax (float16 for slim files); by default
    the settings' precision ("bfloat16" -> Keras' mixed_bfloat16: bfloat16 maths, float32 weights)."""
    dtype = dtype or ("mixed_bfloat16" if settings.precision == "bfloat16" else "float32")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        return _build(settings)
    finally:
        keras.config.set_dtype_policy(previous)


def _build(settings: Settings) -> keras.Model:
    inputs = keras.Input((settings.image_size, settings.image_size, 3), name=INPUT_NAME)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    if settings.residual_input:         # x - nearest_up(x[::2, ::2]): built from serializable layers
        coarse = keras.layers.AveragePooling2D(pool_size=1, strides=2, name="subsample")(x)
        coarse = keras.layers.UpSampling2D(2, interpolation="nearest", name="upsample")(coarse)
        x = keras.layers.Subtract(name="residual")([x, coarse])
    backbones = {"resnet101": lambda t: resnet101_backbone(t, settings.stem),
                 "compact": _compact_backbone, "residual": _residual_backbone, "tiny": _tiny_backbone}
    if settings.backbone not in backbones:
        raise ValueError(f"unknown backbone {settings.backbone!r}: use one of {', '.join(backbones)}")
    x = backbones[settings.backbone](x)
    x = keras.layers.GaussianNoise(settings.noise_stddev, seed=settings.seed, name="noise")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if settings.dense_units:
        x = keras.layers.Dense(settings.dense_units, activation="relu",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=settings.seed),
                               kernel_regularizer=keras.regularizers.L1L2(l1=settings.l1, l2=settings.l2),
                               name="dense")(x)
    x = keras.layers.Dropout(settings.dropout, seed=settings.seed, name="dropout")(x)
    outputs = keras.layers.Dense(len(CLASS_NAMES), activation="softmax", name=OUTPUT_NAME,
                                 dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"aidetect_{settings.backbone}")


def save_slim(trained: keras.Model, settings: Settings, path) -> Path:
    """Save the weights in a fresh, uncompiled model (no optimizer state), float16 if the settings say."""
    dtype = "float16" if settings.float16_weights else "float32"
    with native_logs_silenced():
        fresh = build_model(settings, dtype=dtype)
        fresh.set_weights([w.astype(dtype) if w.dtype.kind == "f" else w for w in trained.get_weights()])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, ".tmp.keras") as temporary:
        fresh.save(temporary)
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
        with native_logs_silenced():        # float16 files make oneDNN print "DT_HALF" lines
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
