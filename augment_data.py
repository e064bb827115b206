"""Write N augmented copies of every image in a folder, keeping its class sub-folders.

    python augment_data.py --input data/train --output data/train-augmented [--copies 5] [--seed 42]

data/train/REAL/x.jpg -> data/train-augmented/REAL/x_aug0.jpg ... x_aug4.jpg, in the input's format
and size, so the output is directly usable as training data. Random rotation, width/height shift,
shear, zoom and horizontal flip (aidetect/augment.py, the same layers as `train --augment`).
Same input, seed and flags -> byte-identical files. Unreadable files are skipped and listed.
"""
import argparse
import sys
import time

from aidetect.augment import AugmentError, AugmentSettings, augment_folder
from aidetect.quiet import start_tensorflow

DEFAULTS = AugmentSettings()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True,
                        help="folder of images (sub-folders such as REAL/ and FAKE/ are kept)")
    parser.add_argument("--output", required=True, help="folder for the copies; must not be inside --input")
    parser.add_argument("--copies", type=int, default=5,
                        help="augmented copies per image (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="same seed, same files (default: %(default)s)")
    parser.add_argument("--include-originals", action="store_true",
                        help="also copy the original files, unchanged")
    parser.add_argument("--rotation", type=float, default=DEFAULTS.rotation_degrees,
                        help="maximum rotation in degrees, either way (default: %(default)s)")
    parser.add_argument("--width-shift", type=float, default=DEFAULTS.width_shift,
                        help="maximum horizontal shift, fraction of the width (default: %(default)s)")
    parser.add_argument("--height-shift", type=float, default=DEFAULTS.height_shift,
                        help="maximum vertical shift, fraction of the height (default: %(default)s)")
    parser.add_argument("--shear", type=float, default=DEFAULTS.shear,
                        help="maximum shear, fraction of the image, both axes (default: %(default)s)")
    parser.add_argument("--zoom", type=float, default=DEFAULTS.zoom,
                        help="maximum zoom in or out, fraction (default: %(default)s)")
    parser.add_argument("--horizontal-flip", action=argparse.BooleanOptionalAction,
                        default=DEFAULTS.horizontal_flip,
                        help="flip half of the copies left-right (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start_tensorflow()                      # quietly; AIDETECT_VERBOSE=1 shows TensorFlow's own lines
    started = time.perf_counter()
    try:
        settings = AugmentSettings(args.rotation, args.width_shift, args.height_shift, args.shear,
                                   args.zoom, args.horizontal_flip)
        report = augment_folder(args.input, args.output, args.copies, args.seed, settings,
                                args.include_originals)
    except AugmentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"augmented {report.images} images: {report.written} files written to {args.output} "
          f"in {seconds:.1f} s")
    if report.skipped:
        print(f"skipped {len(report.skipped)} unreadable files:", file=sys.stderr)
        for name, reason in report.skipped:
            print(f"  {name}: {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
