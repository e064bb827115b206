"""The augmentations, defined once: used offline by augment_data.py and online by training.

Reproducible: each layer draws from its own seeded Keras SeedGenerator through stateless TF random
ops, so the same seed, inputs and call order give byte-identical pixels in every process.
"""
import shutil
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
from PIL import Image, JpegImagePlugin
from tqdm import tqdm

from . import images
from .errors import InputError
from .settings import AUGMENT_MODES

MAX_PIXELS_PER_BATCH = 4_000_000    # ~48 MB of float32 per layer call: big batches, bounded memory


class AugmentError(InputError):
    """Settings or folders that cannot be used; str(error) is a one-line reason."""


PRESETS = ("keep-pixels", "geometric")


@dataclass(frozen=True)
class AugmentSettings:
    # "keep-pixels": whole-pixel shifts (up to MAX_SHIFT_FRACTION) and mirroring, and on
    # `robust_probability` of the copies one everyday change (ROBUST_CHANGES), as `train --augment
    # robust`; no resampling of every pixel. "geometric": the seed project's rotation, shift,
    # shear and zoom below, which resample (blur) every pixel of a 32 px image.
    preset: str = "keep-pixels"
    robust_probability: float = 0.5
    rotation_degrees: float = 20.0      # up to this many degrees either way
    width_shift: float = 0.2            # up to this fraction of the width either way
    height_shift: float = 0.2
    shear: float = 0.2                  # up to this fraction of the image, on both axes
    zoom: float = 0.2                   # in or out by up to this fraction, each axis drawn alone
    horizontal_flip: bool = True

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise AugmentError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if not 0 <= self.robust_probability <= 1:
            raise AugmentError(f"robust probability must be in [0, 1], got {self.robust_probability}")
        if not 0 <= self.rotation_degrees <= 180:
            raise AugmentError(f"rotation must be in [0, 180] degrees, got {self.rotation_degrees}")
        for name in ("width_shift", "height_shift", "shear", "zoom"):
            if not 0 <= getattr(self, name) <= 1:
                raise AugmentError(f"{name.replace('_', ' ')} must be in [0, 1], got {getattr(self, name)}")


