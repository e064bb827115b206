"""Test metrics of one model file when each image's probability is averaged over several views.

Views: the image, its mirror, and its 1-pixel shifts up, down, left and right (reflected edges,
so every pixel keeps its value). Prints accuracy, AUC and loss for the view sets in docs/results.md's
"Test-time views" table; each view costs one more pass of the model over the images.

    python benchmarks/views_at_test_time.py --model models/resnet101/model.keras      # ~5 min on 2 CPUs
"""
import argparse

import numpy as np


from aidetect import data, evaluate                               
from aidetect.predict import Predictor                            

SHIFTS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Moved by (dy, dx) whole pixels; the edge that comes in is a reflection of the image."""
    pad = ((0, 0), (abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0))
    padded = np.pad(images, pad, mode="reflect")
    height, width = images.shape[1:3]
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[:, top:top + height, left:left + width]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras file or run folder (default: the default model)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--split", default="test", choices=["validation", "test"])
    parser.add_argument("--images", type=int, default=0, help="class-balanced subset (default: all)")
    args = parser.parse_args()

    predictor = Predictor.load(args.model, mirror=False)        # one view per pass; we average here
    paths, labels = data.list_split(args.data_dir, args.split, args.images)
    dataset = data.make_dataset(paths, labels, predictor.image_size, 256)
    pixels = np.concatenate([batch.numpy() for batch, _ in dataset])

    def prob_ai(view: np.ndarray) -> np.ndarray:
        return np.concatenate([predictor.prob_ai_batch(view[i:i + 256]) for i in range(0, len(view), 256)])

    views = {"image": prob_ai(pixels), "mirror": prob_ai(pixels[:, :, ::-1])}
    views.update({name: prob_ai(shifted(pixels, *step)) for name, step in SHIFTS.items()})
    sets = {"1: the image": ["image"], "1: its mirror only": ["mirror"],
            "2: the image and its mirror": ["image", "mirror"],
            "5: the image and its 4 shifts": ["image", *SHIFTS],
            "6: the five above and the mirror": list(views)}

    print(f"{predictor.model_path} on {len(paths)} {args.split} images")
    print(f"{'views averaged':36s} {'accuracy':>9s} {'AUC':>7s} {'loss':>7s}")
    for name, members in sets.items():
        metrics = evaluate.compute_metrics(labels, np.mean([views[m] for m in members], axis=0))
        print(f"{name:36s} {metrics['accuracy']:9.4f} {metrics['auc']:7.4f} {metrics['loss']:7.4f}")


if __name__ == "__main__":
    main()
