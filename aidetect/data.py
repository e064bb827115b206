"""The folder layout of data/, its preparation from CIFAKE, and the tf.data input pipeline.

data/{train,validation,test}/{REAL,FAKE}/<original file name>. Nothing else in the package knows
these names.
"""
import hashlib
import json
import random
import re
import tarfile
import zipfile
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import numpy as np
from tqdm import tqdm

from . import images
from .errors import InputError
from .files import write_atomically
from .augment import online_augmentation
from .labels import CLASS_NAMES

SPLITS = ("train", "validation", "test")
SOURCE_SPLITS = ("train", "test")            # what CIFAKE ships; validation is carved from train
REPORT_FILE = "prepare_report.json"
VALIDATION_FRACTION = 0.1                    # of train, carved per class by `prepare`
_MEMBER = re.compile(r"(?:^|/)(train|test)/(REAL|FAKE)/([^/]+)$")
_EXPECTED = ("expected a folder with CIFAKE's train-REAL.tar, train-FAKE.tar, test-REAL.tar and "
             "test-FAKE.tar, a folder with train/REAL, train/FAKE, test/REAL and test/FAKE, "
             "or a .zip of that folder")


class DataError(InputError):
    """A data source or data folder that cannot be used; the message says what was expected."""


@dataclass(frozen=True)
class Record:
    split: str          # "train" or "test" (as in the source)
    class_name: str     # "REAL" or "FAKE"
    name: str           # original file name
    read: Callable[[], bytes]


def class_dir(data_dir, split: str, class_name: str) -> Path:
    return Path(data_dir) / split / class_name


# ---------------------------------------------------------------- sources
def _tar_records(folder: Path) -> Iterator[Record]:
    for split in SOURCE_SPLITS:
        for class_name in CLASS_NAMES:
            with tarfile.open(folder / f"{split}-{class_name}.tar") as archive:
                for member in archive:
                    if member.isfile() and images.is_image_path(Path(member.name)):
                        data = archive.extractfile(member).read()
                        yield Record(split, class_name, Path(member.name).name, lambda d=data: d)


def _folder_records(folder: Path) -> Iterator[Record]:
    for split in SOURCE_SPLITS:
        for class_name in CLASS_NAMES:
            for path in sorted(class_dir(folder, split, class_name).iterdir()):
                if path.is_file() and images.is_image_path(path):
                    yield Record(split, class_name, path.name, path.read_bytes)


def _zip_records(path: Path) -> Iterator[Record]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            match = _MEMBER.search(info.filename)
            if match and not info.is_dir() and images.is_image_path(Path(info.filename)):
                split, class_name, name = match.groups()
                yield Record(split, class_name, name, lambda i=info: archive.read(i))


