"""Prepare CIFAKE, train a detector (ResNet101 by default, or the compact CNN), evaluate, export it.

    python model_training.py prepare --source ../shared/data/cifake
    python model_training.py train [--epochs N] [--max-train-images N] ...
    python model_training.py train --help        (every setting is a flag)
    python model_training.py evaluate [--model models/<run>] [--output metrics.json]
    python model_training.py calibrate [--model models/<run>]   (calibration.json beside the model)
    python model_training.py scope [--model models/<run>]       (scope.npz: what the model knows)
    python model_training.py control --data-dir data-wild [--kind format]   (content or format baseline)
    python model_training.py export --model models/<run> --out serving/aidetect/1
"""
import argparse
import sys
from pathlib import Path

from aidetect.data import VALIDATION_FRACTION
from aidetect.errors import InputError
from aidetect.quiet import start_tensorflow
from aidetect.settings import Settings, add_settings_arguments, settings_from_args


def _prepare(args) -> int:
    from aidetect.data import prepare
    from aidetect.sources import is_labelled_set, prepare_by_source
    if args.fold is not None and not args.folds:
        raise InputError("--fold needs --folds (how many folds the sources are dealt into)")
    if args.folds and not is_labelled_set(args.source):
        raise InputError(f"--folds needs a labelled set split by source (REAL/ and FAKE/ with a manifest); "
                         f"{args.source} is not one")
    if is_labelled_set(args.source):
        fold = None if args.fold == "all" else int(args.fold or 0)
        report = prepare_by_source(args.source, args.data_dir, args.seed, folds=(fold, args.folds) if args.folds else None)
    else:
        report = prepare(args.source, args.data_dir, args.validation_fraction, args.seed)
    for split, counts in report["counts"].items():
        print(f"{split:10s} " + "  ".join(f"{c}: {n:6d}" for c, n in counts.items()))
    if "splits" in report:
        for split, held in report["splits"].items():
            print(f"{split} sources: " + ", ".join(f"{s} ({n})" for s, n in held["sources"].items()))
        print("generator families in both train and test: "
              + (", ".join(report["families_in_train_and_test"]) or "none"))
        return 0
    pairs = ", ".join(f"{pair.replace('~', ' and ')}: {count}"
                      for pair, count in report["duplicates_between_splits"].items())
    print(f"identical images shared between splits: {pairs}; between classes: "
          f"{report['duplicates_between_classes']}; unreadable files skipped: {len(report['skipped'])}")
    return 0


def _train(args) -> int:
    from aidetect.train import train
    train(settings_from_args(args))
    return 0


def _report(metrics, output) -> None:
    """Print metrics, their breakdown per family and source (if any), and write them to output."""
    import json

    from aidetect.evaluate import format_breakdown, format_summary
    from aidetect.files import write_atomically
    print(format_summary(metrics))
    for key, title in (("by_family", "generator family"), ("by_source", "source")):
        if key in metrics:
            print("\n" + format_breakdown(metrics[key], title))
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_atomically(output, json.dumps(metrics, indent=2))


def _evaluate(args) -> int:
    from aidetect.evaluate import evaluate_saved_model
    from aidetect.predict import resolve_model_path
    model_path = resolve_model_path(args.model)
    metrics = evaluate_saved_model(model_path, args.data_dir, args.split, args.batch_size, args.mirror)
    print(f"{model_path} on {args.data_dir}/{args.split}")
    _report(dict(metrics, model=str(model_path)), args.output)
    return 0


def _calibrate(args) -> int:
    from aidetect.evaluate import calibrate_saved_model
    from aidetect.predict import resolve_model_path
    model_path = resolve_model_path(args.model)
    report = calibrate_saved_model(model_path, args.data_dir, args.batch_size, args.mirror)
    print(f"{model_path}: temperature {report['temperature']:.3f} (fitted on {report['images']} validation images)")
    for split in ("validation", "test"):
        row = report[split]
        print(f"{split:10s} ECE {row['before']['ece']:.4f} -> {row['after']['ece']:.4f}   "
              f"log-loss {row['log_loss_before']:.4f} -> {row['log_loss_after']:.4f}")
    print(f"wrote {model_path.parent / 'calibration.json'}")
    return 0


def _scope(args) -> int:
    from aidetect.predict import resolve_model_path
    from aidetect.scope import fit_for_model
    model_path = resolve_model_path(args.model)
    report = fit_for_model(model_path, args.data_dir)
    print(f"{model_path}: threshold {report['threshold']:.1f} (the {report['quantile']:.1%} point of validation "
          f"scores; fitted on {report['fit_images']} training images)")
    for name, share in report["flagged"].items():
        print(f"  {name:12s} {share:6.1%} outside what the model knows")
    print(f"  AUROC of the score, test split vs synthetic: {report['auroc_test_vs_synthetic']:.3f}")
    kept = "scope.npz and scope.json" if report["kept"] else (
        f"scope.json only: the score separates too little to be used (AUROC below {report['min_auroc']})")
    print(f"wrote {kept} in {model_path.parent}")
    return 0


