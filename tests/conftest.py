"""Shared fixtures: the sample images from ../shared and a tiny trained-shape model on disk."""
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

ROOT = Path(__file__).resolve().parent.parent
CIFAKE = ROOT.parent / "shared" / "data" / "cifake"
SAMPLE = CIFAKE / "sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE / "REAL").is_dir():
        pytest.skip(f"CIFAKE sample images not found at {SAMPLE}")
    return SAMPLE


@pytest.fixture(scope="session")
def cifake_dir() -> Path:
    if not (CIFAKE / "train-REAL.tar").is_file():
        pytest.skip(f"full CIFAKE tars not found at {CIFAKE}")
    return CIFAKE


@pytest.fixture(scope="session")
def tiny_settings():
    from aidetect.settings import Settings
    return Settings(backbone="tiny", dense_units=8, image_size=32, float16_weights=False)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, tiny_settings) -> Path:
    """An untrained tiny classifier saved the way training saves (slim .keras in a run folder).
    Seeded: an unseeded backbone made Grad-CAM's positive part vanish on some runs (CI, stop 28)."""
    import keras
    from aidetect.model import build_model, save_slim
    keras.utils.set_random_seed(0)
    run_dir = tmp_path_factory.mktemp("tiny-run")
    return save_slim(build_model(tiny_settings), tiny_settings, run_dir / "model.keras")


@pytest.fixture(scope="session", params=["compact", "resnet101"])
def shipped_model_path(request) -> Path:
    """Each shipped model (models/<name>/model.keras), one test run per model."""
    from aidetect.predict import MODELS_DIR, SHIPPED_MODELS
    from aidetect.model import MODEL_FILE
    assert request.param in SHIPPED_MODELS
    path = MODELS_DIR / request.param / MODEL_FILE
    if not path.is_file():
        pytest.skip(f"no shipped model at {path}")
    return path