def augmentation_layers(settings: AugmentSettings = AugmentSettings(), seed: int = 42):
    """A Keras Sequential of preprocessing layers; acts on batches of float pixels when training=True."""
    import keras

    layers = [
        keras.layers.RandomRotation(settings.rotation_degrees / 360.0, fill_mode="reflect", seed=seed),
        keras.layers.RandomTranslation(settings.height_shift, settings.width_shift, fill_mode="reflect",
                                       seed=seed + 1),
        keras.layers.RandomShear(settings.shear, settings.shear, fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomZoom(settings.zoom, settings.zoom, fill_mode="reflect", seed=seed + 3),
    ]
    if settings.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(layers, name="augmentation")


MAX_SHIFT_FRACTION = 0.125              # 4 px of a 32 px image


def online_augmentation(mode: str, seed: int = 42):
    """Batch-level training layers for a Settings.augment mode, or None for "none".

    "shift-flip" (and "robust", whose per-image changes come from robust_change) moves images by
    whole pixels (nearest, reflected edges) and mirrors them: every output pixel is an input pixel.
    "full" is augment_data.py's set, whose rotation, shear and zoom resample (blur) every pixel.
    """
    import keras

    if mode not in AUGMENT_MODES:
        raise AugmentError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {mode!r}")
    if mode == "none":
        return None
    if mode == "full":
        return augmentation_layers(seed=seed)
    return keras.Sequential([
        keras.layers.RandomTranslation(MAX_SHIFT_FRACTION, MAX_SHIFT_FRACTION, fill_mode="reflect",
                                       interpolation="nearest", seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
    ], name="shift_flip")


# ---------------------------------------------------------------- robust: what happens to photos
# The changes an image meets on its way to a user, at the strengths drawn (the same for both
# classes). Training on them keeps the verdict when a picture is blurred, re-saved or resized.
ROBUST_CHANGES = ("blur", "jpeg", "downscale", "upscale", "sharpen", "brightness", "contrast", "grey")
BLUR_SIGMA = (0.3, 1.0)                 # Gaussian blur, pixels
JPEG_QUALITY = (40, 95)
RESIZE_REFERENCE = 32                   # the sizes below are for a 32 px side; other sizes scale
DOWNSCALE_SIZE = (16, 28)               # of a 32 px image: down to this many pixels, then back
UPSCALE_SIZE = (64, 256)                # up (bicubic), then back through the app's own resize
SHARPEN_AMOUNT = (0.5, 1.5)             # unsharp mask: image + amount x (image - blur(image, 1 px))
BRIGHTNESS = (0.8, 1.2)                 # factor
CONTRAST = (0.75, 1.25)                 # factor around the image's mean


def _uniform(seed, bounds, dtype="float32"):
    import tensorflow as tf
    low, high = bounds
    if dtype == "int32":
        return tf.random.stateless_uniform([], seed, low, high + 1, dtype=tf.int32)
    return tf.random.stateless_uniform([], seed, low, high)


def _gaussian_blur(image, sigma):
    """HxWx3 float -> the same, blurred with a separable 7-tap Gaussian (reflected edges)."""
    import tensorflow as tf
    taps = tf.range(-3.0, 4.0)
    kernel = tf.exp(-0.5 * tf.square(taps / sigma))
    kernel /= tf.reduce_sum(kernel)
    padded = tf.pad(image[tf.newaxis], [[0, 0], [3, 3], [3, 3], [0, 0]], mode="REFLECT")
    rows = tf.tile(tf.reshape(kernel, [7, 1, 1, 1]), [1, 1, 3, 1])
    columns = tf.tile(tf.reshape(kernel, [1, 7, 1, 1]), [1, 1, 3, 1])
    blurred = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(blurred, columns, [1, 1, 1, 1], "VALID")[0]


def apply_change(name: str, image, seed):
    """One of ROBUST_CHANGES applied to an HxWx3 uint8 image at a strength drawn from `seed` (a
    stateless seed, shape [2]) -> HxWx3 uint8. Resizing strengths are for a 32 px side and scale
    with the image (a 64 px image goes down to 32-56 px)."""
    import tensorflow as tf

    shape = tf.shape(image)[:2]
    pixels = tf.cast(image, tf.float32)

    def draw(bounds, dtype="float32"):
        return _uniform(seed, bounds, dtype)

    def scaled(side):                   # a size drawn for a 32 px side, for this image
        return tf.cast(tf.round(tf.cast(shape, tf.float32) * tf.cast(side, tf.float32) / RESIZE_REFERENCE), tf.int32)

    def back(changed):                  # the app's own resize (preprocess.resize_to_model), to H x W
        return tf.image.resize(changed, shape, method="bilinear", antialias=True)

    if name == "blur":
        changed = _gaussian_blur(pixels, draw(BLUR_SIGMA))
    elif name == "jpeg":
        changed = tf.cast(tf.image.adjust_jpeg_quality(image, draw(JPEG_QUALITY, "int32")), tf.float32)
    elif name == "downscale":
        changed = back(tf.image.resize(pixels, scaled(draw(DOWNSCALE_SIZE, "int32")), method="bilinear",
                                       antialias=True))
    elif name == "upscale":
        large = tf.image.resize(pixels, scaled(draw(UPSCALE_SIZE, "int32")), method="bicubic")
        changed = tf.round(back(tf.clip_by_value(tf.round(large), 0, 255)))
    elif name == "sharpen":
        changed = pixels + draw(SHARPEN_AMOUNT) * (pixels - _gaussian_blur(pixels, 1.0))
    elif name == "brightness":
        changed = pixels * draw(BRIGHTNESS)
    elif name == "contrast":
        mean = tf.reduce_mean(pixels, axis=[0, 1], keepdims=True)
        changed = mean + (pixels - mean) * draw(CONTRAST)
    elif name == "grey":
        changed = tf.tile(tf.image.rgb_to_grayscale(pixels), [1, 1, 3])
    else:
        raise AugmentError(f"unknown change {name!r}: use one of {', '.join(ROBUST_CHANGES)}")
    return tf.cast(tf.clip_by_value(tf.round(changed), 0, 255), tf.uint8)


def robust_change(image, seed, probability: float = 0.5):
    """One HxWx3 uint8 image -> the same size; with probability `probability` changed by one of
    ROBUST_CHANGES (drawn uniformly). Same seed (shape [2]), same pixels."""
    import tensorflow as tf

    apply_seed, which_seed, strength_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3))
    which = tf.random.stateless_uniform([], which_seed, 0, len(ROBUST_CHANGES), dtype=tf.int32)
    changed = tf.switch_case(which, [lambda name=name: apply_change(name, image, strength_seed)
                                     for name in ROBUST_CHANGES])
    apply = tf.random.stateless_uniform([], apply_seed) < probability
    return tf.ensure_shape(tf.where(apply, changed, image), image.shape)


