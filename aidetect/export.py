"""Export a classifier as a TensorFlow SavedModel, the format TensorFlow Serving loads.

Its "serving_default" signature (also the `serve` function) takes "image": float32
(N, size, size, 3), raw 0..255 RGB pixels already resized with preprocess.resize_to_model, and
returns "output_0": the softmax over labels.CLASS_NAMES (REAL, FAKE); P(AI-generated) is column 1.
"""
import shutil
from pathlib import Path

from .model import load_model


def export_saved_model(model_path, out_dir) -> Path:
    """Write the SavedModel to out_dir (replacing it); TF Serving wants <model>/<version>/."""
    out_dir = Path(out_dir)
    model = load_model(model_path)              # float32 weights, checked to be our classifier
    temporary = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    model.export(str(temporary), format="tf_saved_model", verbose=False)
    shutil.rmtree(out_dir, ignore_errors=True)
    temporary.rename(out_dir)                   # a server watching out_dir never sees half a model
    return out_dir
