"""The "crops" view (models of full-size images) next to "resize": what the model sees of an
image, in training, in the Predictor and in classify.py's pipeline alike."""
import numpy as np
import pytest
from PIL import Image

from aidetect.settings import CROP_BASE, Settings


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_resize_has_one_view_and_crops_a_grid_at_crop_resolution():
    from aidetect.preprocess import model_views, resize_to_model, to_crop_base
    image = _photo(300, 400)
    resized = model_views(image, 32).numpy()
    assert resized.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(resized[0], resize_to_model(image, 32).numpy())
    base = to_crop_base(image).numpy()
    assert base.shape == (CROP_BASE, round(400 * CROP_BASE / 300), 3)
    crops = model_views(image, 64, "crops", 9).numpy()
    assert crops.shape == (9, 64, 64, 3)
    np.testing.assert_array_equal(crops[0], base[:64, :64])                   # top left
    np.testing.assert_array_equal(crops[8], base[-64:, -64:])                 # bottom right
    centre = model_views(image, 64, "crops", 1).numpy()[0]
    top, left = (base.shape[0] - 64) // 2, round((base.shape[1] - 64) / 2)
    np.testing.assert_array_equal(centre, base[top:top + 64, left:left + 64])
    at_base = _photo(CROP_BASE, CROP_BASE)                                   # already at crop size: untouched
    np.testing.assert_array_equal(to_crop_base(at_base).numpy(), at_base)


def test_settings_refuse_crops_larger_than_the_base_and_odd_residual_sizes():
    with pytest.raises(ValueError, match="at most 256"):
        Settings(view="crops", image_size=300)
    with pytest.raises(ValueError, match="even --image-size"):
        Settings(residual_input=True, image_size=33)
    with pytest.raises(ValueError, match="--keep must be one of best, last"):
        Settings(keep="first")


def test_residual_input_removes_what_a_2x_down_up_sampling_keeps():
    import keras
    from aidetect.model import build_model
    model = build_model(Settings(backbone="tiny", dense_units=0, image_size=8, residual_input=True))
    residual = keras.Model(model.input, model.get_layer("residual").output)
    image = _photo(8, 8)[np.newaxis].astype(np.float32)
    scaled = image / 127.5 - 1
    expected = scaled - np.repeat(np.repeat(scaled[:, ::2, ::2], 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(residual(image).numpy(), expected, atol=1e-5)
    flat = np.full((1, 8, 8, 3), 90, np.float32)
    assert np.abs(residual(flat).numpy()).max() < 1e-6                          # no content gets through


@pytest.fixture(scope="module")
def crop_model_path(tmp_path_factory):
    """A tiny untrained "crops" model saved with its settings.json, as training leaves it."""
    from aidetect.model import build_model, save_slim
    settings = Settings(backbone="tiny", dense_units=8, image_size=32, view="crops", crops=4,
                        float16_weights=False)
    run_dir = tmp_path_factory.mktemp("crop-run")
    (run_dir / "settings.json").write_text(settings.to_json())
    return save_slim(build_model(settings), settings, run_dir / "model.keras")


def test_a_crops_model_answers_with_the_mean_over_its_crops_everywhere(crop_model_path, tmp_path):
    from aidetect.batch import classify_files
    from aidetect.predict import Predictor
    predictor = Predictor.load(crop_model_path, mirror=False)
    assert (predictor.view, predictor.crops) == ("crops", 4)
    paths = []
    for seed, size in enumerate([(300, 400), (256, 256), (1000, 600)]):
        path = tmp_path / f"{seed}.png"
        Image.fromarray(_photo(*size, seed)).save(path)
        paths.append(str(path))
    rgb = [np.asarray(Image.open(p)) for p in paths]
    per_view = [predictor.prob_ai_batch(predictor.views(image)) for image in rgb]
    assert all(len(p) == 4 for p in per_view) and max(np.ptp(p) for p in per_view) > 1e-5
    expected = np.array([p.mean() for p in per_view])
    np.testing.assert_allclose([r.prob_ai for r in predictor.classify(paths)], expected, atol=1e-6)
    np.testing.assert_allclose([r.prob_ai for r in classify_files(predictor, paths, progress=False)],
                               expected, atol=1e-6)
    assert predictor.preprocess(rgb[0]).shape == (32, 32, 3)                  # explanations: the centre crop


def test_training_cuts_one_random_crop_and_validation_the_centre(tmp_path):
    from aidetect.data import make_dataset
    from aidetect.preprocess import model_views
    paths = []
    for index in range(4):
        path = tmp_path / f"{index}.png"
        Image.fromarray(_photo(256, 320, index)).save(path)
        paths.append(str(path))
    train = make_dataset(paths, [0, 1, 0, 1], 64, 4, training=True, view="crops", seed=1)
    first, second = [next(iter(train))[0].numpy() for _ in range(2)]
    assert first.shape == (4, 64, 64, 3) and not np.array_equal(first, second)
    validation, _ = next(iter(make_dataset(paths, [0, 1, 0, 1], 64, 4, view="crops")))
    centres = np.stack([model_views(np.asarray(Image.open(p)), 64, "crops", 1).numpy()[0] for p in paths])
    np.testing.assert_array_equal(validation.numpy(), centres.astype(np.float32))
