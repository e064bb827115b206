"""PNG plots of one training run, from its history.json and metrics.json; no TensorFlow needed.

Six training-vs-validation curves, the test confusion matrix, the test ROC curve and an overview
figure with all of them; and, where the run has a calibration.json, the reliability diagram before
and after temperature scaling. Used by plot_metrics.py and at the end of training.
"""
import json
import math
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")                   # files only: no display needed, safe in threads and servers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .errors import InputError  # noqa: E402
from .labels import CLASS_NAMES, DISPLAY_NAMES, POSITIVE_CLASS  # noqa: E402

CURVES = {"loss": "Loss", "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall",
          "auc": "AUC", "f1": "F1"}
HISTORY_KEYS = [key for metric in CURVES for key in (metric, f"val_{metric}")]
CONFUSION_KEYS = {(true, pred): f"true_{true}_pred_{pred}" for true in CLASS_NAMES for pred in CLASS_NAMES}
METRICS_KEYS = (["accuracy", "precision", "recall", "f1", "auc", "roc.fpr", "roc.tpr"]
                + [f"confusion_matrix.{key}" for key in CONFUSION_KEYS.values()])
DPI = 120


class PlotError(InputError):
    """A run that cannot be plotted; str(error) is a one-line reason."""


def _missing(values: Dict, dotted_keys: List[str]) -> List[str]:
    def has(key: str) -> bool:
        node = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True
    return [key for key in dotted_keys if not has(key)]


def _read_json(path: Path, required: List[str]) -> Dict:
    if not path.is_file():
        raise PlotError(f"{path} not found (a run writes it during/after `python model_training.py train`)")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise PlotError(f"{path} is not valid JSON: {error}") from None
    missing = _missing(values, required) if isinstance(values, dict) else required
    if missing:
        raise PlotError(f"{path} is missing keys: {', '.join(missing)}")
    return values


def load_run(run_dir) -> Tuple[Dict, Dict]:
    """(history, metrics) of a run folder; PlotError naming what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PlotError(f"run folder not found: {run_dir}")
    history = _read_json(run_dir / "history.json", HISTORY_KEYS)
    if not history["loss"]:
        raise PlotError(f"{run_dir / 'history.json'} has no epochs")
    return history, _read_json(run_dir / "metrics.json", METRICS_KEYS)


# ---------------------------------------------------------------- panels: each draws on one Axes
def draw_curve(ax, history: Dict, metric: str) -> None:
    name = CURVES[metric]
    for key, label in ((metric, "Training"), (f"val_{metric}", "Validation")):
        ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=label)
    epochs = max(len(history[metric]), len(history[f"val_{metric}"]))
    ax.set(title=f"Training and Validation {name}", xlabel="Epoch", ylabel=name, xlim=(0.5, epochs + 0.5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))   # whole epochs, even for one
    ax.grid(alpha=0.3)
    ax.legend()


def draw_confusion_matrix(ax, metrics: Dict) -> None:
    """Counts and the rate within each true class; coloured by rate so class sizes do not matter."""
    matrix = metrics["confusion_matrix"]
    counts = np.array([[matrix[CONFUSION_KEYS[true, pred]] for pred in CLASS_NAMES] for true in CLASS_NAMES])
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    labels = [[f"{count:,}\n{rate:.1%}" for count, rate in zip(*row)] for row in zip(counts, rates)]
    names = [DISPLAY_NAMES[name] for name in CLASS_NAMES]
    sns.heatmap(rates, annot=labels, fmt="", cmap="Blues", vmin=0, vmax=1, square=True,
                xticklabels=names, yticklabels=names, cbar_kws={"label": "Rate within the true class"}, ax=ax)
    ax.set(title=f"Confusion Matrix (test, {counts.sum():,} images)", xlabel="Predicted", ylabel="True")


def draw_roc(ax, metrics: Dict) -> None:
    ax.plot(metrics["roc"]["fpr"], metrics["roc"]["tpr"], label=f"ROC (AUC = {metrics['auc']:.4f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Chance (AUC = 0.5)")
    ax.set(title=f"ROC Curve (test, {DISPLAY_NAMES[POSITIVE_CLASS]} = positive)",
           xlabel="False Positive Rate", ylabel="True Positive Rate", xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")


def draw_summary(ax, metrics: Dict) -> None:
    rows = [(name, metrics[key]) for key, name in CURVES.items() if key in metrics]
    text = "\n".join(f"{name:<10}{value:8.4f}" for name, value in rows if not math.isnan(value))
    title = "Test set" + ("\n(each image averaged\nwith its mirror)" if metrics.get("mirror_averaged") else "")
    ax.text(0.05, 0.95, title + "\n\n" + text, va="top", family="monospace", fontsize=14,
            transform=ax.transAxes)
    ax.axis("off")


# ---------------------------------------------------------------- files
def draw_reliability(ax, calibration: Dict, split: str = "test") -> None:
    """Observed share of AI-generated images against the predicted probability, per bin, before
    and after temperature scaling (calibration.json); the diagonal is perfect calibration."""
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for stage, style in (("before", "o-"), ("after", "s-")):
        bins = calibration[split][stage]["bins"]
        ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], style,
                label=f"{stage} (ECE {calibration[split][stage]['ece']:.4f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"predicted P({DISPLAY_NAMES[POSITIVE_CLASS]})",
           ylabel=f"observed share {DISPLAY_NAMES[POSITIVE_CLASS]}",
           title=f"Reliability on {split} (temperature {calibration['temperature']:.3f})")
    ax.legend(loc="upper left")


def _save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def write_plots(run_dir, out_dir) -> List[Path]:
    """Write <metric>.png for the six curves, confusion_matrix.png, roc_curve.png and overview.png."""
    history, metrics = load_run(run_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    panels: Dict[str, Callable] = {f"{metric}.png": (lambda ax, m=metric: draw_curve(ax, history, m))
                                   for metric in CURVES}
    panels["confusion_matrix.png"] = lambda ax: draw_confusion_matrix(ax, metrics)
    panels["roc_curve.png"] = lambda ax: draw_roc(ax, metrics)

    written = []
    for name, draw in panels.items():
        figure, ax = plt.subplots(figsize=(7, 5), layout="constrained")
        draw(ax)
        written.append(_save(figure, out_dir / name))

    figure, axes = plt.subplots(3, 3, figsize=(19, 15), layout="constrained")
    for draw, ax in zip(panels.values(), axes.flat):
        draw(ax)
    draw_summary(axes.flat[-1], metrics)
    figure.suptitle(f"Run {Path(run_dir).resolve().name}", fontsize=16)
    written.append(_save(figure, out_dir / "overview.png"))
    calibration_path = Path(run_dir) / "calibration.json"
    if calibration_path.is_file():          # written by training or `model_training.py calibrate`
        calibration = _read_json(calibration_path, ["temperature", "validation.before.bins"])
        figure, ax = plt.subplots(figsize=(6, 6), layout="constrained")
        draw_reliability(ax, calibration, "test" if "test" in calibration else "validation")
        written.append(_save(figure, out_dir / "calibration.png"))
    return written
