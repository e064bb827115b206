import numpy as np
import tensorflow as tf

import model_training
from aidetect.model import load_model


def test_saved_model_gives_the_keras_models_probabilities(tiny_model_path, tmp_path):
    out = tmp_path / "serving" / "aidetect" / "1"
    assert model_training.main(["export", "--model", str(tiny_model_path.parent), "--out", str(out)]) == 0
    # a second export replaces the first (TF Serving reloads a version folder in place)
    assert model_training.main(["export", "--model", str(tiny_model_path), "--out", str(out)]) == 0

    pixels = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    model = load_model(tiny_model_path)
    expected = (model.predict(pixels, verbose=0) + model.predict(pixels[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(serve(image=tf.constant(pixels))["output_0"].numpy(), expected, atol=1e-5)

    single = tmp_path / "single" / "1"
    assert model_training.main(["export", "--model", str(tiny_model_path), "--out", str(single), "--no-mirror"]) == 0
    served = tf.saved_model.load(str(single)).signatures["serving_default"](image=tf.constant(pixels))
    np.testing.assert_allclose(served["output_0"].numpy(), model.predict(pixels, verbose=0), atol=1e-5)


def test_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert model_training.main(["export", "--model", str(tmp_path / "none.keras"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: no model at") and error.count("\n") == 1
    assert not (tmp_path / "out").exists()
