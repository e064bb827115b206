"""Training recipes side by side on the same budget: stem x precision x augmentation, and the
compact CNN. Every variant sees the same number of training images (two epochs of a seeded,
class-balanced subset of half that many; train img/s is the second epoch's, after tracing and
caching), is scored on the same validation/test subset and through
benchmarks/robustness.py, and ends up as one row of a table (printed, and written as JSON).

    python benchmarks/compare_recipes.py                       # every variant but cifar, 6,000 images each
    python benchmarks/compare_recipes.py --only pool-bf16-robust imagenet-f32-robust --images 20000
    python benchmarks/compare_recipes.py --add models/compact  # also score finished run folders

The CIFAR stem costs ~7.6x the ImageNet stem: on this project's 2-core CPU that is hours, so it runs
only when named (--only cifar-bf16-robust), e.g. on a GPU.
ResNet variants start from --init-from (default: the shipped model; the stem kernels keep their
shape when only the stride changes), the compact CNN from random weights: say so when quoting.
Run folders go to models/compare-<variant>/ and are replaced on every run.
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from aidetect.files import write_atomically

ROOT = Path(__file__).resolve().parent.parent
RESNET = ["--backbone", "resnet101", "--optimizer", "adamw", "--schedule", "cosine",
          "--initial-lr", "3e-4", "--final-lr", "3e-6", "--batch-size", "64"]
COMPACT = ["--backbone", "compact", "--dense-units", "0", "--dropout", "0.2", "--noise-stddev", "0",
           "--optimizer", "adamw", "--schedule", "cosine", "--initial-lr", "1e-3", "--final-lr", "1e-5",
           "--batch-size", "128"]
VARIANTS = {   # name -> (flags, starts from --init-from)
    "imagenet-f32-shiftflip": (RESNET + ["--stem", "imagenet", "--precision", "float32", "--augment", "shift-flip"], True),
    "imagenet-f32-robust": (RESNET + ["--stem", "imagenet", "--precision", "float32", "--augment", "robust"], True),
    "imagenet-bf16-robust": (RESNET + ["--stem", "imagenet", "--precision", "bfloat16", "--augment", "robust"], True),
    "pool-f32-robust": (RESNET + ["--stem", "pool-only", "--precision", "float32", "--augment", "robust"], True),
    "pool-bf16-robust": (RESNET + ["--stem", "pool-only", "--precision", "bfloat16", "--augment", "robust"], True),
    "cifar-bf16-robust": (RESNET + ["--stem", "cifar", "--precision", "bfloat16", "--augment", "robust"], True),
    "compact-bf16-robust": (COMPACT + ["--precision", "bfloat16", "--augment", "robust"], False),
}


GPU_ONLY = ("cifar-bf16-robust",)


def run(command) -> None:
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def score(run_dir: Path, data_dir: str, robust_images: int) -> dict:
    """One table row from a finished run folder: its records plus a robustness run."""
    settings = json.loads((run_dir / "settings.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    robustness_file = run_dir / "robustness.json"
    run([sys.executable, "benchmarks/robustness.py", "--model", str(run_dir / "model.keras"),
         "--data-dir", data_dir, "--images", str(robust_images), "--json", str(robustness_file)])
    robustness = json.loads(robustness_file.read_text())
    return {
        "run": run_dir.name, "backbone": settings["backbone"], "stem": settings.get("stem", "imagenet"),
        "precision": settings.get("precision", "float32"), "augment": settings["augment"],
        "init_from": settings["init_from"], "parameters": metrics.get("parameters"),
        "file_mib": (run_dir / "model.keras").stat().st_size / 2**20,
        "train_images": metrics["data_counts"]["train"], "epochs": len(history["loss"]),
        "train_images_per_second": history["train_images_per_second"][-1],
        "val_accuracy": history["val_accuracy"][-1], "test_images": metrics["data_counts"]["test"],
        "test_accuracy": metrics["accuracy"], "test_auc": metrics["auc"],
        "robust_mean": robustness["mean_accuracy"], "robust_worst": robustness["worst_accuracy"],
        "worst_change": robustness["worst_change"],
    }


def table(rows) -> str:
    lines = ["| run | backbone | stem | precision | augment | params | file MiB | train img/s | "
             "epochs x images | test acc | test AUC | robust mean | robust worst |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        params = f"{r['parameters'] / 1e6:.2f} M" if r["parameters"] else "?"
        lines.append(f"| {r['run']} | {r['backbone']} | {r['stem'] if r['backbone'] == 'resnet101' else '-'} | "
                     f"{r['precision']} | {r['augment']} | {params} | {r['file_mib']:.1f} | "
                     f"{r['train_images_per_second']:.0f} | {r['epochs']} x {r['train_images']:,} | "
                     f"{r['test_accuracy']:.4f} | {r['test_auc']:.4f} | {r['robust_mean']:.4f} | "
                     f"{r['robust_worst']:.4f} ({r['worst_change']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="run just these variants")
    parser.add_argument("--images", type=int, default=6000, help="training images seen per variant")
    parser.add_argument("--eval-images", type=int, default=2000, help="validation and test images")
    parser.add_argument("--robust-images", type=int, default=1000, help="test images for robustness.py")
    parser.add_argument("--init-from", default="models/resnet101", help="start of the ResNet variants")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--add", nargs="*", default=[], help="finished run folders to score as well")
    parser.add_argument("--output", default="models/compare-recipes.json")
    args = parser.parse_args()

    run_dirs = []
    for name in args.only or [name for name in VARIANTS if name not in GPU_ONLY]:
        flags, warm_start = VARIANTS[name]
        run_dir = ROOT / "models" / f"compare-{name}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run([sys.executable, "model_training.py", "train", "--run-name", run_dir.name, "--data-dir", args.data_dir,
             "--epochs", "2", "--max-train-images", str(args.images // 2), "--max-eval-images", str(args.eval_images),
             "--verbose", "2", *flags, *(["--init-from", args.init_from] if warm_start else [])])
        run_dirs.append(run_dir)
    rows = [score(Path(run_dir), args.data_dir, args.robust_images) for run_dir in run_dirs + args.add]
    write_atomically(args.output, json.dumps(rows, indent=2))
    print(table(rows))
    print(f"rows written to {args.output}")


if __name__ == "__main__":
    main()
