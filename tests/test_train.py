import dataclasses
import json
import shutil
import warnings

import keras
import numpy as np
import pytest

import model_training
from aidetect import data
from aidetect.model import ModelError, load_model
from aidetect.settings import Settings
from aidetect.train import (StopTrainingOnValidationLoss, initial_model, learning_rate_schedule,
                            make_optimizer, train)


def test_learning_rate_decays_polynomially_over_all_steps():
    schedule = learning_rate_schedule(Settings(epochs=10, initial_lr=1e-4, final_lr=1e-5), steps_per_epoch=100)
    assert float(schedule(0)) == pytest.approx(1e-4)
    assert float(schedule(500)) == pytest.approx((1e-4 - 1e-5) * 0.5 ** 2 + 1e-5)
    assert float(schedule(1000)) == pytest.approx(1e-5)
    assert float(schedule(5000)) == pytest.approx(1e-5)


def test_cosine_schedule_and_adamw_are_options():
    settings = Settings(epochs=10, initial_lr=1e-3, final_lr=1e-5, schedule="cosine", optimizer="adamw",
                        weight_decay=5e-4)
    schedule = learning_rate_schedule(settings, steps_per_epoch=100)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(500)) == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-4)     # half-way down
    assert float(schedule(1000)) == pytest.approx(1e-5, rel=1e-4)
    optimizer = make_optimizer(settings, 100)
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.weight_decay == pytest.approx(5e-4)
    assert type(make_optimizer(Settings(), 100)) is keras.optimizers.Adam          # the seed's optimiser


class _Scripted(keras.Model):
    """Stands in for a model: its 'weights' are the epoch number they were taken at."""

    def __init__(self):
        super().__init__()
        self.epoch_weights = -1
        self.stop_training = False

    def get_weights(self):
        return [self.epoch_weights]

    def set_weights(self, weights):
        self.epoch_weights = weights[0]


def _play(callback, logs):
    model = _Scripted()
    callback.set_model(model)
    for epoch, (loss, val_loss) in enumerate(logs):
        model.epoch_weights = epoch
        callback.on_epoch_end(epoch, {"loss": loss, "val_loss": val_loss})
        if model.stop_training:
            break
    callback.on_train_end()
    return model


def test_stop_callback_waits_for_patience_then_restores_best():
    logs = [(1.0, 0.9), (0.8, 0.7), (0.6, 0.75), (0.5, 0.8), (0.4, 0.9), (0.3, 1.0)]
    callback = StopTrainingOnValidationLoss(patience=2)
    model = _play(callback, logs)
    assert callback.stopped_epoch == 3                 # val > train at epochs 2 and 3
    assert model.epoch_weights == 1                    # lowest val_loss was at epoch 1


def test_stop_callback_can_leave_the_last_epochs_weights():
    logs = [(1.0, 0.5), (0.9, 1.2), (0.8, 1.1)]
    model = _play(StopTrainingOnValidationLoss(patience=5, keep_best=False), logs)
    assert model.epoch_weights == 2                    # not epoch 0, the lowest val_loss


def test_stop_callback_resets_when_validation_recovers():
    logs = [(1.0, 1.1), (0.9, 0.8), (0.8, 0.9), (0.7, 0.6)]
    callback = StopTrainingOnValidationLoss(patience=2)
    model = _play(callback, logs)
    assert callback.stopped_epoch is None and model.epoch_weights == 3


def test_stop_callback_keeps_the_best_epoch_from_before_a_resume(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    best_path = tmp_path / "best.weights.h5"
    killed = StopTrainingOnValidationLoss(patience=5, best_path=best_path)
    killed.set_model(model)
    killed.on_epoch_end(0, {"loss": 1.0, "val_loss": 0.5})
    best = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1 for w in best])          # epoch 1 trains on, then the process dies

    assert StopTrainingOnValidationLoss(best_path=best_path).best_val_loss == float("inf")  # a new run
    resumed = StopTrainingOnValidationLoss(patience=5, best_path=best_path, resume=True)
    assert resumed.best_val_loss == 0.5
    resumed.set_model(model)
    resumed.on_epoch_end(1, {"loss": 0.9, "val_loss": 0.6})        # worse than before the kill
    resumed.on_train_end()
    for mine, expected in zip(model.get_weights(), best):
        np.testing.assert_array_equal(mine, expected)
    assert not best_path.exists()                    # the run is over: nothing left to resume


@pytest.fixture(scope="module")
def sample_data(sample_dir, tmp_path_factory):
    """data/ prepared from the 100 sample images (used as both train and test source)."""
    source = tmp_path_factory.mktemp("source")
    for split in ("train", "test"):
        shutil.copytree(sample_dir, source / split)
    data_dir = source.parent / "sample-data"
    data.prepare(source, data_dir, validation_fraction=0.2, seed=0, progress=False)
    return data_dir