def open_source(source) -> Tuple[str, Iterator[Record]]:
    """Recognise the source layout and return (kind, records); DataError if it is none of them."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: does not exist; {_EXPECTED}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not a zip file; {_EXPECTED}")
        with zipfile.ZipFile(path) as archive:
            found = {m.groups()[:2] for m in map(_MEMBER.search, archive.namelist()) if m}
        _require_all(path, found)
        return "zip", _zip_records(path)
    tars = {(s, c) for s in SOURCE_SPLITS for c in CLASS_NAMES if (path / f"{s}-{c}.tar").is_file()}
    if tars:
        _require_all(path, tars, what="tar file")
        return "tar", _tar_records(path)
    folders = {(s, c) for s in SOURCE_SPLITS for c in CLASS_NAMES
               if class_dir(path, s, c).is_dir() and any(class_dir(path, s, c).iterdir())}
    if folders:
        _require_all(path, folders, what="non-empty folder")
        return "folder", _folder_records(path)
    raise DataError(f"{path}: no CIFAKE data found; {_EXPECTED}")


def _require_all(path: Path, found, what: str = "part") -> None:
    missing = [f"{s}/{c}" for s in SOURCE_SPLITS for c in CLASS_NAMES if (s, c) not in found]
    if missing:
        raise DataError(f"{path}: missing {what} for {', '.join(missing)}; {_EXPECTED}")


# ---------------------------------------------------------------- preparation
def _validation_names(items: List[Tuple[str, str]], fraction: float, seed: int) -> set:
    """Seeded choice of names for validation; identical bytes stay together (no split leak)."""
    by_hash = defaultdict(list)
    for name, digest in items:
        by_hash[digest].append(name)
    groups = sorted(by_hash)
    random.Random(seed).shuffle(groups)
    chosen = groups[: round(len(groups) * fraction)]
    return {name for digest in chosen for name in by_hash[digest]}


def check_separate(source, data_dir) -> None:
    """prepare deletes files in data_dir that do not belong: it must never run inside the source
    (e.g. --source data with the default --data-dir data would shrink train on every run)."""
    source, data_dir = Path(source).resolve(), Path(data_dir).resolve()
    if source.is_dir() and (source == data_dir or source in data_dir.parents or data_dir in source.parents):
        raise DataError(f"the data folder {data_dir} overlaps the source {source}; pass a --data-dir "
                        "outside the source (prepare deletes files that do not belong in the data folder)")


def prepare(source, data_dir="data", validation_fraction: float = VALIDATION_FRACTION, seed: int = 42,
            progress: bool = True) -> Dict:
    """Build data/{train,validation,test}/{REAL,FAKE} from a CIFAKE source. Safe to re-run.

    Every image is checked with the shared loader (unreadable ones are skipped and listed), the
    validation split is carved from train per class, files already in place are not rewritten and
    files that do not belong (an interrupted or different earlier run) are removed.
    Returns a report: counts per split/class, skipped files and cross-split duplicates.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise DataError(f"validation fraction must be in [0, 1), got {validation_fraction}")
    check_separate(source, data_dir)
    kind, records = open_source(source)
    content: Dict[Tuple[str, str], Dict[str, Tuple[str, bytes]]] = defaultdict(dict)
    skipped = []
    try:        # everything is read before anything is written: a broken source changes nothing
        for record in tqdm(records, desc=f"reading {kind}", unit="img", disable=None if progress else True):
            data = record.read()
            _, error = images.try_load_rgb(data)
            if error:
                skipped.append({"file": f"{record.split}/{record.class_name}/{record.name}", "error": error})
                continue
            content[(record.split, record.class_name)][record.name] = (hashlib.sha256(data).hexdigest(), data)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        again = "check its files" if kind == "folder" else "download it again"
        raise DataError(f"{source}: cannot read the {kind} source ({error}); {again}") from None

    plan: Dict[Tuple[str, str], Dict[str, Tuple[str, bytes]]] = {}
    for class_name in CLASS_NAMES:
        train = content[("train", class_name)]
        held_out = _validation_names([(n, h) for n, (h, _) in train.items()], validation_fraction, seed)
        plan[("train", class_name)] = {n: v for n, v in train.items() if n not in held_out}
        plan[("validation", class_name)] = {n: v for n, v in train.items() if n in held_out}
        plan[("test", class_name)] = content[("test", class_name)]

    written = 0
    for (split, class_name), files in plan.items():
        folder = class_dir(data_dir, split, class_name)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():
            if stale.name not in files:
                stale.unlink()
        for name, (_, data) in files.items():
            target = folder / name
            if not (target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data):
                write_atomically(target, data)
                written += 1

    hashes = {key: {h for h, _ in files.values()} for key, files in plan.items()}
    split_hashes = {s: set().union(*(hashes[(s, c)] for c in CLASS_NAMES)) for s in SPLITS}
    report = {
        "source": str(source), "source_kind": kind, "data_dir": str(data_dir),
        "validation_fraction": validation_fraction, "seed": seed,
        "counts": {s: {c: len(plan[(s, c)]) for c in CLASS_NAMES} for s in SPLITS},
        "files_written": written,
        "skipped": skipped,
        "duplicates_between_splits": {
            f"{a}~{b}": len(split_hashes[a] & split_hashes[b])
            for a, b in (("train", "validation"), ("train", "test"), ("validation", "test"))},
        "duplicates_between_classes": len(set().union(*(hashes[(s, "REAL")] for s in SPLITS))
                                          & set().union(*(hashes[(s, "FAKE")] for s in SPLITS))),
    }
    write_atomically(Path(data_dir) / REPORT_FILE, json.dumps(report, indent=2))
    return report


