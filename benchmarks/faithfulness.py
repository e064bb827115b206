"""Deletion test of the explanation methods: do the pixels a heatmap ranks highest matter most?

Each test image's heatmap is computed for the class the model predicts. The top k % of its pixels
are replaced by the image's mean colour, and we measure how much the predicted class's
probability drops; k % random pixels are the control. A faithful method drops it more than random.
Prints the mean drop per k, the area under the drop-vs-k curve (k as a fraction, 0..0.5; higher
is better) and the time per explanation of one image (after a warm-up call that traces the graph).

    python benchmarks/faithfulness.py --model models/resnet101/model.keras --images 500
    python benchmarks/faithfulness.py --methods gradcam gradcam:conv3_block4_out   # compare layers
"""
import argparse
import time

import numpy as np


from aidetect import data, images                                 
from aidetect.explain import METHODS, default_gradcam_layer, explain
from aidetect.labels import FAKE_INDEX, predicted_index          
from aidetect.predict import Predictor                            

FRACTIONS = (0.05, 0.10, 0.20, 0.30, 0.40, 0.50)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file or run folder (default: the default model)")
    parser.add_argument("--images", type=int, default=500, help="class-balanced test images (default 500)")
    parser.add_argument("--seed", type=int, default=42, help="image subset, random pixels, SmoothGrad noise")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        help="methods to compare; gradcam:LAYER runs Grad-CAM on that layer")
    return parser.parse_args()


def class_probability(predictor: Predictor, batch: np.ndarray, classes: np.ndarray) -> np.ndarray:
    prob_ai = np.concatenate([predictor.prob_ai_batch(batch[i:i + 256]) for i in range(0, len(batch), 256)])
    return np.where(classes == FAKE_INDEX, prob_ai, 1.0 - prob_ai)


def delete_pixels(batch: np.ndarray, orders: np.ndarray, count: int) -> np.ndarray:
    """Each image's first `count` pixels in its order, set to the image's mean colour."""
    deleted = batch.copy()
    pixels = deleted.reshape(len(batch), -1, 3)          # a view: writing to it edits `deleted`
    pixels[np.arange(len(batch))[:, None], orders[:, :count]] = batch.mean(axis=(1, 2))[:, None, :]
    return deleted


def deletion_drops(predictor, batch, classes, orders) -> list:
    before = class_probability(predictor, batch, classes)
    return [float(np.mean(before - class_probability(
        predictor, delete_pixels(batch, orders, round(fraction * orders.shape[1])), classes)))
        for fraction in FRACTIONS]


def most_important_first(heatmaps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices by falling heat; ties (Grad-CAM's zeros) in random order, not scan order."""
    flat = heatmaps.reshape(len(heatmaps), -1)
    return np.stack([np.lexsort((rng.random(flat.shape[1]), -row)) for row in flat])


def timed_heatmaps(model, batch, classes, method, options):
    explain(model, batch[0], method, class_index=int(classes[0]), **options)   # traces the graph
    start = time.perf_counter()
    heatmaps = np.stack([explain(model, image, method, class_index=int(label), **options)
                         for image, label in zip(batch, classes)])
    return heatmaps, (time.perf_counter() - start) / len(batch)


def method_options(spec: str, model, seed: int):
    """'gradcam:LAYER' -> ('gradcam', {'layer_name': LAYER}); seeds SmoothGrad."""
    method, _, layer = spec.partition(":")
    if method == "gradcam":
        return method, {"layer_name": layer or default_gradcam_layer(model)}
    if method == "smoothgrad":
        return method, {"seed": seed}
    return method, {}


def main():
    args = parse_args()
    predictor = Predictor.load(args.model, mirror=False)    # the view the explanations explain
    paths, labels = data.list_split(args.data_dir, "test", limit=args.images, seed=args.seed)
    batch = np.stack([predictor.preprocess(images.load_rgb(path)) for path in paths])
    prob_ai = class_probability(predictor, batch, np.full(len(batch), FAKE_INDEX))
    predicted = np.array([predicted_index(p) for p in prob_ai])
    rng = np.random.default_rng(args.seed)

    print(f"model {predictor.model_path}, {len(batch)} test images, accuracy on them "
          f"{np.mean(predicted == labels):.3f}, mean P(predicted class) "
          f"{np.mean(class_probability(predictor, batch, predicted)):.3f}")
    print("mean drop of the predicted class's probability after deleting the top k % pixels "
          "(mean-colour fill)")
    print(f"{'method':<40}" + "".join(f"{f'{f:.0%}':>8}" for f in FRACTIONS) + f"{'AUC':>8}{'ms/img':>9}")
    rows = [("random", rng.random((len(batch), batch.shape[1] * batch.shape[2])).argsort(axis=1), None)]
    for spec in args.methods:
        method, options = method_options(spec, predictor.model, args.seed)
        heatmaps, seconds = timed_heatmaps(predictor.model, batch, predicted, method, options)
        name = f"{method} ({options['layer_name']})" if method == "gradcam" else method
        rows.append((name, most_important_first(heatmaps, rng), seconds))
    for name, orders, seconds in rows:
        drops = deletion_drops(predictor, batch, predicted, orders)
        area = np.trapezoid([0.0] + drops, (0.0,) + FRACTIONS)
        timing = f"{seconds * 1000:9.1f}" if seconds is not None else f"{'-':>9}"
        print(f"{name:<40}" + "".join(f"{d:8.3f}" for d in drops) + f"{area:8.4f}" + timing)


if __name__ == "__main__":
    main()
