"""Training throughput (img/s) of the default model at several input sizes, in one process.

    python benchmarks/train_speed.py [--sizes 32 64] [--steps 20] [--batch-size 64]

Random pixels, the real model and optimizer; the first steps (graph tracing) are not timed.
Prints img/s per size and the ratio to the first size.
"""
import argparse
import time


import keras
import numpy as np

from aidetect.model import build_model
from aidetect.settings import Settings
from aidetect.train import learning_rate_schedule, training_metrics


def images_per_second(size: int, steps: int, batch_size: int) -> float:
    settings = Settings(image_size=size, batch_size=batch_size)
    model = build_model(settings)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate_schedule(settings, steps)),
                  loss="categorical_crossentropy", metrics=training_metrics())
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size * steps, size, size, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, len(x))]
    model.fit(x[: batch_size * 2], y[: batch_size * 2], batch_size=batch_size, verbose=0)   # trace
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, verbose=0)
    return len(x) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    results = {size: images_per_second(size, args.steps, args.batch_size) for size in args.sizes}
    base = results[args.sizes[0]]
    print(f"{'size':>6} {'train img/s':>12} {'vs ' + str(args.sizes[0]) + ' px':>10}")
    for size, speed in results.items():
        print(f"{size:>6} {speed:>12.1f} {speed / base:>10.2f}")


if __name__ == "__main__":
    main()