def _control(args) -> int:
    from aidetect.control import fit_and_score
    metrics = fit_and_score(args.data_dir, args.kind)
    print(f"{args.kind} control on {args.data_dir}/test: {metrics['control']} "
          f"(C={metrics['strength']}, validation AUC {metrics['validation_auc']:.3f})")
    _report(metrics, args.output)
    return 0


def _export(args) -> int:
    from aidetect.export import export_saved_model
    from aidetect.predict import resolve_model_path
    print(f"wrote {export_saved_model(resolve_model_path(args.model), args.out, args.mirror)}")
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main_parser.add_subparsers(dest="command")
    prepare = commands.add_parser("prepare", help="build data/{train,validation,test}/{REAL,FAKE}")
    prepare.add_argument("--source", default="../shared/data/cifake",
                         help="CIFAKE tars folder, a train/test folder, or its .zip (default: %(default)s); "
                              "or a labelled set (REAL/FAKE folders or tars, e.g. ../shared/data/wild): "
                              "split by source, whole sources held out for validation and test")
    prepare.add_argument("--data-dir", default=Settings.data_dir)
    prepare.add_argument("--validation-fraction", type=float, default=VALIDATION_FRACTION)
    prepare.add_argument("--seed", type=int, default=Settings.seed)
    prepare.add_argument("--folds", type=int, default=0,
                         help="labelled sets: cross-validation over whole sources in this many folds; "
                              "test = the sources of --fold, validation held out whole from the rest")
    prepare.add_argument("--fold", choices=["all"] + [str(k) for k in range(100)], metavar="K|all",
                         help="which fold is the test split (with --folds; default 0); all: every fold trains, test "
                              "is a copy of validation (to train the model to ship once the folds have measured the recipe)")
    prepare.set_defaults(run=_prepare)
    train = commands.add_parser("train", help="train, evaluate on test, save models/<run>/")
    add_settings_arguments(train)
    train.set_defaults(run=_train)
    evaluate = commands.add_parser("evaluate", help="test metrics of a saved model, loaded from disk")
    evaluate.add_argument("--model", help="a .keras file or a run folder (default: the served default model)")
    evaluate.add_argument("--data-dir", default=Settings.data_dir)
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test", "all"])
    evaluate.add_argument("--batch-size", type=int, default=Settings.batch_size)
    evaluate.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True,
                          help="average each image with its mirror, as the app does (default: yes)")
    evaluate.add_argument("--output", help="also write the metrics to this JSON file")
    evaluate.set_defaults(run=_evaluate)
    calibrate = commands.add_parser("calibrate", help="fit a temperature on validation: calibration.json "
                                                      "beside the model (the model file is not changed)")
    calibrate.add_argument("--model", help="a .keras file or a run folder (default: the served default model)")
    calibrate.add_argument("--data-dir", default=Settings.data_dir)
    calibrate.add_argument("--batch-size", type=int, default=Settings.batch_size)
    calibrate.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True,
                           help="calibrate mirror-averaged probabilities, as the app computes them (default: yes)")
    calibrate.set_defaults(run=_calibrate)
    scope = commands.add_parser("scope", help="fit what the model knows (scope.npz beside the model): inputs "
                                              "unlike its training images get 'Outside what this model knows'")
    scope.add_argument("--model", help="a .keras file or a run folder (default: the served default model)")
    scope.add_argument("--data-dir", default=Settings.data_dir)
    scope.set_defaults(run=_scope)
    control = commands.add_parser("control", help="a baseline on a prepared split: content only (colours, 8x8 "
                                                  "layout) or format only (JPEG history)")
    control.add_argument("--data-dir", default=Settings.data_dir)
    control.add_argument("--kind", default="content", choices=["content", "format"])
    control.add_argument("--output", help="also write its metrics to this JSON file")
    control.set_defaults(run=_control)
    export = commands.add_parser("export", help="write a TensorFlow SavedModel for TensorFlow Serving")
    export.add_argument("--model", help="a .keras file or a run folder (default: the served default model)")
    export.add_argument("--out", required=True,
                        help="output folder; TensorFlow Serving expects <base>/<model name>/<version>")
    export.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=True,
                        help="serve each image averaged with its mirror, as the app does (default: yes)")
    export.set_defaults(run=_export)
    return main_parser


def main(argv=None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.command is None:
        cli.print_help()
        return 0
    # refusals that need no data or model: one line, before anything slow is imported
    if args.command in ("evaluate", "calibrate") and args.batch_size < 1:
        cli.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.command == "train":
        try:
            settings_from_args(args)
        except ValueError as error:
            cli.error(str(error))
    if args.command in ("train", "evaluate", "calibrate", "scope", "export"):
        start_tensorflow()                  # quietly; AIDETECT_VERBOSE=1 shows TensorFlow's own lines
    try:
        return args.run(args)
    except InputError as error:             # a data folder, model file or source the user can fix
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
