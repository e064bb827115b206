"""run.json: what a run folder needs to explain itself later.

The code version (git commit, and whether the tree had uncommitted changes), package versions, the
command line, the machine, and the lineage: a run started with --init-from embeds its parent's own
record, so a chain of training stages can be followed from the shipped folder back to random weights;
and the data: `prepare`'s report of the data folder it trained on (its splits, and for a labelled set
which sources each split holds).
"""
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional

RECORD_FILE = "run.json"
ROOT = Path(__file__).resolve().parent.parent


def _git(*args) -> Optional[str]:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _machine() -> Dict:
    import tensorflow as tf
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "gpus": [gpu.name for gpu in tf.config.list_physical_devices("GPU")]}


def parent_record(init_from: str) -> Optional[Dict]:
    """The record of the run whose model init_from names (its run.json, else its settings.json)."""
    if not init_from:
        return None
    from .model import model_file
    folder = model_file(init_from).parent
    record = {"path": str(init_from)}
    for name in (RECORD_FILE, "settings.json"):
        try:
            found = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        return dict(record, **found) if name == RECORD_FILE else dict(record, settings=found,
                                                                        note="no run.json beside it")
    return dict(record, note="no record found beside the model")


def new_record(settings) -> Dict:
    import keras
    import numpy as np
    import tensorflow as tf
    status = _git("status", "--porcelain")
    return {
        "run_name": settings.resolved_run_name(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "packages": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "machine": _machine(),
        "settings": json.loads(settings.to_json()),
        "parent": parent_record(settings.init_from),
        "data": _data_report(settings.data_dir),
    }


def _data_report(data_dir) -> Optional[Dict]:
    from .data import REPORT_FILE
    try:
        report = json.loads((Path(data_dir) / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return None
    report.pop("skipped", None)             # CIFAKE's list of unreadable files: long, in the data folder
    return report
