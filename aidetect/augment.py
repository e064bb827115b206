"""The augmentations, defined once: used offline by augment_data.py and online by training.

Reproducible: each layer draws from its own seeded Keras SeedGenerator through stateless TF random
ops, so the same seed, inputs and call order give byte-identical pixels in every process.
"""
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
from PIL import Image, JpegImagePlugin
from tqdm import tqdm

from . import images
from .settings import AUGMENT_MODES

MAX_PIXELS_PER_BATCH = 4_000_000    # ~48 MB of float32 per layer call: big batches, bounded memory


class AugmentError(ValueError):
    """Settings or folders that cannot be used; str(error) is a one-line reason."""


@dataclass(frozen=True)
class AugmentSettings:
    rotation_degrees: float = 20.0      # up to this many degrees either way
    width_shift: float = 0.2            # up to this fraction of the width either way
    height_shift: float = 0.2
    shear: float = 0.2                  # up to this fraction of the image, on both axes
    zoom: float = 0.2                   # in or out by up to this fraction, each axis drawn alone
    horizontal_flip: bool = True

    def __post_init__(self):
        if not 0 <= self.rotation_degrees <= 180:
            raise AugmentError(f"rotation must be in [0, 180] degrees, got {self.rotation_degrees}")
        for name in ("width_shift", "height_shift", "shear", "zoom"):
            if not 0 <= getattr(self, name) <= 1:
                raise AugmentError(f"{name.replace('_', ' ')} must be in [0, 1], got {getattr(self, name)}")


