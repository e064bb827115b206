"""classify.py as users run it: a fresh process per run, beside raw predict in the same run.

    python benchmarks/bench_classify_process.py --model models/compact --images 6000 --small 300 --repeats 2

Runs `python classify.py FOLDER --no-mirror --model M --output x.csv` on folders of `--small` and
`--images` CIFAKE test files (links into data/test), best of --repeats each, and reports the
marginal rate (images - small) / (t(images) - t(small)), so start-up cancels, and the start-up
itself (t(small) - small / marginal rate). Raw predict is the same model's `predict` on the same
images, decoded into one in-memory array, one view each, timed in this process between the
command's runs, best of --repeats. Target: marginal rate >= 80 % of raw predict.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from aidetect import data, images
from aidetect.labels import POSITIVE_INDEX
from aidetect.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent


def linked_folder(paths, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i, path in enumerate(paths):
        (folder / f"{i:06d}-{Path(path).name}").symlink_to(Path(path).resolve())
    return folder


def command_seconds(folder: Path, model: str, output: Path, batch_size: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "classify.py"), str(folder), "--no-mirror", "--model", model,
                    "--output", str(output), "--batch-size", str(batch_size)], check=True, cwd=ROOT,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def raw_predict(model: str, paths, batch_size: int):
    """A callable that times one Keras `predict` of the model on the images, decoded in memory."""
    predictor = Predictor.load(model, mirror=False)
    inputs = np.stack([predictor.inputs(images.load_rgb(path))[0] for path in paths]).astype(np.float32)
    predictor.model.predict(inputs[:batch_size], batch_size=batch_size, verbose=0)       # trace once

    def seconds() -> float:
        started = time.perf_counter()
        predictor.model.predict(inputs, batch_size=batch_size, verbose=0)[:, POSITIVE_INDEX]
        return time.perf_counter() - started
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/compact")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    paths, _ = data.list_split(args.data_dir, "test", args.images)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        small = linked_folder(paths[:args.small], scratch / "small")
        large = linked_folder(paths, scratch / "large")
        raw_seconds = raw_predict(args.model, paths, args.batch_size)
        times = {small: [], large: [], "raw": []}
        for _ in range(args.repeats):   # interleaved, so a busy moment of this shared machine hits all alike
            for folder in (small, large):
                times[folder].append(command_seconds(folder, args.model, scratch / "out.csv", args.batch_size))
            times["raw"].append(raw_seconds())
    t_small, t_large, raw = min(times[small]), min(times[large]), min(times["raw"])
    marginal = (len(paths) - args.small) / (t_large - t_small)
    raw_rate = len(paths) / raw
    print(f"model {args.model}, {len(paths)} and {args.small} CIFAKE test files, --no-mirror, best of "
          f"{args.repeats}, {os.cpu_count()} CPUs")
    print(f"classify.py {args.small:5d} files: {t_small:6.2f} s    {len(paths):5d} files: {t_large:6.2f} s")
    print(f"start-up (t({args.small}) - {args.small} / marginal rate): {t_small - args.small / marginal:5.2f} s")
    print(f"marginal rate: {marginal:7.1f} img/s   raw predict: {raw_rate:7.1f} img/s   "
          f"ratio: {marginal / raw_rate:4.0%}  (target >= 80%)")


if __name__ == "__main__":
    main()
