"""What the model knows: the out-of-scope score, its fit, and the verdict it gives in every tool."""
import csv
import io
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from aidetect.labels import OUT_OF_SCOPE_LABEL
from aidetect.scope import MIN_DETAIL, QUANTILE, Scope, detail, fit, lacks_detail, synthetic_inputs


def test_the_score_grows_away_from_the_training_features_and_the_threshold_keeps_most_inside(tmp_path):
    rng = np.random.default_rng(0)
    classes = np.repeat([0, 1], 2000)
    train = rng.normal(0, 1, (4000, 8)) + classes[:, None] * 3
    validation = rng.normal(0, 1, (2000, 8)) + np.repeat([0, 1], 1000)[:, None] * 3
    scope = fit(train, classes, validation)
    assert np.mean(scope.scores(validation) > scope.threshold) == pytest.approx(1 - QUANTILE, abs=0.005)
    far = rng.normal(0, 1, (200, 8)) + 12
    assert np.all(scope.scores(far) > scope.threshold)
    saved = Scope.load(scope.save(tmp_path / "scope.npz"))
    np.testing.assert_allclose(saved.scores(far), scope.scores(far))
    assert Scope.load(tmp_path / "none.npz") is None


def test_the_score_is_the_squared_mahalanobis_distance_and_leaves_blas_threads_as_they_were():
    from scipy.spatial.distance import mahalanobis
    from threadpoolctl import threadpool_info
    rng = np.random.default_rng(1)
    covariance = np.cov(rng.normal(0, 1, (500, 6)), rowvar=False)
    scope = Scope(rng.normal(0, 2, (2, 6)), np.linalg.inv(covariance), 10.0)
    features = rng.normal(0, 3, (50, 6)).astype(np.float32)
    expected = [min(mahalanobis(f, mean, scope.precision) ** 2 for mean in scope.means) for f in features]
    threads_before = [pool["num_threads"] for pool in threadpool_info()]
    np.testing.assert_allclose(scope.scores(features), expected, rtol=1e-10)
    assert scope.scores(features[:0]).shape == (0,)
    assert [pool["num_threads"] for pool in threadpool_info()] == threads_before    # limited only inside


def test_flat_colours_and_smooth_gradients_lack_detail_photos_and_noise_do_not(sample_dir):
    sets = synthetic_inputs(count=5)
    assert lacks_detail(np.stack(sets["flat colour"])).all()
    assert np.all(detail(np.stack([g[:, :32] for g in sets["gradient"]])) < MIN_DETAIL)
    assert not lacks_detail(np.stack(sets["noise"])).any()
    photos = np.stack([np.asarray(Image.open(p)) for p in sorted((sample_dir / "REAL").iterdir())])
    assert detail(photos).min() > 2 * MIN_DETAIL


