"""Classify many image files by streaming them through tf.data (classify.py, the benchmark).

Files are decoded in parallel (JPEGs without metadata by TensorFlow's decoder, every other file by
the shared loader: the same pixels) and fitted by the same ops as everywhere else, batched and
prefetched while the model works on the previous batch; only a few batches are in memory at any
time. A file that cannot be read becomes a Result with its error.
"""
import collections
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from . import images
from .labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND
from .predict import Predictor
from .preprocess import plain_jpegs_to_inputs, view_count
from .provenance import Evidence, read_evidence
from .results import Result

NOTHING_FOUND = Evidence()


def list_inputs(paths: Sequence[str]) -> Tuple[List[str], int]:
    """(files, others): the files exactly as given, and under folders (recursively) the images and
    the pictures of types we do not read (each gets a row saying so), joined to the folder as
    given and sorted, so that the order (and every --shard slice) is the same on every run; and
    how many other files the folders hold (not pictures: counted in the summary, no row)."""
    found, others = [], 0
    for path in paths:
        if os.path.isdir(path):
            for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
                if images.is_picture_path(file):
                    found.append(os.path.join(path, str(file.relative_to(path))))
                else:
                    others += 1
        else:
            found.append(path)
    return sorted(found), others


def shard_bounds(total: int, index: int, count: int) -> Tuple[int, int]:
    """Start and stop of the index-th (0-based) of count contiguous, near-equal slices."""
    return total * index // count, total * (index + 1) // count


@dataclass
class _File:
    """One file of a batch as routed_dataset reads it: which model answers it (code: 0 the model
    asked, 1 its small-image model, -1 none), why, its error, its evidence JSON, its kind, and its
    inputs, or, until TensorFlow decodes it, a plain JPEG's bytes and (width, height)."""
    name: str
    code: int
    reason: str = ""
    error: str = ""
    evidence: str = ""
    kind: str = ""
    inputs: Optional[np.ndarray] = None
    jpeg: Optional[bytes] = None
    size: Optional[Tuple[int, int]] = None


