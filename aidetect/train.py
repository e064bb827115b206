"""Train, evaluate and save one run: models/<run>/{model.keras, settings.json, history.json, metrics.json}."""
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, Optional

import keras
import numpy as np

from . import data, evaluate
from .distribute import choose_strategy, configure_gpus, is_chief, shard_by_data, task_name
from .files import atomic_path, write_atomically
from .labels import CLASS_NAMES, POSITIVE_INDEX
from .model import MODEL_FILE, ModelError, build_model, load_model, save_slim
from .plots import PlotError, write_plots
from .record import RECORD_FILE, new_record
from .scope import fit_for_model as fit_scope
from .settings import Settings
from .sources import select_training

SEED_ACCURACY = 0.9221          # the seed project's reported test accuracy, for "epochs to reach"
GRAPHS_DIR = "graphs"
BEST_WEIGHTS_FILE = "best.weights.h5"     # and best.weights.h5.json, while a run can be resumed


# ---------------------------------------------------------------- optimiser and metrics
def learning_rate_schedule(settings: Settings, steps_per_epoch: int):
    """initial_lr -> final_lr over the run: the seed's polynomial decay, or a cosine."""
    steps = max(1, steps_per_epoch * settings.epochs)
    if settings.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(settings.initial_lr, steps,
                                                      alpha=settings.final_lr / settings.initial_lr)
    return keras.optimizers.schedules.PolynomialDecay(settings.initial_lr, decay_steps=steps,
                                                      end_learning_rate=settings.final_lr,
                                                      power=settings.lr_power)


def make_optimizer(settings: Settings, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    rate = learning_rate_schedule(settings, steps_per_epoch)
    if settings.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=settings.weight_decay)
    return keras.optimizers.Adam(rate)


