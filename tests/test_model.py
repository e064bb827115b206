import zipfile

import h5py
import keras
import numpy as np
import pytest

from aidetect.model import ModelError, build_model, load_model, resnet101_backbone, save_slim
from aidetect.settings import Settings


@pytest.fixture(scope="module")
def resnet():
    return build_model(Settings())


def test_default_model_is_resnet101_with_the_seed_head_in_order(resnet):
    head = [type(layer).__name__ for layer in resnet.layers[-5:]]
    assert head == ["GaussianNoise", "GlobalAveragePooling2D", "Dense", "Dropout", "Dense"]
    dense, dropout, output = resnet.layers[-3], resnet.layers[-2], resnet.layers[-1]
    assert dense.units == 1024 and dense.activation.__name__ == "relu"
    assert isinstance(dense.kernel_initializer, keras.initializers.GlorotUniform)
    assert isinstance(dense.kernel_regularizer, keras.regularizers.L1L2)
    assert dropout.rate == 0.4 and resnet.layers[-5].stddev == 0.1
    assert output.units == 2 and output.activation.__name__ == "softmax"
    assert resnet.layers[-6].name == "conv5_block3_out"            # ResNet101's last block
    assert 44.6e6 < resnet.count_params() < 44.9e6
    assert resnet.input_shape == (None, 32, 32, 3)


@pytest.mark.slow
def test_imagenet_stem_is_exactly_keras_applications_resnet101():
    inputs = keras.Input((32, 32, 3))
    application = keras.applications.ResNet101(weights=None, include_top=False, input_tensor=inputs)
    ours = keras.Model(inputs, resnet101_backbone(inputs, "imagenet"))
    assert ours.count_params() == application.count_params() == 42_658_176
    assert [layer.name for layer in ours.layers] == [layer.name for layer in application.layers]
    assert [w.shape for w in ours.weights] == [w.shape for w in application.weights]
    ours.set_weights(application.get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), application.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("stem, sizes", [("imagenet", [8, 4, 2, 1]), ("pool-only", [16, 8, 4, 2]),
                                         ("cifar", [32, 16, 8, 4])])
def test_each_stem_gives_the_documented_sizes_and_the_same_weight_shapes(resnet, stem, sizes):
    model = build_model(Settings(stem=stem))
    assert [model.get_layer(f"conv{k}_block1_out").output.shape[1] for k in (2, 3, 4, 5)] == sizes
    assert [w.shape for w in model.weights] == [w.shape for w in resnet.weights]   # weights move across


def test_compact_backbone_keeps_full_resolution_in_its_first_block():
    model = build_model(Settings(backbone="compact", dense_units=0, dropout=0.2))
    assert model.count_params() == 288_610
    assert model.get_layer("block1_conv2").output.shape[1:3] == (32, 32)
    assert "dense" not in [layer.name for layer in model.layers]


def test_bfloat16_precision_computes_in_bfloat16_with_a_float32_softmax(tiny_settings):
    import dataclasses
    model = build_model(dataclasses.replace(tiny_settings, precision="bfloat16"))
    assert model.get_layer("tiny_conv1").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.weights)                  # mixed: float32 weights
    assert model.get_layer("prediction").compute_dtype == "float32"
    assert model(np.zeros((1, 32, 32, 3), "float32")).dtype == "float32"


def test_scaling_is_inside_the_model(resnet):
    assert type(resnet.layers[1]).__name__ == "Rescaling"


def test_seed_regularizer_swamps_the_loss_at_initialisation(resnet):
    """Why l1/l2 defaults differ from the seed's 0.02/0.04 (docs/results.md)."""
    kernel = resnet.get_layer("dense").kernel
    seed_penalty = float(keras.regularizers.L1L2(l1=0.02, l2=0.04)(kernel))
    ours = sum(float(loss) for loss in resnet.losses)
    assert seed_penalty > 500 * np.log(2)        # vs ~0.69 of cross-entropy at chance
    assert ours < 0.5


def test_slim_save_has_no_optimizer_state_and_reloads(tmp_path, tiny_settings):
    model = build_model(tiny_settings)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model.fit(x, np.eye(2)[[0, 1] * 4], epochs=1, verbose=0)
    path = save_slim(model, tiny_settings, tmp_path / "model.keras")
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as weights:
        with h5py.File(weights) as h5:
            assert "optimizer" not in h5
    reloaded = keras.models.load_model(path)              # plain Keras, no custom objects
    assert getattr(reloaded, "optimizer", None) is None
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_float16_file_is_half_the_size_and_predicts_the_same(tmp_path):
    settings = Settings(backbone="tiny", dense_units=4096)
    model = build_model(settings)
    path16 = save_slim(model, settings, tmp_path / "16.keras")
    path32 = save_slim(model, Settings(backbone="tiny", dense_units=4096, float16_weights=False), tmp_path / "32.keras")
    assert path16.stat().st_size < 0.7 * path32.stat().st_size   # ResNet101: 87 vs 172 MiB
    loaded = load_model(path16)
    assert all(w.dtype == "float32" for w in loaded.weights)    # computed in float32 on CPUs
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=2e-3)


def test_load_model_refuses_missing_broken_foreign_and_unsafe_files(tmp_path, tiny_model_path):
    with pytest.raises(ModelError, match="no model at .*model_training.py train"):
        load_model(tmp_path / "nothing.keras")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(tiny_model_path.read_bytes()[:2000])
    with pytest.raises(ModelError, match="cannot load model .*truncated.keras"):
        load_model(truncated)
    inputs = keras.Input((32, 32, 3))
    foreign = tmp_path / "foreign.keras"
    keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs))).save(foreign)
    with pytest.raises(ModelError, match="not an AI-vs-real classifier"):
        load_model(foreign)
    unsafe = tmp_path / "unsafe.keras"
    lambda_output = keras.layers.Lambda(lambda t: t[:, 0, 0, :2])(inputs)
    keras.Model(inputs, lambda_output).save(unsafe)
    with pytest.raises(ModelError, match="cannot load model .*unsafe.keras"):
        load_model(unsafe)