def augmentation_layers(settings: AugmentSettings = AugmentSettings(), seed: int = 42):
    """A Keras Sequential of preprocessing layers; acts on batches of float pixels when training=True."""
    import keras

    layers = [
        keras.layers.RandomRotation(settings.rotation_degrees / 360.0, fill_mode="reflect", seed=seed),
        keras.layers.RandomTranslation(settings.height_shift, settings.width_shift, fill_mode="reflect",
                                       seed=seed + 1),
        keras.layers.RandomShear(settings.shear, settings.shear, fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomZoom(settings.zoom, settings.zoom, fill_mode="reflect", seed=seed + 3),
    ]
    if settings.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(layers, name="augmentation")


MAX_SHIFT_FRACTION = 0.125              # 4 px of a 32 px image


def online_augmentation(mode: str, seed: int = 42):
    """Training-time layers for a Settings.augment mode, or None for "none".

    "shift-flip" moves images by whole pixels (nearest, reflected edges) and mirrors them: every
    output pixel is an input pixel, so the generator's pixel-level traces survive. "full" is
    augment_data.py's set, whose rotation, shear and zoom resample (blur) every pixel.
    """
    import keras

    if mode not in AUGMENT_MODES:
        raise AugmentError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {mode!r}")
    if mode == "none":
        return None
    if mode == "full":
        return augmentation_layers(seed=seed)
    return keras.Sequential([
        keras.layers.RandomTranslation(MAX_SHIFT_FRACTION, MAX_SHIFT_FRACTION, fill_mode="reflect",
                                       interpolation="nearest", seed=seed),
        keras.layers.RandomFlip("horizontal", seed=seed + 1),
    ], name="shift_flip")


# ---------------------------------------------------------------- offline: a folder of files
@dataclass
class AugmentReport:
    images: int = 0                     # input images augmented
    written: int = 0                    # files written: copies, and originals when asked
    skipped: List[Tuple[str, str]] = field(default_factory=list)   # (path under input, reason)


@dataclass(frozen=True)
class _Source:
    path: Path
    relative: Path                      # kept in the output, class sub-folders included
    pixels: np.ndarray
    save_options: Dict


def check_folders(input_dir, output_dir) -> Tuple[Path, Path]:
    """Resolved folders; AugmentError unless the input exists and the output lies outside it."""
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    if not input_dir.is_dir():
        raise AugmentError(f"input folder not found: {input_dir}")
    if output_dir == input_dir or input_dir in output_dir.parents:
        raise AugmentError(f"output folder {output_dir} is inside the input folder {input_dir}; "
                           "choose one outside it (the input is never written to)")
    return input_dir, output_dir


def copy_name(relative: Path, copy: int) -> Path:
    """REAL/x.jpg, 0 -> REAL/x_aug0.jpg"""
    return relative.with_name(f"{relative.stem}_aug{copy}{relative.suffix}")


def _save_options(path: Path) -> Dict:
    """The input's format; for JPEG also its quantisation tables and chroma subsampling, so the
    copies carry the same compression artefacts as the originals (a detector could learn them)."""
    with Image.open(path) as image:        # reads the header only
        if isinstance(image, JpegImagePlugin.JpegImageFile):
            return {"format": "JPEG", "qtables": image.quantization,
                    "subsampling": JpegImagePlugin.get_sampling(image)}
        return {"format": image.format}


def _load_batches(paths: List[Path], input_dir: Path, skipped: list) -> Iterator[Tuple[List[_Source], int]]:
    """(readable images, files consumed) in path order, at most ~MAX_PIXELS_PER_BATCH pixels each."""
    batch, pixels, consumed = [], 0, 0
    for path in paths:
        consumed += 1
        relative = path.relative_to(input_dir)
        array, error = images.try_load_rgb(path)
        if error:
            skipped.append((relative.as_posix(), error))
            continue
        batch.append(_Source(path, relative, array, _save_options(path)))
        pixels += array.shape[0] * array.shape[1]
        if pixels >= MAX_PIXELS_PER_BATCH:
            yield batch, consumed
            batch, pixels, consumed = [], 0, 0
    if consumed:
        yield batch, consumed


def _same_size_groups(sources: List[_Source]) -> List[List[_Source]]:
    groups = defaultdict(list)
    for source in sources:
        groups[source.pixels.shape].append(source)
    return list(groups.values())


def _save(pixels: np.ndarray, path: Path, options: Dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)


def augment_folder(input_dir, output_dir, copies: int = 5, seed: int = 42,
                   settings: AugmentSettings = AugmentSettings(), include_originals: bool = False,
                   progress: bool = True) -> AugmentReport:
    """Write `copies` augmented versions of every image under input_dir to the same relative path
    under output_dir (REAL/x.jpg -> REAL/x_aug0.jpg, ...), in the input's format and size.

    Unreadable files are skipped and listed in the report. Same inputs, seed and settings ->
    byte-identical files.
    """
    if copies < 1:
        raise AugmentError(f"copies must be at least 1, got {copies}")
    input_dir, output_dir = check_folders(input_dir, output_dir)
    paths = images.list_image_files(input_dir)
    if not paths:
        raise AugmentError(f"no images ({', '.join(images.IMAGE_EXTENSIONS)}) found under {input_dir}")

    import keras    # only now: TensorFlow takes seconds to load, refusals above stay instant

    layers = augmentation_layers(settings, seed)
    report = AugmentReport()
    with tqdm(total=len(paths), desc="augmenting", unit="img", disable=not progress) as bar:
        for batch, consumed in _load_batches(paths, input_dir, report.skipped):
            for group in _same_size_groups(batch):
                pixels = np.stack([source.pixels for source in group]).astype(np.float32)
                for copy in range(copies):
                    augmented = keras.ops.convert_to_numpy(layers(pixels, training=True))
                    augmented = np.clip(np.round(augmented), 0, 255).astype(np.uint8)
                    for source, image in zip(group, augmented):
                        _save(image, output_dir / copy_name(source.relative, copy), source.save_options)
                if include_originals:
                    for source in group:
                        shutil.copyfile(source.path, output_dir / source.relative)
            report.images += len(batch)
            report.written += len(batch) * (copies + include_originals)
            bar.update(consumed)
    return report