# ---------------------------------------------------------------- input pipeline
def list_split(data_dir, split: str, limit: int = 0, seed: int = 42) -> Tuple[List[str], np.ndarray]:
    """Paths and class indices of one split (class order from labels.CLASS_NAMES, not folder sort).

    limit > 0 keeps a seeded, class-balanced subset of that many images.
    """
    paths, labels = [], []
    for index, class_name in enumerate(CLASS_NAMES):
        folder = class_dir(data_dir, split, class_name)
        if not folder.is_dir():
            raise DataError(f"{folder} is missing: run `python model_training.py prepare` first")
        files = sorted(str(p) for p in folder.iterdir() if images.is_image_path(p))
        if limit:
            random.Random(seed).shuffle(files)
            files = sorted(files[: limit // len(CLASS_NAMES)])
        paths += files
        labels += [index] * len(files)
    if not paths:
        raise DataError(f"{Path(data_dir) / split} has no images: run `python model_training.py prepare`")
    return paths, np.array(labels, dtype=np.int32)


def load_image_op(path, image_size: int, view: str = "resize"):
    """tf.data op: file path -> uint8 pixels through the shared loader: size x size x 3 ("resize"),
    the image at crop resolution ("crops") or as it is ("native"); crops are cut later, at random
    in training."""
    import tensorflow as tf
    from .preprocess import decode_op, resize_to_model, to_crop_base

    image, error = decode_op(path)
    with tf.control_dependencies([tf.debugging.assert_equal(error, "", message="unreadable training image "
                                                            "(run `model_training.py prepare` again)")]):
        image = tf.identity(image)
    if view == "native":
        return image
    return to_crop_base(image) if view == "crops" else resize_to_model(image, image_size)


def make_dataset(paths, labels, image_size: int, batch_size: int, training: bool = False,
                 augment: str = "none", seed: int = 42, robust_probability: float = 0.5,
                 view: str = "resize"):
    """Batches of (raw float32 pixels, one-hot labels); decoded once, then cached in memory.

    Training batches are reshuffled every epoch, cut to one random view per image ("crops",
    "native") and augmented online (augment.py): "robust" changes single images (fresh, seeded
    draws every epoch), then shifts and mirrors whole batches; "traces" cuts and changes native
    crops itself. Validation of a "crops" or "native" model sees centre crops.
    """
    import tensorflow as tf
    from .augment import robust_change, trace_view
    from .preprocess import crop_grid, native_crops, random_view

    def training_view(image, seeds):
        crop_seed, change_seed = tf.unstack(tf.random.experimental.stateless_split(seeds, 2))
        if augment == "traces":
            return trace_view(image, image_size, change_seed)
        image = random_view(image, image_size, view, crop_seed) if view in ("crops", "native") else image
        return robust_change(image, change_seed, robust_probability) if augment == "robust" else image

    autotune = tf.data.AUTOTUNE
    dataset = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels)))
    dataset = dataset.map(lambda p, y: (load_image_op(p, image_size, view), y), num_parallel_calls=autotune)
    dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda pair, s: (training_view(pair[0], s), pair[1]), num_parallel_calls=autotune)
    elif view in ("crops", "native"):
        centre = native_crops if view == "native" else crop_grid
        dataset = dataset.map(lambda image, y: (centre(image, image_size, 1)[0], y),
                              num_parallel_calls=autotune)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, len(CLASS_NAMES))),
                          num_parallel_calls=autotune)
    layers = online_augmentation(augment, seed) if training else None
    if layers is not None:
        # One call at a time: the layers' seed generators advance per call, so parallel calls
        # would draw in a different order on every run (same seed, different pixels).
        dataset = dataset.map(lambda x, y: (layers(x, training=True), y))
    return dataset.prefetch(autotune)