class PositiveAUC(keras.metrics.AUC):
    """ROC AUC of the AI-generated column of a one-hot / softmax pair."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(y_true[:, POSITIVE_INDEX], y_pred[:, POSITIVE_INDEX], sample_weight)


class PositiveF1(keras.metrics.F1Score):
    """F1 of the AI-generated class at threshold 0.5."""

    def __init__(self, name="f1", **kwargs):
        super().__init__(average="micro", threshold=0.5, name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        column = slice(POSITIVE_INDEX, POSITIVE_INDEX + 1)
        super().update_state(y_true[:, column], y_pred[:, column], sample_weight)


def training_metrics():
    return ["accuracy",
            keras.metrics.Precision(class_id=POSITIVE_INDEX, name="precision"),
            keras.metrics.Recall(class_id=POSITIVE_INDEX, name="recall"),
            PositiveAUC(name="auc"),
            PositiveF1()]


# ---------------------------------------------------------------- callbacks
class StopTrainingOnValidationLoss(keras.callbacks.Callback):
    """The seed's rule: stop once val_loss > loss (here: for `patience` epochs in a row).

    Keeps the weights of the lowest val_loss (in memory and in `best_path`, with that loss beside
    it) and puts them back into the model when training ends, however it ends (keep_best=False:
    the last epoch's weights stay). With resume=True
    (BackupAndRestore is resuming a killed run) the best epoch saved before the kill still counts.
    """

    def __init__(self, patience: int = 1, best_path: Optional[Path] = None, resume: bool = False,
                 keep_best: bool = True):
        super().__init__()
        self.patience = patience
        self.keep_best = keep_best
        self.best_path = best_path
        self.best_val_loss = math.inf
        self.best_weights = None
        self.epochs_over = 0
        self.stopped_epoch = None
        if resume and best_path is not None and best_path.is_file():
            try:
                self.best_val_loss = json.loads(self._loss_path().read_text())["val_loss"]
            except (OSError, ValueError, KeyError):     # absent or cut short: no best epoch yet
                pass

    def _loss_path(self) -> Path:
        return self.best_path.with_name(self.best_path.name + ".json")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss, val_loss = logs.get("loss"), logs.get("val_loss")
        if loss is None or val_loss is None:
            return
        if val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            self.best_weights = self.model.get_weights()
            if self.best_path is not None:
                with atomic_path(self.best_path, ".tmp.weights.h5") as temporary:
                    self.model.save_weights(temporary)
                best = {"epoch": epoch + 1, "val_loss": float(val_loss)}
                write_atomically(self._loss_path(), json.dumps(best))
        self.epochs_over = self.epochs_over + 1 if val_loss > loss else 0
        if self.epochs_over >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.keep_best and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        elif self.keep_best and self.best_val_loss < math.inf:     # the best epoch came before a resume
            self.model.load_weights(self.best_path)
        if self.best_path is not None:          # the run is over (its backup is gone too)
            for path in (self.best_path, self._loss_path()):
                path.unlink(missing_ok=True)


class JsonHistory(keras.callbacks.Callback):
    """history.json rewritten after every epoch (resumes cleanly), with wall time and training
    img/s (the training steps alone: the epoch's validation pass is not counted)."""

    def __init__(self, path: Path, train_images: int):
        super().__init__()
        self.path, self.train_images = path, train_images
        self.history = json.loads(path.read_text()) if path.exists() else {}

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.validation_started = None
        # a resumed run repeats from `epoch`: drop what a killed run logged after its backup
        self.history = {k: v[:epoch] for k, v in self.history.items()}

    def on_test_begin(self, logs=None):          # fit's validation pass
        self.validation_started = self.validation_started or time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        ended = time.perf_counter()
        train_seconds = (self.validation_started or ended) - self.started
        row = {k: float(v) for k, v in (logs or {}).items()}
        row.update(epoch_seconds=ended - self.started, train_seconds=train_seconds,
                   train_images_per_second=self.train_images / train_seconds)
        for key, value in row.items():
            self.history.setdefault(key, [math.nan] * epoch).append(value)
        write_atomically(self.path, json.dumps(self.history, indent=1))


def make_callbacks(settings: Settings, run_dir: Path, train_images: int):
    return [
        # before the backup: a run killed between the two saves repeats the epoch, never loses its best
        StopTrainingOnValidationLoss(settings.stop_patience, run_dir / BEST_WEIGHTS_FILE,
                                     resume=(run_dir / "backup").exists(), keep_best=settings.keep == "best"),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.TerminateOnNaN(),
        # only stops: the callback above alone decides which weights the run keeps
        keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=settings.early_stopping_min_delta,
                                      patience=settings.early_stopping_patience),
        JsonHistory(run_dir / "history.json", train_images),
    ]


# ---------------------------------------------------------------- the run
def _new_run_dir(settings: Settings) -> Path:
    """models/<run>; a finished run of the same name is kept and this one gets a suffix."""
    run_dir = settings.run_dir()
    resuming = (run_dir / "backup").exists()
    if (run_dir / MODEL_FILE).exists() and not resuming:
        run_dir = run_dir.with_name(f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _worker_dir(settings: Settings) -> Path:
    """A non-chief worker's own backups and logs, e.g. models/.tiny-32px-worker-1: the same path
    after a restart, so that every worker resumes from the same epoch; removed when done."""
    return settings.run_dir().with_name(f".{settings.resolved_run_name()}-{task_name()}")


def initial_model(settings: Settings) -> keras.Model:
    """A fresh model, or one holding the weights of settings.init_from (to train a model further,
    e.g. over several sessions); a BackupAndRestore backup still overrides these when resuming."""
    model = build_model(settings)
    if settings.init_from:
        start = load_model(settings.init_from)
        if [w.shape for w in start.weights] != [w.shape for w in model.weights]:
            raise ModelError(f"{settings.init_from} does not have this run's architecture "
                             f"(backbone {settings.backbone}, stem {settings.stem}, {settings.image_size} px, "
                             f"{settings.dense_units} dense units)")
        model.set_weights(start.get_weights())
    return model


def balanced_weights(labels) -> Dict[int, float]:
    """Per class index, the loss weight that makes both classes count alike: n / (classes x n_c)."""
    counts = np.bincount(np.asarray(labels), minlength=len(CLASS_NAMES))
    return {index: float(len(labels) / (len(CLASS_NAMES) * count)) for index, count in enumerate(counts) if count}


def epochs_to_reach(history: Dict, key: str, target: float) -> Optional[int]:
    for epoch, value in enumerate(history.get(key, []), start=1):
        if value >= target:
            return epoch
    return None


def train(settings: Settings, log=print) -> Path:
    """Run the whole job for one Settings; returns the run folder."""
    started = time.perf_counter()
    keras.utils.set_random_seed(settings.seed)
    strategy = choose_strategy(configure_gpus(settings.gpu_memory))
    chief = is_chief()

    train_paths, train_labels = select_training(
        settings.data_dir, *data.list_split(settings.data_dir, "train", settings.max_train_images, settings.seed),
        settings.train_styles, settings.train_source_fraction, settings.seed, settings.max_per_source)
    val_paths, val_labels = data.list_split(settings.data_dir, "validation", settings.max_eval_images, settings.seed)
    test_paths, _ = data.list_split(settings.data_dir, "test", settings.max_eval_images, settings.seed)
    counts = {"train": len(train_paths), "validation": len(val_paths), "test": len(test_paths)}
    log(f"images: {counts}; classes {list(CLASS_NAMES)}; replicas: {strategy.num_replicas_in_sync}")

    run_dir = _new_run_dir(settings) if chief else _worker_dir(settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(run_dir / "settings.json", settings.to_json())
    if chief:
        write_atomically(run_dir / RECORD_FILE, json.dumps(new_record(settings), indent=2))

    batch = settings.batch_size         # the global batch: Keras splits it across replicas
    dataset = lambda p, y, training: shard_by_data(data.make_dataset(  # noqa: E731
        p, y, settings.image_size, batch, training=training, augment=settings.augment,
        seed=settings.seed, robust_probability=settings.robust_probability, view=settings.view))
    train_ds = dataset(train_paths, train_labels, True)
    val_ds = dataset(val_paths, val_labels, False)
    steps_per_epoch = math.ceil(len(train_paths) / batch)

    with strategy.scope():
        model = initial_model(settings)
        model.compile(optimizer=make_optimizer(settings, steps_per_epoch),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing),
                      metrics=training_metrics())
    log(f"model: {model.count_params():,} parameters; run folder: {run_dir}")
    # a progress bar (verbose 1) only on a terminal: piped to a file it becomes one line per epoch
    verbose = 2 if settings.verbose == 1 and not sys.stdout.isatty() else settings.verbose
    model.fit(train_ds, validation_data=val_ds, epochs=settings.epochs, verbose=verbose,
              shuffle=False,        # make_dataset shuffles; Keras would only warn that it can't
              class_weight=balanced_weights(train_labels) if settings.balance_classes else None,
              callbacks=make_callbacks(settings, run_dir, len(train_paths)))
    if not chief:
        shutil.rmtree(run_dir)
        return run_dir
    save_slim(model, settings, run_dir / MODEL_FILE)
    calibration = evaluate.calibrate_saved_model(run_dir / MODEL_FILE, settings.data_dir, batch,
                                                 limit=settings.max_eval_images, seed=settings.seed)
    log(f"calibrated: temperature {calibration['temperature']:.3f}, validation ECE "
        f"{calibration['validation']['before']['ece']:.4f} -> {calibration['validation']['after']['ece']:.4f}")
    # the saved file, not the in-memory model: float16 weights can flip a borderline image
    metrics = evaluate.evaluate_saved_model(run_dir / MODEL_FILE, settings.data_dir, "test", batch,
                                   limit=settings.max_eval_images, seed=settings.seed)
    history = json.loads((run_dir / "history.json").read_text())
    metrics.update(
        parameters=model.count_params(),
        image_size=settings.image_size,
        data_counts=counts,
        epochs_run=len(history.get("loss", [])),
        wall_seconds=round(time.perf_counter() - started, 1),
        mean_train_images_per_second=float(np.nanmean(history.get("train_images_per_second", [np.nan]))),
        epochs_to_seed_accuracy_on_validation=epochs_to_reach(history, "val_accuracy", SEED_ACCURACY),
    )
    write_atomically(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    log(evaluate.format_summary(metrics))
    log(f"saved {run_dir / MODEL_FILE} ({(run_dir / MODEL_FILE).stat().st_size / 2**20:.1f} MiB)")
    try:                                    # what the model knows (scope.py); the run is complete without it
        scope = fit_scope(run_dir / MODEL_FILE, settings.data_dir, batch, settings.seed)
        log(f"scope: {scope['flagged']['test split']:.1%} of test images outside what the model knows, "
            f"{np.mean([v for k, v in scope['flagged'].items() if k != 'test split']):.1%} of synthetic "
            f"graphics; AUROC {scope['auroc_test_vs_synthetic']:.3f}" + ("" if scope["kept"] else " (not kept)"))
    except Exception as error:  # noqa: BLE001 - an optional extra must not cost a finished run its plots
        log(f"no scope: {type(error).__name__}: {error}")
    try:                                    # the same plots as plot_metrics.py, beside the model
        log(f"plots: {len(write_plots(run_dir, run_dir / GRAPHS_DIR))} PNG files in {run_dir / GRAPHS_DIR}")
    except PlotError as error:              # the model is saved; plots can be redrawn later
        log(f"no plots: {error}")
    return run_dir