@pytest.mark.slow
def test_tiny_training_run_writes_a_self_explaining_run_folder(sample_data, tmp_path):
    settings = Settings(data_dir=str(sample_data), models_dir=str(tmp_path), run_name="tiny",
                        backbone="tiny", dense_units=16, epochs=2, batch_size=16, verbose=0,
                        stop_patience=5, augment="shift-flip")
    run_dir = train(settings, log=lambda *_: None)
    assert run_dir == tmp_path / "tiny"
    assert Settings.from_json_file(run_dir / "settings.json") == settings
    history = json.loads((run_dir / "history.json").read_text())
    for key in ("loss", "val_loss", "accuracy", "val_auc", "val_f1", "epoch_seconds", "train_seconds",
                "train_images_per_second"):
        assert len(history[key]) == 2, key
    assert all(0 < t < e for t, e in zip(history["train_seconds"], history["epoch_seconds"]))  # no validation
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["images"] == 100 and metrics["positive_class"] == "FAKE"
    assert metrics["class_order"] == ["REAL", "FAKE"]
    assert sum(metrics["confusion_matrix"].values()) == 100
    assert metrics["data_counts"] == {"train": 80, "validation": 20, "test": 100}
    assert (run_dir / "graphs" / "overview.png").stat().st_size > 10_000   # plot_metrics.py's plots
    scope = json.loads((run_dir / "scope.json").read_text())          # fitted at the end of the run
    files = sorted(p.name for p in run_dir.iterdir() if p.name != "scope.npz")
    assert (run_dir / "scope.npz").exists() == scope["kept"]            # kept only if it separates
    assert files == [                                                   # nothing left for resuming a finished run
        "calibration.json", "graphs", "history.json", "metrics.json", "model.keras", "run.json", "scope.json",
        "settings.json"]
    assert set(scope["flagged"]) == {"test split", "flat colour", "gradient", "noise", "drawing"}
    assert scope["flagged"]["flat colour"] == 1.0                        # no detail: never a verdict
    calibration = json.loads((run_dir / "calibration.json").read_text())     # fitted on validation
    assert calibration["images"] == 20 and calibration["temperature"] > 0
    assert metrics["temperature"] == pytest.approx(calibration["temperature"])     # metrics are calibrated
    assert (run_dir / "graphs" / "calibration.png").is_file()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["settings"] == json.loads(settings.to_json()) and record["parent"] is None
    assert record["data"]["counts"] == json.loads((sample_data / "prepare_report.json").read_text())["counts"]
    assert set(record["packages"]) == {"python", "tensorflow", "keras", "numpy"}
    assert record["machine"]["cpus"] >= 1 and isinstance(record["machine"]["gpus"], list)
    assert len(record["git_commit"] or "0" * 40) == 40 and record["command"]
    model = load_model(run_dir / "model.keras")
    probabilities = model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # metrics.json describes the saved file as users run it: `evaluate` on it gives the same numbers
    from_disk = tmp_path / "reports" / "from-disk.json"        # its folder does not exist yet
    assert model_training.main(["evaluate", "--model", str(run_dir), "--data-dir", str(sample_data),
                                "--output", str(from_disk)]) == 0
    reloaded = json.loads(from_disk.read_text())
    assert reloaded["images"] == 100 and reloaded["model"] == str(run_dir / "model.keras")
    assert metrics["mirror_averaged"] is reloaded["mirror_averaged"] is True
    assert reloaded["confusion_matrix"] == metrics["confusion_matrix"]
    assert reloaded["auc"] == pytest.approx(metrics["auc"], abs=1e-6)
    assert reloaded["loss"] == pytest.approx(metrics["loss"], rel=1e-5)
    single_view = tmp_path / "single-view.json"
    assert model_training.main(["evaluate", "--model", str(run_dir), "--data-dir", str(sample_data),
                                "--no-mirror", "--output", str(single_view)]) == 0
    single = json.loads(single_view.read_text())
    assert single["mirror_averaged"] is False and single["loss"] != pytest.approx(metrics["loss"], rel=1e-5)
    # a second run of the same name keeps the first model and writes beside it
    again = train(settings, log=lambda *_: None)
    assert again != run_dir and (run_dir / "model.keras").exists()


