"""Throughput of offline augmentation (what augment_data.py runs): load, augment, save.

    python benchmarks/bench_augment.py [--train-images 4000] [--copies 5]

Times aidetect.augment.augment_folder on ../shared/data/cifake/sample and on a seeded,
class-balanced subset of data/train (linked into a temporary folder). TensorFlow is imported
before the clock starts; the first folder also pays the layers' one-off start-up.
"""
import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import keras  # noqa: F401  (imported up front so the import is not timed)

from aidetect.augment import augment_folder
from aidetect.data import list_split

SAMPLE = ROOT.parent / "shared" / "data" / "cifake" / "sample"


def link_train_subset(count: int, folder: Path) -> Path:
    """folder/{REAL,FAKE}/<name> -> data/train/..., `count` images in all."""
    paths, _ = list_split(ROOT / "data", "train", count)
    for path in map(Path, paths):
        link = folder / path.parent.name / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
    return folder


def measure(name: str, input_dir: Path, copies: int) -> None:
    with tempfile.TemporaryDirectory() as output_dir:
        started = time.perf_counter()
        report = augment_folder(input_dir, output_dir, copies, progress=False)
        seconds = time.perf_counter() - started
    print(f"{name}: {report.images} images x {copies} copies in {seconds:.2f} s -> "
          f"{report.images / seconds:.0f} input img/s, {report.images * copies / seconds:.0f} written img/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-images", type=int, default=4000)
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()
    measure(f"sample ({SAMPLE})", SAMPLE, args.copies)
    with tempfile.TemporaryDirectory() as folder:
        measure("data/train subset", link_train_subset(args.train_images, Path(folder)), args.copies)


if __name__ == "__main__":
    main()
