"""Fit a decoded RGB image to the model's input size: the same op at training and serving time.

Scaling pixel values is not done here: it lives inside the model, so raw 0..255 pixels go in.
"""
import tensorflow as tf


def resize_to_model(image, size: int) -> tf.Tensor:
    """HxWx3 uint8 (array or tensor) -> size x size x 3 uint8 tensor (antialiased bilinear)."""
    image = tf.convert_to_tensor(image, dtype=tf.uint8)
    resized = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
