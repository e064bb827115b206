"""The "native" view (models of full-size images): crops of the image as it is, the one routing
decision (small images go to the 32 px model), the "traces" training augmentation and the format
control."""
import io

import numpy as np
import pytest
from PIL import Image

from aidetect.settings import Settings

CROP = 48


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def native_model_path(tmp_path_factory):
    """A tiny untrained "native" model saved with its settings.json, as training leaves it."""
    from aidetect.model import build_model, save_slim
    settings = Settings(backbone="tiny", dense_units=8, image_size=CROP, view="native", crops=5,
                        residual_input=True, float16_weights=False)
    run_dir = tmp_path_factory.mktemp("native-run")
    (run_dir / "settings.json").write_text(settings.to_json())
    return save_slim(build_model(settings), settings, run_dir / "model.keras")


@pytest.mark.parametrize("height, width", [(256, 256), (1999, 257), (3000, 4000), (64, 64)])
def test_native_crops_are_the_images_own_pixels_at_its_corners_and_centre(height, width):
    from aidetect.preprocess import model_views
    rgb = _photo(height, width)
    views = model_views(rgb, CROP, "native", 5).numpy()
    assert views.shape == (5, CROP, CROP, 3) and views.dtype == np.uint8
    bottom, right = height - CROP, width - CROP
    for view, (top, left) in zip(views, [(0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2)]):
        np.testing.assert_array_equal(view, rgb[top:top + CROP, left:left + CROP])     # nothing resampled
    grid = model_views(rgb, CROP, "native", 9).numpy()
    np.testing.assert_array_equal(grid[0], views[0])
    np.testing.assert_array_equal(grid[8], views[3])


def test_an_image_smaller_than_a_crop_is_padded_not_stretched():
    from aidetect.preprocess import model_views
    rgb = _photo(31, 31)
    views = model_views(rgb, CROP, "native", 5).numpy()
    assert views.shape == (5, CROP, CROP, 3)
    np.testing.assert_array_equal(views[0][:31, :31], rgb)
    assert views[0][31:].max() == 0


@pytest.mark.needs_cifake
@pytest.mark.parametrize("height, width, answered_by_native", [
    (256, 256, True), (1999, 257, True), (3000, 4000, True), (64, 64, True), (47, 300, False), (31, 31, False)])
def test_one_function_routes_small_images_to_the_32_px_model(native_model_path, height, width, answered_by_native):
    from aidetect.predict import SMALL_IMAGE_MODEL_PATH, Predictor
    if not SMALL_IMAGE_MODEL_PATH.is_file():
        pytest.skip(f"the shipped 32 px model is not at {SMALL_IMAGE_MODEL_PATH}")
    predictor = Predictor.load(native_model_path)
    assert predictor.small is not None and predictor.small.view == "resize"
    answering, reason = predictor.route(_photo(height, width).shape)
    assert (answering is predictor) == answered_by_native
    assert (answering.name == "compact") != answered_by_native
    assert f"{width}x{height} px" in reason
    assert ("at the image's own resolution" in reason) == answered_by_native
    assert answering.inputs(_photo(height, width)).shape[1:] == (answering.image_size, answering.image_size, 3)


@pytest.mark.needs_cifake
def test_page_cli_and_pipeline_say_which_model_answered_and_agree(native_model_path, tmp_path):
    """Predictor.classify (page, Beam) and batch.classify_files (classify.py, evaluate) route
    alike, in the order given, and give the same probabilities."""
    from aidetect import batch
    from aidetect.predict import SMALL_IMAGE_MODEL_PATH, Predictor
    if not SMALL_IMAGE_MODEL_PATH.is_file():
        pytest.skip(f"the shipped 32 px model is not at {SMALL_IMAGE_MODEL_PATH}")
    predictor = Predictor.load(native_model_path)
    sizes = [(256, 256), (31, 31), (1999, 257), (32, 32), (100, 60)]
    paths = []
    for index, (height, width) in enumerate(sizes):
        paths.append(tmp_path / f"{index}.png")
        paths[-1].write_bytes(_png(_photo(height, width, index)))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths.insert(2, tmp_path / "broken.png")
    direct = predictor.classify([p.read_bytes() for p in paths], [str(p) for p in paths])
    streamed = list(batch.classify_files(predictor, [str(p) for p in paths], batch_size=3, progress=False))
    assert [r.name for r in streamed] == [str(p) for p in paths]
    assert [r.model for r in direct] == [r.model for r in streamed] == [
        native_model_path.parent.name, "compact", "", native_model_path.parent.name, "compact", native_model_path.parent.name]
    assert streamed[2].error and streamed[2].route == ""
    for a, b in zip(direct, streamed):
        assert a.route == b.route
        if a.prob_ai is not None:
            assert abs(a.prob_ai - b.prob_ai) < 1e-5


