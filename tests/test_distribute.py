"""Who writes under TF_CONFIG, and a real two-worker MultiWorkerMirroredStrategy training run."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aidetect.distribute import is_chief, task_name

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def tf_config(index: int, ports, task_type: str = "worker", chief: bool = False) -> str:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    if chief:
        cluster["chief"] = ["127.0.0.1:1"]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize("config, chief, name", [
    (None, True, ""),
    (tf_config(0, [1, 2]), True, "worker-0"),
    (tf_config(1, [1, 2]), False, "worker-1"),
    (tf_config(0, [1, 2], chief=True), False, "worker-0"),
    (tf_config(0, [1, 2], task_type="chief", chief=True), True, "chief-0"),
])
def test_only_the_chief_writes(monkeypatch, config, chief, name):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", config)
    assert is_chief() is chief
    assert task_name() == name


def free_ports(count: int):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def tiny_data_dir(tmp_path, sample_dir) -> Path:
    """data/{train,validation,test}/{REAL,FAKE}, each holding the sample images (links)."""
    for split in ("train", "validation", "test"):
        for class_name in ("REAL", "FAKE"):
            folder = tmp_path / "data" / split / class_name
            folder.mkdir(parents=True)
            for image in (sample_dir / class_name).iterdir():
                (folder / image.name).symlink_to(image)
    return tmp_path / "data"


def test_two_workers_train_and_only_the_chief_saves(tmp_path, tiny_data_dir):
    models_dir = tmp_path / "models"
    ports = free_ports(2)
    command = [sys.executable, "model_training.py", "train", "--backbone", "tiny", "--dense-units", "8",
               "--max-train-images", "64", "--max-eval-images", "32", "--batch-size", "16",
               "--epochs", "1", "--verbose", "2", "--models-dir", str(models_dir),
               "--data-dir", str(tiny_data_dir)]
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "TF_CONFIG": tf_config(i, ports)})
               for i in range(2)]
    try:
        logs = [worker.communicate(timeout=240)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for index, (worker, log) in enumerate(zip(workers, logs)):
        assert worker.returncode == 0, f"worker {index} failed:\n{log[-3000:]}"
    assert "replicas: 2" in logs[0]

    run_dir = models_dir / "tiny-32px"
    assert (run_dir / "model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["images"] == 32
    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny-32px"]   # worker 1 cleaned up

    assert metrics["mirror_averaged"] is True       # the chief evaluated the saved file, as users run it
