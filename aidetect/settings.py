"""Every training knob in one frozen dataclass; it becomes the CLI flags and each run's settings.json."""
import argparse
import dataclasses
import json
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path


AUGMENT_MODES = ("none", "shift-flip", "robust", "full", "traces")   # online augmentation: aidetect/augment.py
BACKBONES = ("resnet101", "compact", "residual", "tiny")    # aidetect/model.py
STEMS = ("imagenet", "pool-only", "cifar")                  # ResNet101's first layers: model.py
PRECISIONS = ("float32", "bfloat16")                        # bfloat16 = Keras "mixed_bfloat16"
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("polynomial", "cosine")
KEEPS = ("best", "last")
VIEWS = ("resize", "crops", "native")                       # how an image becomes inputs: preprocess.py
STYLES = ("all", "photo")                                   # generated images a run trains on (manifest "style")
CROP_BASE = 256             # "crops" view: the shorter side is brought to this many pixels first


@dataclass(frozen=True)
class Settings:
    # where things live
    data_dir: str = "data"              # prepared data/{train,validation,test}/{REAL,FAKE}
    models_dir: str = "models"          # each run writes models/<run_name>/
    run_name: str = ""                  # "" = "<backbone>-<image_size>px"; same name resumes a killed run
    # data
    image_size: int = 32                # CIFAKE's native size; the seed used 224
    view: str = field(default="resize", metadata={"choices": VIEWS})
                                        # "resize": the whole image shrunk to image_size (CIFAKE);
                                        # "crops": image_size crops at native resolution (shorter side
                                        # brought to 256 px): one random crop per image and epoch in
                                        # training, `crops` crops averaged when the model is used;
                                        # "native": image_size crops of the image as it is (no
                                        # resize at all): random in training, `crops` spread over
                                        # the image (corners, centre, grid) averaged in logits
    crops: int = 9                      # "crops" view: crops averaged per image (a grid; 1 = centre)
    batch_size: int = 64
    max_train_images: int = 0           # 0 = all; a stratified subset for quick runs
    max_eval_images: int = 0            # 0 = all; limits validation and test the same way
    train_styles: str = field(default="all", metadata={"choices": STYLES})
                                        # a labelled set's generated training images: "all" styles or
                                        # only "photo" (manifest "style"; camera photos always train)
    balance_classes: bool = False       # weight the loss so both classes count alike (a photo-only
                                        # labelled set has far fewer generated than camera images)
    train_source_fraction: float = 1.0  # a seeded share of the training sources (whole sources),
                                        # for learning curves; validation and test are unchanged
    max_per_source: int = 0             # 0 = all; else at most this many images (seeded) of each
                                        # training source, so a few big sources (one processing chain
                                        # each) weigh less
    augment: str = field(default="none", metadata={"choices": AUGMENT_MODES})
                                        # online, training only: "none", "shift-flip" (whole-pixel
                                        # shifts + mirror), "robust" (shift-flip, and on some images
                                        # blur, JPEG, resizing, sharpening, brightness, contrast or
                                        # grey), "full" (augment_data.py's layers) or "traces"
                                        # (native crops: rescale 0.5-1.5x, 90-degree turns, flips,
                                        # JPEG q60-100, blur, colour, masks; both classes alike)
    robust_probability: float = 0.5     # share of images that "robust" degrades (one change each)
    seed: int = 42
    # model (the seed's head on ResNet101)
    backbone: str = field(default="resnet101", metadata={"choices": BACKBONES})
                                        # "compact": a 0.3 M-parameter CNN at full resolution;
                                        # "residual": a small residual CNN for pixel traces (NPR-sized,
                                        # use with --residual-input); "tiny": for tests and smoke runs
    stem: str = field(default="imagenet", metadata={"choices": STEMS})
                                        # ResNet101 only: "imagenet" (7x7 stride 2 + max pool:
                                        # 32 px -> 8x8 at conv2), "pool-only" (stride 1 + pool: 16x16),
                                        # "cifar" (stride 1, no pool: 32x32)
    residual_input: bool = False        # the model sees the image minus its 2x down-up-sampled copy
                                        # (NPR, Tan et al. 2024: upsampling traces, not content)
    noise_stddev: float = 0.1
    dense_units: int = 1024             # 0 = no hidden layer (softmax straight after pooling)
    dropout: float = 0.4
    l1: float = 0.0                     # the seed's 0.02/0.04 swamp the initial loss (docs/results.md)
    l2: float = 1e-4
    init_from: str = ""                 # "" = random; else a .keras model (or run folder) of the same
                                        # architecture to continue from, e.g. models/resnet101
    # optimisation
    optimizer: str = field(default="adam", metadata={"choices": OPTIMIZERS})
    weight_decay: float = 1e-4          # adamw only (decoupled, on every weight)
    schedule: str = field(default="polynomial", metadata={"choices": SCHEDULES})
                                        # learning rate from initial_lr to final_lr over all epochs
    label_smoothing: float = 0.0
    epochs: int = 6                     # the ResNet101's first stage (docs/results.md)
    initial_lr: float = 1e-3            # learns faster than the seed's 1e-4 (docs/results.md)
    final_lr: float = 1e-5
    lr_power: float = 2.0
    stop_patience: int = 2              # epochs with val_loss > loss before the seed's stop fires
    early_stopping_patience: int = 4
    keep: str = field(default="best", metadata={"choices": KEEPS})
                                        # the weights a run ends with: the epoch of lowest validation
                                        # loss, or the last (when validation is too small to choose by)
    early_stopping_min_delta: float = 0.001
    # hardware and output
    precision: str = field(default="float32", metadata={"choices": PRECISIONS})
                                        # bfloat16: mixed precision (float32 weights and softmax)
    gpu_memory: str = "growth"          # "growth" or a limit in MiB, e.g. "4096"; ignored on CPU
    float16_weights: bool = True        # ship the model with float16 weights (half the file size)
    verbose: int = 1                    # Keras fit verbosity: 1 progress bar (on a terminal; 2 when
                                        # the output goes to a file), 2 one line per epoch

    def __post_init__(self):
        """Refuse values that would fail later with a traceback, possibly hours into a run."""
        problems = []
        for name, low in (("image_size", 8), ("batch_size", 1), ("epochs", 1),
                          ("stop_patience", 1), ("early_stopping_patience", 1), ("crops", 1)):
            if getattr(self, name) < low:
                problems.append(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if self.max_per_source < 0:
            problems.append(f"--max-per-source must be 0 (all) or more, got {self.max_per_source}")
        for name in ("max_train_images", "max_eval_images"):
            value = getattr(self, name)
            if value < 0 or value == 1:         # a class-balanced subset needs one image per class
                problems.append(f"--{name.replace('_', '-')} must be 0 (all) or at least 2, got {value}")
        for name in ("initial_lr", "final_lr"):
            if not getattr(self, name) > 0:
                problems.append(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("noise_stddev", "l1", "l2", "early_stopping_min_delta", "weight_decay"):
            if getattr(self, name) < 0:
                problems.append(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            problems.append(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.train_source_fraction <= 1:
            problems.append(f"--train-source-fraction must be in (0, 1], got {self.train_source_fraction}")
        for name in ("robust_probability", "label_smoothing"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if self.dense_units < 0:
            problems.append(f"--dense-units must be 0 or more, got {self.dense_units}")
        if self.view == "crops" and self.image_size > CROP_BASE:
            problems.append(f"--view crops needs --image-size at most {CROP_BASE}, got {self.image_size}")
        if self.residual_input and self.image_size % 2:
            problems.append(f"--residual-input needs an even --image-size, got {self.image_size}")
        for name in ("augment", "backbone", "stem", "precision", "optimizer", "schedule", "view", "keep",
                     "train_styles"):
            choices = next(f for f in fields(self) if f.name == name).metadata["choices"]
            if getattr(self, name) not in choices:
                problems.append(f"--{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.gpu_memory != "growth" and not (self.gpu_memory.isdigit() and int(self.gpu_memory) > 0):
            problems.append(f"--gpu-memory must be 'growth' or a number of MiB, got {self.gpu_memory!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def resolved_run_name(self) -> str:
        return self.run_name or f"{self.backbone}-{self.image_size}px"

    def run_dir(self) -> Path:
        return Path(self.models_dir) / self.resolved_run_name()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json_file(cls, path) -> "Settings":
        """Settings of a saved run; keys this version does not know are dropped with a warning."""
        known = {f.name for f in fields(cls)}
        values = json.loads(Path(path).read_text())
        unknown = sorted(set(values) - known)
        if unknown:
            warnings.warn(f"{path}: ignoring settings this version does not know: {', '.join(unknown)}",
                          stacklevel=2)
        return cls(**{k: v for k, v in values.items() if k in known})


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One --flag per Settings field, with its default and type."""
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            parser.add_argument(flag, type=kind, default=f.default, choices=f.metadata.get("choices"),
                                metavar=f.name.upper(), help=f"(default: {f.default!r})")


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})
