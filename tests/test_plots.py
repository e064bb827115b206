"""plot_metrics.py and aidetect/plots.py: the PNG files, clear errors, and no TensorFlow."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aidetect.evaluate import compute_metrics
from aidetect.plots import HISTORY_KEYS, PlotError, write_plots

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_FILES = ["loss.png", "accuracy.png", "precision.png", "recall.png", "auc.png", "f1.png",
                  "confusion_matrix.png", "roc_curve.png", "overview.png"]


def make_run(folder: Path, drop_history_keys=()) -> Path:
    """A run folder shaped like training's: 4 epochs of history and test metrics of 200 images."""
    rng = np.random.default_rng(0)
    history = {key: list(rng.uniform(0.3, 0.9, 4)) for key in HISTORY_KEYS if key not in drop_history_keys}
    history["epoch_seconds"] = [12.0] * 4
    labels = np.repeat([0, 1], 100)
    metrics = compute_metrics(labels, np.clip(labels * 0.6 + rng.uniform(0, 0.4, 200), 0, 1))
    metrics["loss"] = 0.4
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "plot_metrics.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert all(word in result.stderr for word in words), result.stderr


def test_write_plots_creates_every_png(tmp_path):
    written = write_plots(make_run(tmp_path / "run"), tmp_path / "graphs")
    assert [path.name for path in written] == EXPECTED_FILES
    for path in written:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 600 and image.height >= 400
        assert path.stat().st_size > 10_000


def test_missing_history_keys_are_named(tmp_path):
    run = make_run(tmp_path / "run", drop_history_keys=("val_auc", "val_f1"))
    with pytest.raises(PlotError, match="missing keys: val_auc, val_f1"):
        write_plots(run, tmp_path / "graphs")


def test_missing_run_folder_and_metrics_file_are_clear(tmp_path):
    with pytest.raises(PlotError, match="run folder not found"):
        write_plots(tmp_path / "nothing", tmp_path / "graphs")
    run = make_run(tmp_path / "run")
    (run / "metrics.json").unlink()
    with pytest.raises(PlotError, match="metrics.json not found"):
        write_plots(run, tmp_path / "graphs")


@pytest.mark.slow
def test_cli_runs_without_tensorflow(tmp_path):
    """Fake tensorflow and keras packages that refuse to import, first on the path."""
    blocked = tmp_path / "blocked"
    for name in ("tensorflow", "keras"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked by this test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)])}
    result = run_cli("--run", make_run(tmp_path / "run"), "--out", tmp_path / "graphs", env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "graphs").iterdir()) == sorted(EXPECTED_FILES)


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path):
    assert_one_line_error(run_cli("--run", tmp_path / "nothing"), "run folder not found")
    partial = make_run(tmp_path / "run", drop_history_keys=("val_loss",))
    assert_one_line_error(run_cli("--run", partial, "--out", tmp_path / "graphs"), "missing keys: val_loss")
