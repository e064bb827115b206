"""Interrupted work: a killed training run resumes, a killed save never corrupts the model."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aidetect import data
from aidetect.model import load_model

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """1,600 random 32x32 JPEGs in CIFAKE's layout, prepared into data/ (a few seconds)."""
    source = tmp_path_factory.mktemp("source")
    rng = np.random.default_rng(0)
    for split, count in (("train", 700), ("test", 100)):
        for class_name in ("REAL", "FAKE"):
            folder = source / split / class_name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    data_dir = source.parent / "data"
    data.prepare(source, data_dir, 0.1, 0, progress=False)
    return data_dir


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _epochs_logged(history: Path) -> int:
    try:
        return len(json.loads(history.read_text())["loss"])
    except (OSError, ValueError, KeyError):
        return 0


def test_training_killed_mid_epoch_resumes_with_the_same_command(small_data, tmp_path):
    command = [sys.executable, "model_training.py", "train", "--backbone", "tiny", "--dense-units", "8",
               "--data-dir", str(small_data), "--models-dir", str(tmp_path), "--run-name", "resume",
               "--epochs", "3", "--batch-size", "4", "--stop-patience", "9", "--early-stopping-patience", "9",
               "--verbose", "0", "--no-float16-weights"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    history = tmp_path / "resume" / "history.json"
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _epochs_logged(history) >= 1, 120, "the first epoch")
        time.sleep(0.3)                                   # well inside epoch 2 (~1,260 images at batch 4)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    assert _epochs_logged(history) == 1, "the kill should land in the second epoch"
    first_epoch = json.loads(history.read_text())["loss"][0]
    assert (tmp_path / "resume" / "backup").exists()

    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    logged = json.loads(history.read_text())
    assert len(logged["loss"]) == 3 and logged["loss"][0] == first_epoch    # epoch 1 not redone
    assert all(len(values) == 3 for values in logged.values())
    metrics = json.loads((tmp_path / "resume" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3
    assert not (tmp_path / "resume" / "backup").exists()
    load_model(tmp_path / "resume" / "model.keras")


SAVE_FOREVER = """
import sys
from aidetect.model import build_model, save_slim
from aidetect.settings import Settings

settings = Settings(backbone="tiny", dense_units=4096, float16_weights=False, seed=1)
model = build_model(settings)
print("ready", flush=True)
while True:
    save_slim(model, settings, sys.argv[1])
"""


def test_a_save_killed_half_way_leaves_the_previous_model_intact(tmp_path, tiny_model_path):
    target = tmp_path / "model.keras"
    target.write_bytes(tiny_model_path.read_bytes())
    before = load_model(target).get_weights()
    saver = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(target)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        assert saver.stdout.readline().strip() == b"ready"
        temporary = target.with_name(target.name + ".tmp.keras")
        _wait_for(temporary.exists, 60, "a save in progress")
        saver.send_signal(signal.SIGKILL)
        saver.wait()
    finally:
        saver.kill()
    reloaded = load_model(target)          # either the old model or a complete new one, never half
    assert reloaded.count_params() > 0
    changed = any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(before, reloaded.get_weights()))
    assert changed == (reloaded.get_layer("dense").units == 4096)