# ---------------------------------------------------------------- traces: native-resolution crops
# For models that read pixel traces ("native" view). Every change is drawn the same way for both
# classes, so none of them can become a label: a generated image and a camera photo are equally
# likely to be rescaled, turned, re-saved or masked (issue: compression history, source size).
TRACE_RESCALE = (0.5, 1.5)              # crop side / model size before resizing to the model size
TRACE_PROBABILITIES = {"rescale": 0.3, "colour": 0.2, "blur": 0.1, "mask": 0.1, "jpeg": 0.5}
TRACE_JPEG_QUALITY = (60, 100)
TRACE_COLOUR = (0.8, 1.2)               # brightness and contrast factors
TRACE_MASK = (0.1, 0.35)                # side of the masked square, as a share of the crop


def trace_view(image, size: int, seed):
    """HxWx3 uint8 (any size) -> one size x size x 3 uint8 training crop: a random crop of a side
    drawn around `size` (resized to `size` when it differs: 0.5-1.5x rescaling), a random 90-degree
    turn and mirror, then sometimes colour, blur or a grey mask, and JPEG q60-100 on half."""
    import tensorflow as tf

    seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 12))
    chance = lambda name, index: tf.random.stateless_uniform([], seeds[index]) < TRACE_PROBABILITIES[name]  # noqa: E731
    image = tf.convert_to_tensor(image, dtype=tf.uint8)
    shape = tf.shape(image)
    image = tf.image.pad_to_bounding_box(image, 0, 0, tf.maximum(shape[0], size), tf.maximum(shape[1], size))
    shorter = tf.reduce_min(tf.shape(image)[:2])
    scale = tf.where(chance("rescale", 0), _uniform(seeds[1], TRACE_RESCALE), 1.0)
    side = tf.clip_by_value(tf.cast(tf.round(size / scale), tf.int32), 8, shorter)
    crop = tf.image.stateless_random_crop(image, tf.stack([side, side, 3]), seeds[2])
    crop = tf.cond(side == size, lambda: crop, lambda: tf.cast(tf.clip_by_value(tf.round(
        tf.image.resize(crop, [size, size], method="bilinear", antialias=True)), 0, 255), tf.uint8))
    crop = tf.image.rot90(tf.ensure_shape(crop, [size, size, 3]),
                          tf.random.stateless_uniform([], seeds[3], 0, 4, dtype=tf.int32))
    crop = tf.image.stateless_random_flip_left_right(crop, seeds[4])
    pixels = tf.cast(crop, tf.float32)
    mean = tf.reduce_mean(pixels, axis=[0, 1], keepdims=True)
    coloured = (mean + (pixels - mean) * _uniform(seeds[5], TRACE_COLOUR)) * _uniform(seeds[6], TRACE_COLOUR)
    pixels = tf.where(chance("colour", 7), coloured, pixels)
    pixels = tf.where(chance("blur", 8), _gaussian_blur(pixels, _uniform(seeds[9], BLUR_SIGMA)), pixels)
    mask_side = tf.cast(size * _uniform(seeds[10], TRACE_MASK), tf.int32)
    corner = tf.random.stateless_uniform([2], seeds[10], 0, size - mask_side + 1, dtype=tf.int32)
    rows, cols = tf.range(size)[:, None], tf.range(size)[None, :]
    inside = ((rows >= corner[0]) & (rows < corner[0] + mask_side) & (cols >= corner[1]) & (cols < corner[1] + mask_side))
    pixels = tf.where(chance("mask", 11) & inside[..., None], 128.0, pixels)
    crop = tf.cast(tf.clip_by_value(tf.round(pixels), 0, 255), tf.uint8)
    quality = tf.random.stateless_uniform([], seeds[1] + 7, TRACE_JPEG_QUALITY[0], TRACE_JPEG_QUALITY[1] + 1,
                                          dtype=tf.int32)
    jpeg_seed = tf.random.experimental.stateless_fold_in(seeds[11], 1)
    crop = tf.cond(tf.random.stateless_uniform([], jpeg_seed) < TRACE_PROBABILITIES["jpeg"],
                   lambda: tf.image.adjust_jpeg_quality(crop, quality), lambda: crop)
    return tf.ensure_shape(crop, [size, size, 3])


# ---------------------------------------------------------------- offline: a folder of files
@dataclass
class AugmentReport:
    images: int = 0                     # input images augmented
    written: int = 0                    # files written: copies, and originals when asked
    skipped: List[Tuple[str, str]] = field(default_factory=list)   # (path under input, reason)


@dataclass(frozen=True)
class _Source:
    path: Path
    relative: Path                      # kept in the output, class sub-folders included
    pixels: np.ndarray
    save_options: Dict


