"""Export a classifier as a TensorFlow SavedModel, the format TensorFlow Serving loads.

Its "serving_default" signature (also the `serve` function) takes "image": float32
(N, size, size, 3), raw 0..255 RGB pixels already resized with preprocess.resize_to_model, and
returns "output_0": the softmax over labels.CLASS_NAMES (REAL, FAKE); P(AI-generated) is column 1.
By default each image is averaged with its mirror, as in the app (predict.mirror_averaged).
"""
from pathlib import Path

import keras
import tensorflow as tf

from .files import atomic_path
from .model import load_model, model_image_size
from .predict import forward


def export_saved_model(model_path, out_dir, mirror: bool = True) -> Path:
    """Write the SavedModel to out_dir (replacing it); TF Serving wants <model>/<version>/."""
    out_dir = Path(out_dir)
    model = load_model(model_path)              # float32 weights, checked to be our classifier
    size = model_image_size(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", forward(model, mirror),
                         input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32, name="image")])
    with atomic_path(out_dir) as temporary:     # a server watching out_dir never sees half a model
        archive.write_out(str(temporary), verbose=False)
    return out_dir
