"""Classify image files as AI-generated or real, from what the file declares (Content Credentials,
IPTC/XMP source type, generator settings) and from its pixels; prints CSV or writes CSV/JSON.

    python classify.py photo.jpg folder/ [--model models/<run>] [--output results.csv|results.json]
    python classify.py big-folder/ --shard 0/4 --output part0.csv     (one of 4 machines)

Folders are searched recursively for .jpg .jpeg .png .webp .bmp .gif .tif .tiff .heic .heif .avif;
rows come in sorted path order; a picture of a type it cannot read (Photoshop, camera raw, SVG, JPEG
XL...) gets a row saying what to do, other files in folders are counted. The last line on stderr
sums the run up (files seen, classified, unreadable, skipped by type, time). Exit status: 0 when at
least one image was classified; 1 when none was, a path is missing or the model cannot be loaded;
2 for bad arguments.
"""
import argparse
import contextlib
import dataclasses
import os
import sys
import time
from pathlib import Path

from aidetect.labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND, check_decision
from aidetect.provenance import TRUST_ANCHORS_ENV_VAR, read_trust_anchors
from aidetect.quiet import start_tensorflow


def _shard(text: str):
    try:
        index, count = map(int, text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, e.g. 0/4, got {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return index, count


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    parser.add_argument("--model", help="a .keras file or a run folder, e.g. models/resnet101 for the "
                                        "ResNet101 (default: $AIDETECT_MODEL, else the first shipped "
                                        "model, models/compact)")
    parser.add_argument("--output", help="results.csv or results.json (default: CSV on stdout)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="P(AI-generated) at or above which the label is AI-generated")
    parser.add_argument("--uncertain-band", type=float, default=DEFAULT_UNCERTAIN_BAND,
                        help="label Uncertain within threshold +/- this (default: %(default)s, as on the "
                             "web page; 0 = always decide)")
    parser.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                        help="only the I-th (0-based) of N equal slices of the sorted file list, "
                             "e.g. a Kubernetes indexed job's $JOB_COMPLETION_INDEX/N")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True,
                        help="average each image with its mirror (more accurate, half the speed; "
                             "measured in the results docs)")
    parser.add_argument("--trust-anchors", metavar="PEM", default=os.environ.get(TRUST_ANCHORS_ENV_VAR),
                        help="a PEM file of trusted Content Credentials (C2PA) root certificates, e.g. the "
                             "official C2PA trust list (default: $AIDETECT_TRUST_ANCHORS; none: signers are "
                             "named but not checked against a trust list)")
    parser.add_argument("--explain", metavar="DIR", help="also write a heatmap overlay PNG per image here")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up messages")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    try:
        check_decision(args.threshold, args.uncertain_band)
        args.trust_anchors = read_trust_anchors(args.trust_anchors)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    return args


def _overlay_path(folder: Path, position: int, path: str) -> Path:
    """Numbered by position in the sorted list: unique even for equal names in different folders."""
    return folder / f"{position:06d}-{Path(path).stem}.png"


def _write_explanation(predictor, path: str, prob_ai: float, target: Path) -> None:
    from aidetect import explain, images

    explain.save_overlay_png(*explain.explain_answer(predictor, images.load_rgb(path), prob_ai), target)


def missing_paths(paths) -> list:
    """One line per given path that is neither a file nor a folder."""
    return [f"error: {path}: no such file or folder" for path in paths if not os.path.exists(path)]


def summary(seen: int, classified: int, others: int, seconds: float, output) -> str:
    """The run's one-line summary on stderr: every file given or found is accounted for."""
    return (f"{seen + others:,} files: {classified:,} classified, {seen - classified:,} unreadable (see the error "
            f"column), {others:,} skipped by type (not pictures); {seconds:.1f} s; results in "
            f"{output or 'standard output'}")


def main(argv=None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    missing = missing_paths(args.paths)
    if missing:                                     # before the model loads: a typo costs no wait
        print("\n".join(missing), file=sys.stderr)
        return 1
    start_tensorflow(args.verbose)
    from aidetect import batch, results
    from aidetect.model import ModelError
    from aidetect.predict import Predictor, reliability_warning

    every_file, others = batch.list_inputs(args.paths)
    first, stop = batch.shard_bounds(len(every_file), *args.shard)
    files = every_file[first:stop]
    if not files:
        print(f"error: no image files found in {', '.join(args.paths)}"
              + (f" (shard {args.shard[0]}/{args.shard[1]} is empty)" if every_file else "")
              + (f"; {others:,} other files skipped by type" if others else ""), file=sys.stderr)
        return 1
    json_output = args.output and results.is_json(args.output)
    with contextlib.ExitStack() as stack:
        try:
            predictor = Predictor.load(args.model, args.mirror)
            warning = reliability_warning(predictor.run_info())
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
            if args.output:                                     # fail now, not after the run
                Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            if args.explain:
                Path(args.explain).mkdir(parents=True, exist_ok=True)
            # CSV rows are written as they come, so a stopped run keeps what it did; JSON at the end
            csv_rows = None
            if not json_output:
                stream = stack.enter_context(open(args.output, "w", newline="")) if args.output else sys.stdout
                csv_rows = results.csv_writer(stream, scored=predictor.scored,
                                              explained=bool(args.explain))
        except (ModelError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

        done, classified = [], 0
        for position, result in enumerate(batch.classify_files(predictor, files, args.batch_size,
                                                                args.threshold, args.uncertain_band,
                                                                trust_anchors=args.trust_anchors), first):
            if not result.error:
                classified += 1
                if args.explain:
                    overlay = _overlay_path(Path(args.explain), position, result.name)
                    _write_explanation(predictor, result.name, result.prob_ai, overlay)
                    result = dataclasses.replace(result, explanation=str(overlay))
            if csv_rows is not None:
                csv_rows.writerow(results.to_row(result))
                stream.flush()
            else:
                done.append(result)
    if json_output:
        results.write(done, args.output)
    print(summary(len(files), classified, others if args.shard == (0, 1) else 0, time.perf_counter() - started,
                  args.output), file=sys.stderr)
    if not classified:
        print(f"error: none of the {len(files)} files could be classified (see the error column)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
