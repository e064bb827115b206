"""How fast the web page answers (prints numbers; not a test).

    python benchmarks/bench_web_app.py [--model PATH] [--rounds N] [--batch N]

warm:  upload-to-verdict time per 32x32 image, explanation heatmap included, with the model
       already loaded (the page run in-process through Streamlit's AppTest). Target <= 0.3 s.
cold:  a fresh Python process that starts the page, loads the model and shows the first
       verdict. Target <= 15 s.
Uploads come from ../shared/data/cifake/sample.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PAGE = ROOT / "web_app.py"
SAMPLE = ROOT.parent / "shared" / "data" / "cifake" / "sample"
READY = "first verdict shown"
WARM_TARGET_S, COLD_TARGET_S = 0.3, 15.0


def sample_uploads(count: int):
    paths = sorted(SAMPLE.glob("*/*.jpg"))
    if not paths:
        sys.exit(f"no sample images under {SAMPLE}")
    return [(paths[i % len(paths)].name, paths[i % len(paths)].read_bytes(), "image/jpeg")
            for i in range(count)]


def open_page(model_path: str):
    from streamlit.testing.v1 import AppTest
    sys.argv = ["web_app.py", "--model", model_path]
    page = AppTest.from_file(str(PAGE), default_timeout=600).run()
    if page.error:
        sys.exit(page.error[0].value)
    return page


def upload(page, files) -> float:
    """Seconds from handing the page new files to every verdict and heatmap being laid out."""
    start = time.perf_counter()
    page.file_uploader[0].set_value(files).run()    # new file ids: analysed afresh, not from the session
    elapsed = time.perf_counter() - start
    shown = sum(m.value.startswith("Confidence:") for m in page.markdown)
    if page.exception or shown != len(files) or len(page.expander) != len(files):
        sys.exit(f"the page did not show {len(files)} verdicts with heatmaps: {page.exception or page.error}")
    return elapsed


def rerun(page) -> float:
    """Seconds for a run with nothing new to analyse: the page's fixed cost per interaction."""
    start = time.perf_counter()
    page.run()
    return time.perf_counter() - start


def cold_child(model_path: str) -> None:
    upload(open_page(model_path), sample_uploads(1))
    print(READY, flush=True)


def cold_start(model_path: str) -> float:
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, __file__, "--model", model_path, "--cold-child"],
                             stdout=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.strip() == READY:
            elapsed = time.perf_counter() - start
            break
    else:
        sys.exit(f"cold-start child failed with exit code {child.wait()}")
    child.wait()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a .keras file or run folder (default: $AIDETECT_MODEL, "
                                        "else models/resnet101/model.keras)")
    parser.add_argument("--rounds", type=int, default=10, help="timed uploads of each kind")
    parser.add_argument("--batch", type=int, default=10, help="images per upload in the batch timing")
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.model:
        from aidetect.predict import default_model_path
        args.model = str(default_model_path())
    if args.cold_child:
        return cold_child(args.model)

    print(f"model: {args.model}")
    cold = cold_start(args.model)
    print(f"cold start to first verdict: {cold:.2f} s  (target <= {COLD_TARGET_S:.0f} s)")

    page = open_page(args.model)
    upload(page, sample_uploads(2))                 # warm-up: traces the model and the explainer
    single = [upload(page, sample_uploads(1)) for _ in range(args.rounds)]
    fixed = [rerun(page) for _ in range(args.rounds)]
    batch = [upload(page, sample_uploads(args.batch)) / args.batch for _ in range(args.rounds)]
    print(f"warm upload-to-verdict, one image: median {statistics.median(single):.3f} s, "
          f"max {max(single):.3f} s  (target <= {WARM_TARGET_S} s)")
    print(f"  of which the page's fixed cost per run: median {statistics.median(fixed):.3f} s")
    print(f"warm, {args.batch} images per upload: median {statistics.median(batch):.3f} s per image")


if __name__ == "__main__":
    main()