def _awkward_inputs(folder):
    """The four inputs a user reported as 'Real': a red circle drawn on transparency, a flat blue
    picture, a 1024x768 gradient and random noise."""
    folder.mkdir(parents=True, exist_ok=True)
    circle = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(circle).ellipse([40, 40, 160, 160], fill=(220, 20, 20, 255))
    circle.save(folder / "circle.png")
    Image.new("RGB", (300, 200), (30, 60, 200)).save(folder / "flat.png")
    ramp = np.linspace(0, 255, 1024)[None, :, None].repeat(768, 0).repeat(3, 2).astype(np.uint8)
    Image.fromarray(ramp).save(folder / "gradient.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / "noise.png")
    return folder


@pytest.mark.needs_cifake
def test_the_shipped_model_says_drawings_flat_images_and_noise_are_outside_what_it_knows(tmp_path, sample_dir, capsys):
    import classify
    from aidetect.predict import DEFAULT_MODEL_PATH
    folder = _awkward_inputs(tmp_path / "odd")
    photos = sorted((sample_dir / "REAL").iterdir())[:3] + sorted((sample_dir / "FAKE").iterdir())[:3]
    assert classify.main([str(folder), *map(str, photos), "--model", str(DEFAULT_MODEL_PATH)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0])[:4] == ["path", "label", "prob_ai", "error"] and "scope_score" in rows[0]
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    for name in ("circle.png", "flat.png", "gradient.png", "noise.png"):
        assert by_name[name]["label"] == OUT_OF_SCOPE_LABEL and by_name[name]["prob_ai"], name
    assert all(by_name[p.name]["label"] != OUT_OF_SCOPE_LABEL for p in photos)


@pytest.mark.needs_cifake
def test_the_page_says_so_too_and_still_shows_the_probability(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    from aidetect.predict import DEFAULT_MODEL_PATH
    from tests.test_web_app import PAGE
    folder = _awkward_inputs(tmp_path / "odd")
    monkeypatch.setenv("AIDETECT_MODEL", str(DEFAULT_MODEL_PATH))
    monkeypatch.setattr(sys, "argv", ["web_app.py"])
    page = AppTest.from_file(str(PAGE), default_timeout=120).run()
    page.file_uploader[0].set_value([(p.name, p.read_bytes(), "image/png") for p in sorted(folder.iterdir())]).run()
    assert not page.exception
    headings = [m.value for m in page.markdown if m.value.startswith("#### ")]
    assert len(headings) == 4 and all(OUT_OF_SCOPE_LABEL in h for h in headings)
    assert len([m for m in page.markdown if m.value.startswith("Probability AI-generated: ")]) == 4
    assert sum("unlike the photos" in c.value for c in page.caption) == 4


def test_without_a_scope_only_images_without_detail_are_outside(tiny_model_path, tmp_path):
    from aidetect.predict import Predictor
    predictor = Predictor.load(tiny_model_path)
    assert predictor.scope is None
    folder = _awkward_inputs(tmp_path / "odd")
    results = {r.name.rsplit("/", 1)[-1]: r for r in predictor.classify([str(p) for p in sorted(folder.iterdir())])}
    assert results["flat.png"].label == results["gradient.png"].label == OUT_OF_SCOPE_LABEL
    assert results["noise.png"].label != OUT_OF_SCOPE_LABEL and results["noise.png"].scope_score is None


def test_a_broken_or_foreign_scope_file_is_ignored_not_a_crash(tiny_model_path, tmp_path):
    import shutil
    from aidetect.predict import Predictor
    assert Scope.load(tmp_path / "empty.npz") is None
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert Scope.load(tmp_path / "empty.npz") is None and Scope.load(tmp_path / "garbage.npz") is None
    run = tmp_path / "run"
    shutil.copytree(tiny_model_path.parent, run)
    Scope(np.zeros((2, 999)), np.eye(999), 1.0).save(run / "scope.npz")      # another model's width
    assert Predictor.load(run / "model.keras").scope is None


@pytest.mark.parametrize("mirror", [True, False])
def test_one_forward_pass_gives_the_same_probabilities_and_scores_as_two(tiny_model_path, mirror):
    """Predictor.answers_batch (probabilities and scope features from one two-output pass) equals
    prob_ai_batch + scope_batch (two passes) exactly, mirrored or not."""
    from aidetect.predict import Predictor, feature_width
    predictor = Predictor.load(tiny_model_path, mirror)
    width = feature_width(predictor.model)
    rng = np.random.default_rng(3)
    predictor.scope = Scope(rng.normal(size=(2, width)), np.eye(width), 0.5)
    batch = rng.integers(0, 256, (9, 1, 32, 32, 3)).astype(np.float32)
    prob_ai, scores, outside = predictor.answers_batch(batch)
    two_scores, two_outside = predictor.scope_batch(batch)
    np.testing.assert_allclose(prob_ai, predictor.prob_ai_batch(batch), atol=1e-6)
    np.testing.assert_allclose(scores, two_scores, rtol=1e-5)
    assert (outside == two_outside).all()


def test_many_images_at_once_are_answered_a_bounded_number_of_views_per_pass(tiny_model_path, monkeypatch):
    """A page upload or benchmark of many full-size images must not hold every view's activations
    at once: answers_batch splits its forward passes, with the same answers."""
    from aidetect import predict
    predictor = predict.Predictor.load(tiny_model_path)
    rng = np.random.default_rng(4)
    predictor.scope = Scope(rng.normal(size=(2, predict.feature_width(predictor.model))),
                            np.eye(predict.feature_width(predictor.model)), 0.5)
    batch = rng.integers(0, 256, (7, 3, 32, 32, 3)).astype(np.float32)
    whole = predictor.answers_batch(batch)
    sizes = []
    outputs = predictor.outputs
    monkeypatch.setattr(predictor, "outputs", lambda inputs: sizes.append(inputs.shape[0]) or outputs(inputs))
    monkeypatch.setattr(predict, "VIEWS_PER_PASS", 6)        # two images of three views per pass
    split = predictor.answers_batch(batch)
    assert sizes == [2, 2, 2, 1]
    for one, other in zip(whole, split):
        np.testing.assert_allclose(one, other, rtol=1e-5, atol=1e-6)
