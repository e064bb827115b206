"""Temperature scaling: the fit, the numbers it reports, and the Predictor applying it."""
import json

import numpy as np
import pytest

from aidetect.calibrate import apply_temperature, calibration_report, fit_temperature, logit, read_temperature


def overconfident(temperature: float, count: int = 20000, seed: int = 0):
    """Labels drawn from true probabilities, and a model that reports them sharpened by `temperature`."""
    rng = np.random.default_rng(seed)
    truth = 1 / (1 + np.exp(-rng.normal(0, 2, count)))
    is_fake = (rng.random(count) < truth).astype(float)
    return is_fake, 1 / (1 + np.exp(-logit(truth) * temperature))


def test_the_fit_recovers_how_overconfident_a_model_is():
    is_fake, prob = overconfident(3.0)
    assert fit_temperature(is_fake, prob) == pytest.approx(3.0, rel=0.05)
    report = calibration_report(is_fake[:10000], prob[:10000], is_fake[10000:], prob[10000:])
    for split in ("validation", "test"):
        assert report[split]["after"]["ece"] < report[split]["before"]["ece"] / 3
        assert report[split]["log_loss_after"] < report[split]["log_loss_before"]
    assert sum(b["images"] for b in report["test"]["before"]["bins"]) == 10000


def test_temperature_keeps_the_ranking_and_the_verdict_at_one_half():
    prob = np.array([0.01, 0.3, 0.5, 0.7, 0.999])
    softened = apply_temperature(prob, 2.0)
    assert np.all(np.diff(softened) > 0) and softened[2] == pytest.approx(0.5)
    assert np.all(np.abs(softened - 0.5) < np.abs(prob - 0.5) + 1e-12)


def test_the_predictor_applies_the_models_calibration(tiny_model_path, tmp_path):
    from aidetect.predict import Predictor
    pictures = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    raw = Predictor.load(tiny_model_path).prob_ai_batch(pictures)
    calibration = tiny_model_path.parent / "calibration.json"
    calibration.write_text(json.dumps({"temperature": 2.0}))
    try:
        assert read_temperature(tiny_model_path) == 2.0
        calibrated = Predictor.load(tiny_model_path)
        np.testing.assert_allclose(calibrated.prob_ai_batch(pictures), apply_temperature(raw, 2.0), atol=1e-6)
        assert Predictor.load(tiny_model_path, calibrated=False).temperature is None
    finally:
        calibration.unlink()
    (tmp_path / "calibration.json").write_text("{broken")
    assert read_temperature(tmp_path / "model.keras") is None
