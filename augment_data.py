"""Write N augmented copies of every image in a folder, keeping its class sub-folders.

    python augment_data.py --input data/train --output data/train-augmented [--copies 5] [--seed 42]

data/train/REAL/x.jpg -> data/train-augmented/REAL/x_aug0.jpg ... x_aug4.jpg, in the input's format
and size. The default preset, keep-pixels, moves images by whole pixels and mirrors them, and
changes half of the copies the way pictures are changed on their way to people (blur, JPEG,
resizing, sharpening, brightness, contrast, grey): the same as `train --augment robust`, and it
keeps the pixel-level detail detectors rely on. --preset geometric is the seed project's random
rotation, shift, shear and zoom (they resample, i.e. blur, every pixel of a 32 px image; the
results docs measure what that costs). Same input, seed and flags -> byte-identical files.
Unreadable files are skipped and listed.
"""
import argparse
import sys
import time

from aidetect.augment import PRESETS, AugmentError, AugmentSettings, augment_folder, check_folders
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
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up messages")
    parser.add_argument("--preset", choices=PRESETS, default=DEFAULTS.preset,
                        help="keep-pixels (whole-pixel shifts, mirroring, everyday photo changes) or "
                             "geometric (rotation, shift, shear, zoom) (default: %(default)s)")
    parser.add_argument("--robust-probability", type=float, default=DEFAULTS.robust_probability,
                        help="keep-pixels: share of copies given an everyday change (default: %(default)s)")
    geometric = parser.add_argument_group("--preset geometric only")
    geometric.add_argument("--rotation", type=float,
                           help=f"maximum rotation in degrees, either way (default: {DEFAULTS.rotation_degrees})")
    geometric.add_argument("--width-shift", type=float,
                           help=f"maximum horizontal shift, fraction of the width (default: {DEFAULTS.width_shift})")
    geometric.add_argument("--height-shift", type=float,
                           help=f"maximum vertical shift, fraction of the height (default: {DEFAULTS.height_shift})")
    geometric.add_argument("--shear", type=float,
                           help=f"maximum shear, fraction of the image, both axes (default: {DEFAULTS.shear})")
    geometric.add_argument("--zoom", type=float,
                           help=f"maximum zoom in or out, fraction (default: {DEFAULTS.zoom})")
    geometric.add_argument("--horizontal-flip", action=argparse.BooleanOptionalAction,
                           help=f"flip half of the copies left-right (default: {DEFAULTS.horizontal_flip})")
    args = parser.parse_args(argv)
    given = [f"--{name.replace('_', '-')}" for name in GEOMETRIC_FLAGS if getattr(args, name) is not None]
    if given and args.preset != "geometric":
        parser.error(f"{', '.join(given)} only apply to --preset geometric")
    return args


GEOMETRIC_FLAGS = {"rotation": "rotation_degrees", "width_shift": "width_shift", "height_shift": "height_shift",
                   "shear": "shear", "zoom": "zoom", "horizontal_flip": "horizontal_flip"}


def settings_from(args) -> AugmentSettings:
    geometric = {field: getattr(args, flag) for flag, field in GEOMETRIC_FLAGS.items()
                 if getattr(args, flag) is not None}
    return AugmentSettings(preset=args.preset, robust_probability=args.robust_probability, **geometric)



def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        settings = settings_from(args)
        check_folders(args.input, args.output)      # refusals stay instant: TensorFlow loads after
        start_tensorflow(args.verbose)              # quietly, unless --verbose
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