def check_folders(input_dir, output_dir) -> Tuple[Path, Path]:
    """Resolved folders; AugmentError unless the input exists and the output lies outside it."""
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise AugmentError(f"input folder not found: {input_dir}")
    if output_dir == input_dir or input_dir in output_dir.parents:
        raise AugmentError(f"output folder {output_dir} is inside the input folder {input_dir}; "
                           "choose one outside it (the input is never written to)")
    return input_dir, output_dir


def copy_name(relative: Path, copy: int) -> Path:
    """REAL/x.jpg, 0 -> REAL/x_aug0.jpg"""
    return relative.with_name(f"{relative.stem}_aug{copy}{relative.suffix}")


def _save_options(path: Path) -> Dict:
    """The input's format; for JPEG also its quantisation tables and chroma subsampling, so the
    copies carry the same compression artefacts as the originals (a detector could learn them)."""
    with Image.open(path) as image:        # reads the header only
        if isinstance(image, JpegImagePlugin.JpegImageFile):
            return {"format": "JPEG", "qtables": image.quantization,
                    "subsampling": JpegImagePlugin.get_sampling(image)}
        return {"format": image.format}


def _load_batches(paths: List[Path], input_dir: Path, skipped: list) -> Iterator[Tuple[List[_Source], int]]:
    """(readable images, files consumed) in path order, at most ~MAX_PIXELS_PER_BATCH pixels each."""
    batch, pixels, consumed = [], 0, 0
    for path in paths:
        consumed += 1
        relative = path.relative_to(input_dir)
        array, error = images.try_load_rgb(path)
        if error:
            skipped.append((relative.as_posix(), error))
            continue
        batch.append(_Source(path, relative, array, _save_options(path)))
        pixels += array.shape[0] * array.shape[1]
        if pixels >= MAX_PIXELS_PER_BATCH:
            yield batch, consumed
            batch, pixels, consumed = [], 0, 0
    if consumed:
        yield batch, consumed


def _same_size_groups(sources: List[_Source]) -> List[List[_Source]]:
    groups = defaultdict(list)
    for source in sources:
        groups[source.pixels.shape].append(source)
    return list(groups.values())


def _save(pixels: np.ndarray, path: Path, options: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)


def augment_folder(input_dir, output_dir, copies: int = 5, seed: int = 42,
                   settings: AugmentSettings = AugmentSettings(), include_originals: bool = False,
                   progress: bool = True) -> AugmentReport:
    """Write `copies` augmented versions of every image under input_dir to the same relative path
    under output_dir (REAL/x.jpg -> REAL/x_aug0.jpg, ...), in the input's format and size.

    Unreadable files are skipped and listed in the report. Same inputs, seed and settings ->
    byte-identical files.
    """
    if copies < 1:
        raise AugmentError(f"copies must be at least 1, got {copies}")
    input_dir, output_dir = check_folders(input_dir, output_dir)
    paths = images.list_image_files(input_dir)
    if not paths:
        raise AugmentError(f"no images ({', '.join(images.IMAGE_EXTENSIONS)}) found under {input_dir}")

    import keras    # only now: TensorFlow takes seconds to load, refusals above stay instant
    import tensorflow as tf

    keep_pixels = settings.preset == "keep-pixels"
    layers = online_augmentation("shift-flip", seed) if keep_pixels else augmentation_layers(settings, seed)
    change = tf.function(lambda image, change_seed: robust_change(image, change_seed, settings.robust_probability),
                         reduce_retracing=True)
    report = AugmentReport()
    with tqdm(total=len(paths), desc="augmenting", unit="img", disable=None if progress else True) as bar:
        for batch, consumed in _load_batches(paths, input_dir, report.skipped):
            for group in _same_size_groups(batch):
                pixels = np.stack([source.pixels for source in group]).astype(np.float32)
                for copy in range(copies):
                    augmented = keras.ops.convert_to_numpy(layers(pixels, training=True))
                    augmented = np.clip(np.round(augmented), 0, 255).astype(np.uint8)
                    for source, image in zip(group, augmented):
                        if keep_pixels:     # seeded by copy and file name: the same file on every run
                            file_seed = zlib.crc32(source.relative.as_posix().encode())
                            change_seed = tf.constant([seed * 1_000_003 + copy, file_seed], tf.int64)
                            image = change(image, change_seed).numpy()
                        _save(image, output_dir / copy_name(source.relative, copy), source.save_options)
                        report.written += 1
                if include_originals:
                    for source in group:
                        shutil.copyfile(source.path, output_dir / source.relative)
            report.images += len(batch)
            report.written += len(batch) * include_originals
            bar.update(consumed)
    return report