def routed_dataset(paths: Sequence[str], predictor: Predictor, batch_size: int, route: bool = True,
                   trust_anchors: str = "") -> tf.data.Dataset:
    """Batches of (the answering model's inputs, the small-image model's inputs, per file: which
    of the two answers it (0, 1; -1 unreadable), why, its error, its file evidence as
    provenance.Evidence JSON (b"" when nothing was found, the common case, or not read) and its
    kind (Predictor.kind)) in the order of paths. The files of a batch are read, their evidence
    read (route=True) and routed (Predictor.route; route=False: all to `predictor`) by one Python
    call while the model works on the previous batch. The batch's JPEGs that hold nothing but
    pixels (images.plain_jpeg_size: most files) are decoded together by TensorFlow's decoder
    (the loader's very pixels, outside Python's lock; should TensorFlow refuse one, the loader
    reads them one by one and says why); every other file by the shared loader. Memory
    holds a few batches of model inputs and one full-size image per call at a time."""
    small = predictor.small or predictor
    shapes = [(view_count(p.view, p.crops), p.image_size, p.image_size, 3) for p in (predictor, small)]

    def read_file(path: bytes) -> _File:
        name = os.fsdecode(path)
        data, error = images.try_read_bytes(name)
        size = images.plain_jpeg_size(data) if data is not None else None
        if size is not None:
            shape = size[::-1]
            answering, reason = predictor.route(shape) if route else (predictor, "")
            if answering is predictor:          # no metadata: its evidence is empty, nothing to read
                return _File(name, 0, reason, kind=predictor.kind(shape), jpeg=data, size=size)
        image, error = (None, error) if error else images.try_load_image(data, name)
        if error:
            return _File(name, -1, error=error)
        answering, reason = predictor.route(image.rgb.shape) if route else (predictor, "")
        found = read_evidence(image.metadata, trust_anchors) if route else None
        return _File(name, 0 if answering is predictor else 1, reason,
                     evidence="" if found is None or found == NOTHING_FOUND else found.to_json(),
                     kind=answering.kind(image.rgb.shape), inputs=answering.inputs(image.rgb))

    def decode_plain(files: List[_File]) -> None:
        """The plain JPEGs' inputs, decoded by TensorFlow in one call per kind of view."""
        plain = [file for file in files if file.jpeg is not None]
        if not plain:
            return
        try:
            decoded = plain_jpegs_to_inputs([file.jpeg for file in plain], [file.size for file in plain],
                                            predictor.image_size, predictor.view, predictor.crops)
        except tf.errors.InvalidArgumentError:      # a JPEG TensorFlow refuses: the loader says why
            for file in plain:
                image, error = images.try_load_image(file.jpeg, file.name)
                if image:
                    file.inputs = predictor.inputs(image.rgb)
                else:
                    file.code, file.error = -1, error
            return
        for file, inputs in zip(plain, decoded):
            file.inputs = inputs

    def read_batch(batch_paths):
        files = [read_file(path) for path in batch_paths.numpy()]
        decode_plain(files)
        inputs = [[file.inputs for file in files if file.code == code] for code in (0, 1)]
        stacked = [np.stack(views) if views else np.zeros((0,) + shape, np.uint8) for views, shape in zip(inputs, shapes)]
        texts = (np.array([getattr(file, column).encode() for file in files], dtype=object)
                 for column in ("reason", "error", "evidence", "kind"))
        return (*stacked, np.array([file.code for file in files], np.int32), *texts)

    @tf.autograph.experimental.do_not_convert        # no tensor-dependent Python control flow: tracing stays fast
    def read_op(batch_paths):
        main, other, codes, reasons, errors, evidence, kinds = tf.py_function(
            read_batch, [batch_paths], (tf.uint8, tf.uint8, tf.int32) + (tf.string,) * 4)
        main.set_shape((None,) + shapes[0])
        other.set_shape((None,) + shapes[1])
        for tensor in (codes, reasons, errors, evidence, kinds):
            tensor.set_shape([None])
        return tf.cast(main, tf.float32), tf.cast(other, tf.float32), codes, reasons, errors, evidence, kinds

    encoded = [os.fsencode(path) for path in paths]        # bytes: any file name survives the trip
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, tf.string, shape=[len(encoded)]))
    return dataset.batch(batch_size).map(read_op, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_dataset(paths: Sequence[str], predictor: Predictor, batch_size: int) -> tf.data.Dataset:
    """Batches of (this model's inputs for every file: (N, views, size, size, 3) float32, zeros
    where unreadable; errors, b"" when readable) in the order of paths, unrouted: what one model
    sees of each file (scope fitting, benchmarks)."""
    def aligned(main, other, codes, reasons, errors, evidence, kinds):
        readable = tf.where(codes == 0)
        return tf.scatter_nd(readable, main, tf.concat([tf.shape(codes, tf.int64), tf.shape(main, tf.int64)[1:]], 0)), errors

    return routed_dataset(paths, predictor, batch_size, route=False).map(aligned)


# forward passes running at once: measured in-process on 6,000 CIFAKE files, 88 % of raw predict with
# one, 92 % with two, 94 % with three; each holds a batch of inputs and its activations in memory
FORWARD_PASSES_AT_ONCE = 2


def _answered_ahead(batches: Iterator, models: Tuple[Predictor, Predictor]) -> Iterator:
    """Each batch of routed_dataset with its two models' outputs (Predictor.outputs; None for
    one without inputs), in order. Other threads run the next batches' forward passes while the
    caller turns this one into Results, so the cores do not wait for Python, nor for one slow
    thread of a single pass (issue 26)."""
    def run(item):
        return tuple(tuple(tensor.numpy() for tensor in model.outputs(inputs)) if inputs.shape[0] else None
                     for model, inputs in zip(models, item[:2]))

    with ThreadPoolExecutor(max_workers=FORWARD_PASSES_AT_ONCE) as forward:
        ahead = collections.deque()
        for item in batches:
            ahead.append((item, forward.submit(run, item)))
            if len(ahead) > FORWARD_PASSES_AT_ONCE:
                item, outputs = ahead.popleft()
                yield item, outputs.result()
        for item, outputs in ahead:
            yield item, outputs.result()


def classify_files(predictor: Predictor, paths: Sequence[str], batch_size: int = 64,
                   threshold: float = DEFAULT_THRESHOLD, uncertain_band: float = DEFAULT_UNCERTAIN_BAND,
                   progress: bool = True, trust_anchors: str = "") -> Iterator[Result]:
    """One Result per path, in order, named exactly as the path was given, each answered by the
    model Predictor.route chooses for it, with its file's evidence (trust_anchors: a PEM list)."""
    models = (predictor, predictor.small or predictor)
    batches = routed_dataset(paths, predictor, batch_size, trust_anchors=trust_anchors)
    with tqdm(total=len(paths), unit="img", file=sys.stderr, disable=None if progress else True) as bar:
        for start, (item, outputs) in zip(range(0, len(paths), batch_size), _answered_ahead(batches, models)):
            batch_names = list(paths[start:start + batch_size])
            main, other, codes, reasons, errors, said, kinds = item
            codes, errors = codes.numpy(), [error.decode() for error in errors.numpy()]
            reasons = [reason.decode() for reason in reasons.numpy()]
            evidence = [Evidence.from_json(text.decode()) if text else NOTHING_FOUND for text in said.numpy()]
            kinds = [kind.decode() for kind in kinds.numpy()]
            answered = {}
            for code, inputs in enumerate((main, other)):
                chosen = np.flatnonzero(codes == code)
                if len(chosen):
                    answered.update(zip(chosen, models[code].results(
                        [batch_names[i] for i in chosen], inputs.numpy(), threshold, uncertain_band,
                        routes=[reasons[i] for i in chosen], evidence=[evidence[i] for i in chosen],
                        kinds=[kinds[i] for i in chosen], outputs=outputs[code])))
            for i, name in enumerate(batch_names):
                yield Result(name, error=errors[i]) if errors[i] else answered[i]
            bar.update(len(batch_names))
