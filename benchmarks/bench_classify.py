"""Images per second and memory of classify.py's streaming pipeline, on the same test images, vs
  a naive loop   (open each image with PIL, model.predict on it alone), and
  raw predict    (model.predict on all images already decoded into one in-memory array).
All three classify each image once (--no-mirror); the pipeline with mirror averaging (classify.py's
default: each image and its mirror) runs beside them, to show what the averaging costs. Reading
each file's evidence (provenance.read_evidence: C2PA, XMP, generator settings, EXIF; part of the
pipeline) is also timed on its own, on the metadata the loader kept, as a share of the pipeline.

    python benchmarks/bench_classify.py --model models/<run>/model.keras --images 1000

Targets: the pipeline >= 5x the naive loop and >= 80% of raw predict; evidence <= 10% of the pipeline. The pipeline and raw predict
run --repeats times, alternately, and the fastest pass counts (other jobs on the machine only ever
slow a pass down); the naive loop takes minutes and runs once. Memory is the peak resident set
size while a method runs (sampled every 5 ms) above what the process held when it started.
"""
import argparse
import functools
import os
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

from aidetect import batch, data, images, provenance
from aidetect.labels import POSITIVE_INDEX
from aidetect.predict import Predictor


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident memory during the block, above the level at its start."""

    def __enter__(self):
        self.start = self.peak = resident_bytes()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, resident_bytes())
            time.sleep(0.005)

    def __exit__(self, *_):
        self.running = False
        self.thread.join()
        self.mib = (max(self.peak, resident_bytes()) - self.start) / 2**20


def streaming(predictor, paths, batch_size):
    return np.array([r.prob_ai for r in batch.classify_files(predictor, paths, batch_size, progress=False)])


@functools.lru_cache(maxsize=1)
def mirrored(predictor: Predictor) -> Predictor:
    """The same model, mirror-averaged; made once, so the warm-up's tracing is not repeated."""
    return Predictor(predictor.model, predictor.model_path, mirror=True)


def streaming_mirrored(predictor, paths, batch_size):
    return streaming(mirrored(predictor), paths, batch_size)


def naive_loop(predictor, paths, _):
    size = predictor.image_size
    probs = []
    for path in paths:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB").resize((size, size)), np.float32)
        probs.append(predictor.model.predict(pixels[None], verbose=0)[0, POSITIVE_INDEX])
    return np.array(probs)


def decode_all(predictor, paths, batch_size) -> np.ndarray:
    """Every image as the model's input, in one array (the same preprocessing as the pipeline;
    a "crops" model's views one after another)."""
    inputs = np.concatenate([inputs.numpy() for inputs, _ in batch.make_dataset(paths, predictor, batch_size)])
    return inputs.reshape((-1,) + inputs.shape[-3:])


def raw_predict(predictor, inputs, batch_size):
    return predictor.model.predict(inputs, batch_size=batch_size, verbose=0)[:, POSITIVE_INDEX]


def file_metadata(predictor, paths, _):
    return [images.load_image(path).metadata for path in paths]


def read_all_evidence(predictor, metadata, _):
    return [provenance.read_evidence(item) for item in metadata]


def measure(method, predictor, items, batch_size, prepare=None):
    """(seconds, peak MiB, outputs); `prepare` runs inside the memory block but outside the timing."""
    with PeakMemory() as memory:
        if prepare:
            items = prepare(predictor, items, batch_size)
        started = time.perf_counter()
        outputs = method(predictor, items, batch_size)
        seconds = time.perf_counter() - started
    return seconds, memory.mib, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a .keras file or a run folder")
    parser.add_argument("--images", type=int, default=1000, help="how many images of the test split")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    predictor = Predictor.load(args.model, mirror=False)     # the same work as raw predict
    paths, _ = data.list_split(args.data_dir, "test", args.images)
    count, batch_size = len(paths), args.batch_size
    # warm-up: trace the model's functions and fill file caches, so every method pays neither
    warm = paths[:batch_size + 1]           # a full and a partial batch
    streaming(predictor, warm, batch_size)
    streaming_mirrored(predictor, warm, batch_size)
    naive_loop(predictor, warm[:4], batch_size)
    raw_predict(predictor, decode_all(predictor, warm, batch_size), batch_size)

    methods = {"classify.py pipeline": (streaming, None), "naive loop": (naive_loop, None),
               "raw predict": (raw_predict, decode_all),
               "pipeline, mirror-averaged": (streaming_mirrored, None),
               "evidence alone": (read_all_evidence, file_metadata)}
    seconds = {name: [] for name in methods}
    memory = {name: [] for name in methods}
    outputs = {}
    for repeat in range(args.repeats):
        for name, (method, prepare) in methods.items():
            if method is naive_loop and repeat:
                continue
            taken, mib, outputs[name] = measure(method, predictor, paths, batch_size, prepare)
            seconds[name].append(taken)
            memory[name].append(mib)

    print(f"model {args.model} ({predictor.image_size} px), {count} images, batch size {batch_size}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'method':22s} {'passes':>6s} {'best s':>8s} {'img/s':>8s} {'peak MiB':>9s}")
    for name in methods:
        print(f"{name:22s} {len(seconds[name]):6d} {min(seconds[name]):8.2f} "
              f"{count / min(seconds[name]):8.1f} {max(memory[name]):9.1f}")
    pipeline, naive, raw, mirrored_rate, evidence = (count / min(seconds[name]) for name in methods)
    print(f"pipeline / naive loop:  {pipeline / naive:5.1f}x  (target >= 5x)")
    print(f"pipeline / raw predict: {pipeline / raw:5.0%}  (target >= 80%)")
    print(f"mirror-averaged / single pipeline: {mirrored_rate / pipeline:5.0%}")
    print(f"evidence time / pipeline time: {pipeline / evidence:5.1%}  (target <= 10%; kinds found: "
          f"{sorted({e.kind for e in outputs['evidence alone']})})")
    difference = np.abs(outputs["classify.py pipeline"] - outputs["raw predict"]).max()
    print(f"largest |P(AI) pipeline - raw predict|: {difference:.2e}")


if __name__ == "__main__":
    main()
