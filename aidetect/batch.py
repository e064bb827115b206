"""Classify many image files by streaming them through tf.data (classify.py, the benchmark).

Files are decoded in parallel by the shared loader and resized by the same op as everywhere
else, batched and prefetched while the model works on the previous batch; only a few batches
are in memory at any time. A file that cannot be read becomes a Result with its error.
"""
import os
import sys
from typing import Iterator, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from . import images
from .labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND
from .predict import Predictor
from .results import Result
from .preprocess import read_inputs, view_count


def list_inputs(paths: Sequence[str]) -> List[str]:
    """Files exactly as given, and image files under folders (recursively), joined to the folder
    as given; sorted, so that the order (and every --shard slice) is the same on every run."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += [os.path.join(path, str(file.relative_to(path))) for file in images.list_image_files(path)]
        else:
            found.append(path)
    return sorted(found)


def shard_bounds(total: int, index: int, count: int) -> Tuple[int, int]:
    """Start and stop of the index-th (0-based) of count contiguous, near-equal slices."""
    return total * index // count, total * (index + 1) // count


def make_dataset(paths: Sequence[str], predictor: Predictor, batch_size: int) -> tf.data.Dataset:
    """Batches of (model inputs: (N, views, size, size, 3) float32, errors; b"" when readable) in
    the order of paths. Each batch of files is read by one Python call (preprocess.read_inputs per
    file), so the per-file cost is the decoder's, not tf.data's; memory holds a few batches of
    model inputs and one full-size image per call at a time."""
    size, view, crops = predictor.image_size, predictor.view, predictor.crops
    blank = np.zeros((view_count(view, crops), size, size, 3), np.uint8)     # an unreadable file's inputs

    def read_batch(batch_paths):
        inputs, errors = [], []
        for path in batch_paths.numpy():
            _, views, error = read_inputs(os.fsdecode(path), size, view, crops)
            inputs.append(blank if error else views)
            errors.append((error or "").encode())
        return np.stack(inputs), np.array(errors, dtype=object)

    def read_op(batch_paths):
        inputs, errors = tf.py_function(read_batch, [batch_paths], (tf.uint8, tf.string))
        inputs.set_shape([None, view_count(view, crops), size, size, 3])
        errors.set_shape([None])
        return tf.cast(inputs, tf.float32), errors

    encoded = [os.fsencode(path) for path in paths]        # bytes: any file name survives the trip
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, tf.string, shape=[len(encoded)]))
    return dataset.batch(batch_size).map(read_op, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def classify_files(predictor: Predictor, paths: Sequence[str], batch_size: int = 64,
                   threshold: float = DEFAULT_THRESHOLD, uncertain_band: float = DEFAULT_UNCERTAIN_BAND,
                   progress: bool = True) -> Iterator[Result]:
    """One Result per path, in order, named exactly as the path was given."""
    names = iter(paths)
    with tqdm(total=len(paths), unit="img", file=sys.stderr, disable=None if progress else True) as bar:
        for inputs, errors in make_dataset(paths, predictor, batch_size):
            errors = [error.decode() for error in errors.numpy()]
            batch_names = [next(names) for _ in errors]
            readable = [i for i, error in enumerate(errors) if not error]
            answered = dict(zip(readable, predictor.results([batch_names[i] for i in readable],
                                                            inputs.numpy()[readable], threshold, uncertain_band)))
            for i, name in enumerate(batch_names):
                yield Result(name, error=errors[i]) if errors[i] else answered[i]
            bar.update(len(errors))
