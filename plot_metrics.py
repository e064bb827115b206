"""Plot a training run: training vs validation curves, test confusion matrix and ROC, as PNGs.

    python plot_metrics.py [--run models/<run>] [--out metrics_graphs]

Reads the run's history.json and metrics.json; writes loss, accuracy, precision, recall, auc, f1,
confusion_matrix, roc_curve and overview .png files. Needs no TensorFlow and takes seconds.
"""
import argparse
import sys
from pathlib import Path

from aidetect.plots import PlotError, write_plots

DEFAULT_RUN = Path(__file__).resolve().parent / "models" / "resnet101"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=DEFAULT_RUN,
                        help="run folder with history.json and metrics.json "
                             "(default: the ResNet101's, models/resnet101)")
    parser.add_argument("--out", type=Path, default=Path("metrics_graphs"),
                        help="folder for the PNG files (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        written = write_plots(args.run, args.out)
    except PlotError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
