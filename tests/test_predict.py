"""The Predictor: mirror averaging, and the shipped model's answers on the sample images."""

import numpy as np
import pytest

from aidetect.predict import Predictor


@pytest.fixture(scope="module")
def pictures():
    """Four left-right asymmetric 32x32 images: a bright band on a different side of each."""
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    for index in range(4):
        batch[index, :, index * 4: index * 4 + 6] = 255.0
    return batch


def test_mirror_averaging_is_the_mean_of_both_views(tiny_model_path, pictures):
    single = Predictor.load(tiny_model_path, mirror=False)
    averaged = Predictor.load(tiny_model_path)
    plain, mirrored = single.prob_ai_batch(pictures), single.prob_ai_batch(pictures[:, :, ::-1])
    assert np.abs(plain - mirrored).max() > 1e-4        # the model itself does see the difference
    np.testing.assert_allclose(averaged.prob_ai_batch(pictures), (plain + mirrored) / 2, atol=1e-6)


def test_mirrored_upload_gets_the_same_answer(tiny_model_path, pictures):
    predictor = Predictor.load(tiny_model_path)
    np.testing.assert_allclose(predictor.prob_ai_batch(pictures),
                               predictor.prob_ai_batch(pictures[:, :, ::-1].copy()), atol=1e-6)
    assert predictor.prob_ai_batch(pictures[:0]).shape == (0,)


@pytest.mark.needs_cifake
def test_shipped_model_tells_the_sample_images_apart(shipped_model_path, sample_dir):
    """The shipped file through the Predictor, with the class order as the files are named:
    catches a swapped label order that tests comparing the app with the Predictor cannot."""
    predictor = Predictor.load(shipped_model_path)
    results = {name: predictor.classify(sorted((sample_dir / name).iterdir())) for name in ("REAL", "FAKE")}
    prob_ai = {name: np.array([r.prob_ai for r in rows]) for name, rows in results.items()}
    assert all(len(p) == 50 for p in prob_ai.values())
    correct = (prob_ai["FAKE"] >= 0.5).sum() + (prob_ai["REAL"] < 0.5).sum()
    assert correct >= 90, f"{correct}/100 sample images right"
    assert np.median(prob_ai["FAKE"]) > 0.9 > 0.1 > np.median(prob_ai["REAL"])
    assert {r.label for r in results["FAKE"] if r.prob_ai > 0.6 and not r.out_of_scope} == {"AI-generated"}
    outside = [r for rows in results.values() for r in rows if r.out_of_scope]     # ~2.5 % by design
    assert len(outside) <= 5 and all(r.label == "Outside what this model knows" for r in outside)


def test_settling_a_long_lived_process_keeps_keras_state_and_freezes_the_heap(monkeypatch):
    import gc

    import keras

    from aidetect.predict import settle_long_lived_process
    real_clear_session = keras.backend.clear_session
    monkeypatch.setattr(keras.backend, "clear_session", real_clear_session)     # restored after
    try:
        real_clear_session()
        first = keras.layers.Dense(1).name          # Keras numbers layer names; clearing resets that
        settle_long_lived_process()
        assert gc.get_freeze_count() > 0
        keras.backend.clear_session()               # what Streamlit calls after every run
        assert keras.layers.Dense(1).name != first  # not reset: the call did nothing
    finally:
        gc.unfreeze()


def test_tools_serve_the_first_shipped_model_unless_told_otherwise(monkeypatch, tmp_path):
    from aidetect.predict import MODEL_ENV_VAR, MODELS_DIR, SHIPPED_MODELS, resolve_model_path
    monkeypatch.delenv(MODEL_ENV_VAR, raising=False)
    assert SHIPPED_MODELS[0] == "compact"          # measured better on clean and processed images
    assert resolve_model_path() == MODELS_DIR / "compact" / "model.keras"
    assert resolve_model_path(MODELS_DIR / "resnet101") == MODELS_DIR / "resnet101" / "model.keras"
    monkeypatch.setenv(MODEL_ENV_VAR, str(tmp_path / "mine.keras"))
    assert resolve_model_path() == tmp_path / "mine.keras"


def test_the_old_name_models_default_still_works_and_says_the_new_one(capsys):
    from aidetect.predict import MODELS_DIR, resolve_model_path
    if not (MODELS_DIR / "resnet101").is_dir():
        pytest.skip("the shipped ResNet101 is not in this copy")
    assert resolve_model_path(MODELS_DIR / "default") == MODELS_DIR / "resnet101" / "model.keras"
    assert resolve_model_path(MODELS_DIR / "default" / "model.keras") == MODELS_DIR / "resnet101" / "model.keras"
    assert capsys.readouterr().err.count("models/default is now called models/resnet101") == 2
    assert resolve_model_path(MODELS_DIR / "compact") == MODELS_DIR / "compact" / "model.keras"
    assert "now called" not in capsys.readouterr().err