@pytest.mark.slow
def test_compact_robust_bfloat16_run_saves_a_float16_file_that_loads_as_float32(sample_data, tmp_path):
    settings = Settings(data_dir=str(sample_data), models_dir=str(tmp_path), run_name="compact",
                        backbone="compact", dense_units=0, dropout=0.2, noise_stddev=0.0, epochs=1,
                        batch_size=16, verbose=0, augment="robust", precision="bfloat16",
                        optimizer="adamw", schedule="cosine", label_smoothing=0.1)
    run_dir = train(settings, log=lambda *_: None)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["parameters"] == 288_610 and metrics["images"] == 100
    model = load_model(run_dir)
    assert all(w.dtype == "float32" for w in model.weights)
    assert "dense" not in [layer.name for layer in model.layers]        # dense_units=0: no hidden layer
    assert (run_dir / "model.keras").stat().st_size < 1.5 * 2**20


def test_evaluate_without_a_model_or_data_is_a_one_line_error(tmp_path, tiny_model_path, capsys):
    assert model_training.main(["evaluate", "--model", str(tmp_path / "none.keras")]) == 2
    assert model_training.main(["evaluate", "--model", str(tiny_model_path), "--data-dir", str(tmp_path)]) == 2
    no_model, no_data = capsys.readouterr().err.splitlines()
    assert no_model.startswith("error: no model at")
    assert no_data.startswith("error: ") and "model_training.py prepare" in no_data



def test_every_subcommand_reports_what_the_user_can_fix_in_one_line(tmp_path, capsys):
    """The module errors share one base, so main() alone turns them into 'error: ...' and status 2."""
    from aidetect import augment, data, errors, images, model, plots, sources
    for error in (data.DataError, model.ModelError, sources.SourceError, images.ImageError,
                  augment.AugmentError, plots.PlotError):
        assert issubclass(error, errors.InputError)
    missing = str(tmp_path / "missing")
    for argv in (["prepare", "--source", missing, "--data-dir", str(tmp_path / "data")],
                 ["calibrate", "--model", missing], ["scope", "--model", missing],
                 ["export", "--model", missing, "--out", str(tmp_path / "out")],
                 ["control", "--data-dir", missing]):
        assert model_training.main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, lines)

def test_training_can_continue_from_a_saved_model(tiny_settings, tiny_model_path):
    continued = initial_model(dataclasses.replace(tiny_settings, init_from=str(tiny_model_path.parent)))
    for mine, saved in zip(continued.get_weights(), load_model(tiny_model_path).get_weights()):
        np.testing.assert_array_equal(mine, saved)
    with pytest.raises(ModelError, match="architecture"):
        initial_model(dataclasses.replace(tiny_settings, dense_units=16, init_from=str(tiny_model_path)))


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--max-train-images", "1"], "--max-train-images must be 0 (all) or at least 2, got 1"),
    (["--final-lr", "0"], "--final-lr must be positive, got 0.0"),
    (["--l2", "-1"], "--l2 must be 0 or more"),
    (["--gpu-memory", "lots"], "--gpu-memory must be 'growth' or a number of MiB"),
    (["--stem", "huge"], "invalid choice: 'huge'"),
    (["--precision", "float16"], "invalid choice: 'float16'"),
    (["--label-smoothing", "2"], "--label-smoothing must be in [0, 1], got 2.0"),
    (["--dense-units", "-1"], "--dense-units must be 0 or more"),
])
def test_training_cli_refuses_bad_settings_before_any_work(flags, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        model_training.main(["train", "--data-dir", str(tmp_path / "none"), *flags])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.slow
def test_a_continued_run_records_its_parent_and_unknown_settings_warn(sample_data, tmp_path):
    first = Settings(data_dir=str(sample_data), models_dir=str(tmp_path), run_name="first", backbone="tiny",
                     dense_units=8, epochs=1, batch_size=32, verbose=0, max_train_images=20, max_eval_images=20)
    first_dir = train(first, log=lambda *_: None)
    second = dataclasses.replace(first, run_name="second", init_from=str(first_dir))
    record = json.loads((train(second, log=lambda *_: None) / "run.json").read_text())
    assert record["parent"]["path"] == str(first_dir)
    assert record["parent"]["run_name"] == "first" and record["parent"]["parent"] is None
    old = tmp_path / "old-settings.json"
    old.write_text(json.dumps({"backbone": "tiny", "validation_fraction": 0.1}))
    with pytest.warns(UserWarning, match="ignoring settings this version does not know: validation_fraction"):
        assert Settings.from_json_file(old).backbone == "tiny"


def test_settings_of_every_shipped_run_are_still_valid():
    from pathlib import Path
    models = Path(__file__).resolve().parent.parent / "models"
    stages = {name: sorted((models / name).glob("**/settings.json")) for name in ("resnet101", "compact")}
    assert [len(stages["resnet101"]), len(stages["compact"])] == [3, 2]    # each shipped model's stages
    for path in stages["resnet101"] + stages["compact"]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")          # an unknown key would be a record we misread
            Settings.from_json_file(path)           # raises ValueError if a check refuses it
