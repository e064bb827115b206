"""Fit a decoded RGB image to the model's input: the same ops at training and serving time.

Three views (Settings.view): "resize" shrinks the whole image to the model's size (CIFAKE models);
"crops" brings the shorter side to CROP_BASE px and takes crops of the model's size at that
resolution; "native" takes crops of the model's size from the image exactly as it is, with no
resampling at all (models of full-size images: the camera's or generator's pixel traces survive).
Scaling pixel values is not done here: it lives inside the model, so raw 0..255 pixels go in.
"""
import functools
import math
import os
from typing import List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from . import images
from .settings import CROP_BASE     # the wild set's images are 256 px; larger photos are brought to it


def _load(path: bytes):
    rgb, error = images.try_load_rgb(os.fsdecode(path))
    if error:
        return np.zeros((1, 1, 3), np.uint8), error.encode()
    return rgb, b""


def decode_op(path):
    """tf.data op: file path -> (HxWx3 uint8 through the shared loader, error message; b"" when
    readable). Training and every serving path decode through it. An unreadable file gives a
    1x1 black image, never used: its error is."""
    rgb, error = tf.numpy_function(_load, [path], (tf.uint8, tf.string), stateful=False)
    rgb.set_shape([None, None, 3])
    error.set_shape([])
    return rgb, error


def decode_plain_jpeg(data) -> tf.Tensor:
    """A JPEG images.plain_jpeg_size accepts -> HxWx3 uint8, the very pixels of images.load_image
    (libjpeg's accurate integer IDCT, as Pillow uses; tested), decoded by TensorFlow outside
    Python's lock, so many files are decoded in parallel with the model's work."""
    return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")


def _to_uint8(image) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def resize_to_model(image, size: int) -> tf.Tensor:
    """HxWx3 uint8 (array or tensor) -> size x size x 3 uint8 tensor (antialiased bilinear)."""
    image = tf.convert_to_tensor(image, dtype=tf.uint8)
    return _to_uint8(tf.image.resize(image, (size, size), method="bilinear", antialias=True))


def to_crop_base(image) -> tf.Tensor:
    """HxWx3 uint8 -> the shorter side at CROP_BASE px (unchanged if it already is)."""
    image = tf.convert_to_tensor(image, dtype=tf.uint8)
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    scale = CROP_BASE / tf.minimum(height, width)
    target = tf.cast(tf.round(tf.stack([height, width]) * scale), tf.int32)
    return tf.cond(tf.reduce_all(target == shape[:2]), lambda: image,
                   lambda: _to_uint8(tf.image.resize(image, target, method="bilinear", antialias=True)))


def crop_grid(image, size: int, count: int) -> tf.Tensor:
    """count crops of size x size from a grid spread evenly over the image (1 = the centre)."""
    per_side = math.ceil(math.sqrt(count))
    shape = tf.shape(image)
    fractions = tf.linspace(0.0, 1.0, per_side) if per_side > 1 else tf.constant([0.5])
    rows = tf.cast(tf.round(fractions * tf.cast(shape[0] - size, tf.float32)), tf.int32)
    cols = tf.cast(tf.round(fractions * tf.cast(shape[1] - size, tf.float32)), tf.int32)
    corners = [(rows[i // per_side], cols[i % per_side]) for i in range(count)]
    return tf.stack([image[r:r + size, c:c + size, :] for r, c in corners])


def native_crops(image, size: int, count: int) -> tf.Tensor:
    """count crops of size x size of the image as it is: 1 = the centre, 5 = the four corners and
    the centre, else crop_grid's grid (9 = 3x3: corners, edges, centre). An image smaller than a
    crop (routing sends those to a 32 px model: Predictor.route) is padded with black."""
    image = tf.convert_to_tensor(image, dtype=tf.uint8)
    shape = tf.shape(image)
    image = tf.image.pad_to_bounding_box(image, 0, 0, tf.maximum(shape[0], size), tf.maximum(shape[1], size))
    if count != 5:
        return crop_grid(image, size, count)
    shape = tf.shape(image)
    bottom, right = shape[0] - size, shape[1] - size
    corners = [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]
    return tf.stack([image[r:r + size, c:c + size, :] for r, c in corners])


def model_views(image, size: int, view: str = "resize", crops: int = 1) -> tf.Tensor:
    """HxWx3 uint8 -> (views, size, size, 3) uint8: what the model sees of one image; its answer
    is the mean over the views. "resize" has one view."""
    if view == "crops":
        return crop_grid(to_crop_base(image), size, crops)
    if view == "native":
        return native_crops(image, size, crops)
    return resize_to_model(image, size)[tf.newaxis]


def view_count(view: str, crops: int) -> int:
    return crops if view in ("crops", "native") else 1


def to_inputs(rgb: np.ndarray, size: int, view: str = "resize", crops: int = 1) -> np.ndarray:
    """The one way a decoded image (images.try_load_rgb) becomes model inputs when serving: its
    views as (views, size, size, 3) uint8. An image already at the model's
    size passes through untouched (resizing it to its own size gives the same pixels, tested): no
    TensorFlow op per CIFAKE image."""
    if view == "resize" and rgb.shape[:2] == (size, size):
        return rgb[np.newaxis]
    return model_views(rgb, size, view, crops).numpy()


def plain_jpegs_to_inputs(jpegs: Sequence[bytes], sizes: Sequence[Tuple[int, int]], size: int,
                          view: str = "resize", crops: int = 1) -> List[np.ndarray]:
    """to_inputs for JPEGs images.plain_jpeg_size accepts (with the (width, height) it gave each),
    decoded by TensorFlow in one call per kind: (views, size, size, 3) uint8 each, in order, the
    same values (tested). Images at the model's size under the "resize" view pass through, as in
    to_inputs. Raises tf.errors.InvalidArgumentError for a JPEG TensorFlow's decoder refuses."""
    as_they_are = [view == "resize" and tuple(each) == (size, size) for each in sizes]
    inputs: List[np.ndarray] = [np.empty(0)] * len(jpegs)
    for unchanged in (True, False):
        chosen = [i for i, flag in enumerate(as_they_are) if flag == unchanged]
        if chosen:
            batch = _traced_plain_jpegs(size, view, crops, unchanged)(tf.constant([jpegs[i] for i in chosen]))
            for i, views in zip(chosen, batch.numpy()):
                inputs[i] = views
    return inputs


@functools.lru_cache(maxsize=None)
def _traced_plain_jpegs(size: int, view: str, crops: int, unchanged: bool):
    """plain_jpegs_to_inputs' traced batch function, made once per model geometry and traced on
    first use (decoding alone traces far faster than decoding and resizing)."""
    def one(data):
        image = decode_plain_jpeg(data)
        return tf.ensure_shape(image[tf.newaxis], (1, size, size, 3)) if unchanged else model_views(image, size, view, crops)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def many(batch):
        return tf.map_fn(one, batch, fn_output_signature=tf.TensorSpec((view_count(view, crops), size, size, 3), tf.uint8))
    return many


def random_view(image, size: int, view: str, seed) -> tf.Tensor:
    """Training: the whole image resized, or one random crop (stateless `seed`, shape [2])."""
    if view == "crops":
        return tf.image.stateless_random_crop(to_crop_base(image), [size, size, 3], seed)
    if view == "native":
        return tf.image.stateless_random_crop(image, [size, size, 3], seed)
    return resize_to_model(image, size)
