"""Explanation heatmaps and overlays (tiny model; the default model when it exists)."""
import numpy as np
import pytest
from PIL import Image

from aidetect import explain
from aidetect.labels import REAL_INDEX


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path):
    from aidetect.model import load_model
    return load_model(tiny_model_path)


def random_images(count, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def check_heatmap(heatmap, size):
    assert heatmap.shape == (size, size)
    assert np.isfinite(heatmap).all()
    assert heatmap.min() >= 0.0 and heatmap.max() <= 1.0


@pytest.mark.parametrize("method", explain.METHODS)
def test_every_method_gives_a_deterministic_input_sized_map(tiny_model, method):
    first, second = random_images(2)
    heatmap = explain.explain(tiny_model, first, method)
    check_heatmap(heatmap, 32)
    assert heatmap.max() > 0
    np.testing.assert_array_equal(heatmap, explain.explain(tiny_model, first, method))
    assert not np.allclose(heatmap, explain.explain(tiny_model, second, method))


@pytest.mark.parametrize("method", explain.METHODS)
def test_batches_match_single_images_and_take_a_class_per_image(tiny_model, method):
    batch = random_images(3)
    classes = np.array([0, 1, 0])
    maps = explain.explain_batch(tiny_model, batch, method, class_index=classes)
    assert maps.shape == (3, 32, 32)
    np.testing.assert_allclose(maps[0], explain.explain(tiny_model, batch[0], method, class_index=0),
                               atol=1e-5)


def test_smoothgrad_seed_changes_the_noise(tiny_model):
    image = random_images(1)[0]
    assert not np.array_equal(explain.explain(tiny_model, image, "smoothgrad", seed=1),
                              explain.explain(tiny_model, image, "smoothgrad", seed=2))


def test_gradcam_layer_is_an_option(tiny_model):
    image = random_images(1)[0]
    assert explain.default_gradcam_layer(tiny_model) == "tiny_conv2"           # 16x16
    check_heatmap(explain.explain(tiny_model, image, "gradcam", layer_name="tiny_conv1"), 32)
    check_heatmap(explain.explain(tiny_model, image, "gradcam", class_index=REAL_INDEX), 32)


def test_bad_method_or_shape_is_refused(tiny_model):
    with pytest.raises(ValueError, match="unknown explanation method"):
        explain.explain(tiny_model, random_images(1)[0], "lime")
    with pytest.raises(ValueError, match="expected images of shape"):
        explain.explain(tiny_model, random_images(1, size=64)[0])


def test_gradcam_default_layer_on_resnet101_is_spatial():
    from aidetect.model import build_model
    from aidetect.settings import Settings
    model = build_model(Settings())
    layer = model.get_layer(explain.default_gradcam_layer(model))
    assert layer.output.shape[1] > 1 and layer.output.shape[1] >= explain.GRADCAM_MIN_SIZE


def test_overlay_takes_the_display_size(tmp_path):
    rgb = np.full((50, 70, 3), 128, dtype=np.uint8)
    heatmap = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    blended = explain.overlay(rgb, heatmap, alpha=0.4)
    assert blended.shape == (50, 70, 3) and blended.dtype == np.uint8
    assert not np.array_equal(blended[0, 0], blended[-1, -1])       # the heat is visible
    np.testing.assert_array_equal(explain.overlay(rgb, heatmap, alpha=0.0), rgb)
    path = explain.save_overlay_png(rgb, heatmap, tmp_path / "sub" / "overlay.png")
    with Image.open(path) as image:     # 50 px is enlarged 5x to be readable, the legend below it
        assert image.format == "PNG" and image.size == (350, 250 + explain.LEGEND_HEIGHT)


@pytest.mark.parametrize("shape, saved", [((32, 32), (256, 256)), ((3024, 4032), (1024, 768)),
                                          ((300, 400), (400, 300)), ((40, 1000), (1024, 41))])
def test_saved_overlays_are_readable_and_small(tmp_path, shape, saved):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    path = explain.save_overlay_png(rgb, rng.random((32, 32), dtype=np.float32), tmp_path / "o.png")
    with Image.open(path) as image:
        assert image.size == (saved[0], saved[1] + explain.LEGEND_HEIGHT)
        legend = np.asarray(image)[-explain.LEGEND_HEIGHT:]
    assert len(np.unique(legend.reshape(-1, 3), axis=0)) > 20           # the colour scale is drawn
    assert path.stat().st_size < 4 * 2**20


def test_how_to_read_is_one_line():
    assert explain.HOW_TO_READ and "\n" not in explain.HOW_TO_READ
    assert explain.DEFAULT_METHOD in explain.METHODS


@pytest.mark.needs_cifake
def test_shipped_model_explains_at_its_native_size(shipped_model_path):
    from aidetect.model import load_model, model_image_size
    model = load_model(shipped_model_path)
    size = model_image_size(model)
    image = random_images(1, size=size)[0]
    check_heatmap(explain.explain(model, image), size)
    check_heatmap(explain.explain(model, image, "gradcam", class_index=REAL_INDEX), size)