def test_a_native_model_averages_its_crops_in_logits(native_model_path):
    from aidetect.predict import Predictor, mean_in_logits
    predictor = Predictor(Predictor.load(native_model_path).model, native_model_path, mirror=False,
                          view="native", crops=5)
    rgb = _photo(200, 300)
    views = predictor.inputs(rgb).astype(np.float32)
    per_crop = predictor.prob_ai_batch(views)
    np.testing.assert_allclose(predictor.prob_ai_batch(views[np.newaxis]), mean_in_logits(per_crop[np.newaxis]),
                               atol=1e-6)
    np.testing.assert_allclose(mean_in_logits(np.array([[0.9, 0.1]])), [0.5], atol=1e-6)
    assert mean_in_logits(np.array([[0.99, 0.4]]))[0] > np.mean([0.99, 0.4])   # the sure crop counts more


def test_traces_augmentation_is_seeded_shaped_and_changes_both_ways():
    import tensorflow as tf
    from aidetect.augment import trace_view
    rgb = _photo(256, 256)
    first = [trace_view(rgb, CROP, tf.constant([seed, 1], tf.int64)).numpy() for seed in range(40)]
    again = [trace_view(rgb, CROP, tf.constant([seed, 1], tf.int64)).numpy() for seed in range(40)]
    assert all(view.shape == (CROP, CROP, 3) and view.dtype == np.uint8 for view in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))                # same seed, same pixels
    assert len({view.tobytes() for view in first}) == 40
    assert trace_view(_photo(20, 30), CROP, tf.constant([3, 1], tf.int64)).shape == (CROP, CROP, 3)


def _jpeg_history_set(root):
    """A prepared layout whose REAL images were JPEG q50 before the final q95 save, FAKE not."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("validation", 10), ("test", 12)):
        for class_name in ("REAL", "FAKE"):
            folder = root / split / class_name
            folder.mkdir(parents=True)
            for index in range(count):
                smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize(
                    (128, 128), Image.BICUBIC))
                pixels = np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels)
                if class_name == "REAL":        # an earlier, harder compression
                    buffer = io.BytesIO()
                    image.save(buffer, "JPEG", quality=50)
                    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
                image.save(folder / f"{index}.jpg", "JPEG", quality=95)
    return root


def test_the_format_control_sees_jpeg_history(tmp_path):
    from aidetect.control import fit_and_score, format_features
    features = format_features(_photo(70, 90))
    assert features.shape == (2 + 15 + 15 + 1 + 2,) and np.isfinite(features).all()
    data_dir = _jpeg_history_set(tmp_path / "prepared")
    assert fit_and_score(data_dir, "format")["auc"] > 0.95      # the same pictures, saved differently before
    assert fit_and_score(data_dir, "content")["auc"] < 0.8      # colour and layout cannot tell


def test_training_can_keep_photo_style_generated_images_and_a_share_of_sources(tmp_path):
    import json
    from aidetect.sources import SourceError, select_training
    from aidetect.train import balanced_weights
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(row) for row in [
        {"file": "REAL/a.jpg", "source_repo": "cam1"}, {"file": "REAL/b.jpg", "source_repo": "cam2"},
        {"file": "REAL/c.jpg", "source_repo": "cam3"}, {"file": "REAL/d.jpg", "source_repo": "cam4"},
        {"file": "FAKE/e.jpg", "source_repo": "gen1", "style": "photo"},
        {"file": "FAKE/f.jpg", "source_repo": "gen1", "style": "art"},
        {"file": "FAKE/g.jpg", "source_repo": "gen2", "style": "photo"}]))
    paths = [str(tmp_path / "train" / name) for name in
             ("REAL/a.jpg", "REAL/b.jpg", "REAL/c.jpg", "REAL/d.jpg", "FAKE/e.jpg", "FAKE/f.jpg", "FAKE/g.jpg")]
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    kept, kept_labels = select_training(tmp_path, paths, labels, "photo")
    assert [p.rsplit("/", 1)[-1] for p in kept] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "g.jpg"]
    half, half_labels = select_training(tmp_path, paths, labels, "all", 0.5, seed=1)
    assert sorted(half_labels.tolist()) == [0, 0, 1, 1] or sorted(half_labels.tolist()) == [0, 0, 1]
    assert select_training(tmp_path, paths, labels, "all", 0.5, seed=1)[0] == half     # seeded
    assert balanced_weights(kept_labels) == {0: 0.75, 1: 1.5}
    capped, capped_labels = select_training(tmp_path, paths, labels, "all", max_per_source=1)
    assert capped_labels.tolist() == [0, 0, 0, 0, 1, 1] and "g.jpg" in capped[-1]         # gen1 keeps one of two
    assert select_training(tmp_path, paths, labels, "all", max_per_source=1)[0] == capped   # seeded
    assert select_training(tmp_path, paths, labels, "photo", max_per_source=1)[0] == kept   # counted after styles
    with pytest.raises(SourceError, match="manifest"):
        select_training(tmp_path / "elsewhere", paths, labels, "photo")
    with pytest.raises(ValueError, match="train-source-fraction"):
        Settings(train_source_fraction=0)
    with pytest.raises(ValueError, match="max-per-source"):
        Settings(max_per_source=-1)
