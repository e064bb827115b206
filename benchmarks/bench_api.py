"""The HTTP API under concurrent clients, beside Predictor.classify in-process on the same images.

    python benchmarks/bench_api.py [--model models/compact] [--requests 50] [--clients 1 8 32] [--sizes 1 16]

Starts `python -m aidetect.serve` on 127.0.0.1 (tests/api_server.py), once with the batching
queue and once without (--no-batching), and for each number of clients and images per request
has every client send --requests requests at once (one keep-alive connection each): p50 / p95
latency, images per second, errors (a non-200 answer or a record with an error) and the mean
images per model call (from /metrics). The baseline is classify.py's pipeline (batch.classify_files)
in this process on the same images, measured before the servers start; Predictor.classify on
their bytes in batches of 64 (what the server does per model call) is printed beside it.
Images: CIFAKE's test tars in --data-dir, else its sample folder. Server RSS is read after each
server's last run. Targets: 32 clients x 16 images >= 70 % of classify.py's images per second
with batching on, zero errors, p95 of 1-image requests from 8 clients <= 0.5 s.
"""
import argparse
import http.client
import json
import math
import os
import re
import statistics
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api_server import api_server  # noqa: E402

BOUNDARY = "aidetect-bench"


def test_images(data_dir: Path, count: int):
    """(name, bytes) of `count` CIFAKE test images, REAL and FAKE alternating."""
    per_class = (count + 1) // 2
    tars = [data_dir / f"test-{name}.tar" for name in ("REAL", "FAKE")]
    found = []
    if all(tar.is_file() for tar in tars):
        for tar in tars:
            with tarfile.open(tar) as archive:
                members = [m for m in archive if m.isfile() and m.name.lower().endswith((".jpg", ".png"))][:per_class]
                found.append([(Path(m.name).name, archive.extractfile(m).read()) for m in members])
    else:
        found = [[(p.name, p.read_bytes()) for p in sorted((data_dir / "sample" / name).glob("*.jpg"))[:per_class]]
                 for name in ("REAL", "FAKE")]
    return [image for pair in zip(*found) for image in pair][:count]


def multipart(files) -> bytes:
    return b"".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                    f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n"
                    for name, data in files) + f"--{BOUNDARY}--\r\n".encode()


def best_seconds(work, repeats: int = 3) -> float:
    work()                                                      # warm-up: trace the model's functions
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def baseline_rates(model: str, images, folder: Path):
    """Images per second in this process (best of 3 passes): classify.py's pipeline
    (batch.classify_files on the images as files in `folder`) and Predictor.classify on their bytes
    in batches of 64 (what the server does per model call)."""
    from aidetect.quiet import start_tensorflow
    start_tensorflow()
    from aidetect import batch
    from aidetect.predict import Predictor

    predictor = Predictor.load(model)
    paths = []
    for position, (name, data) in enumerate(images):
        paths.append(str(folder / f"{position:05d}-{name}"))
        Path(paths[-1]).write_bytes(data)
    data, names = [d for _, d in images], [n for n, _ in images]
    pipeline = best_seconds(lambda: list(batch.classify_files(predictor, paths, 64, progress=False)))
    in_memory = best_seconds(lambda: [predictor.classify(data[i:i + 64], names[i:i + 64]) for i in range(0, len(data), 64)])
    return len(images) / pipeline, len(images) / in_memory


def client(host, port, bodies, size, latencies, errors):
    connection = http.client.HTTPConnection(host, port, timeout=120)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    for body in bodies:
        started = time.perf_counter()
        try:
            connection.request("POST", "/v1/analyze", body, headers)
            response = connection.getresponse()
            records = json.loads(response.read()).get("results", [])
            if response.status != 200 or len(records) != size or any(record["error"] for record in records):
                errors.append(response.status)
        except OSError as error:
            errors.append(str(error))
            connection = http.client.HTTPConnection(host, port, timeout=120)
        latencies.append(time.perf_counter() - started)
    connection.close()


def batch_totals(url: str):
    """(sum, count) of the server's aidetect_batch_images histogram."""
    with urllib.request.urlopen(f"{url}/metrics") as response:
        text = response.read().decode()
    return tuple(float(re.search(rf"^aidetect_batch_images_{part} (\S+)$", text, re.M).group(1))
                 for part in ("sum", "count"))


def run(url, images, clients, size, requests):
    host, port = url.removeprefix("http://").split(":")
    # each request its own images (rotating through the set), built before the clock starts
    bodies = [[multipart([images[(c * requests * size + r * size + i) % len(images)] for i in range(size)])
               for r in range(requests)] for c in range(clients)]
    latencies, errors = [], []
    batches_before = batch_totals(url)
    threads = [threading.Thread(target=client, args=(host, int(port), bodies[c], size, latencies, errors))
               for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    images_sum, calls = (after - before for after, before in zip(batch_totals(url), batches_before))
    latencies.sort()
    return {"p50": statistics.median(latencies), "p95": latencies[math.ceil(0.95 * len(latencies)) - 1],
            "rate": clients * requests * size / seconds, "errors": len(errors),
            "per_call": images_sum / calls if calls else 0.0, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "compact"))
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16], help="images per request")
    parser.add_argument("--images", type=int, default=2048, help="distinct test images to rotate through")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "cifake"))
    args = parser.parse_args()

    images = test_images(Path(args.data_dir), args.images)
    with tempfile.TemporaryDirectory() as folder:
        baseline, in_memory = baseline_rates(args.model, images, Path(folder))
    print(f"model {args.model}, {len(images)} distinct images, {os.cpu_count()} CPUs; in-process: "
          f"classify.py's pipeline {baseline:.0f} images/s, Predictor.classify in batches of 64 {in_memory:.0f}")
    print(f"{'batching':8s} {'clients':>7s} {'img/req':>7s} {'requests':>8s} {'p50 s':>7s} {'p95 s':>7s} "
          f"{'img/s':>7s} {'vs classify':>11s} {'errors':>6s} {'img/call':>8s}")
    with tempfile.TemporaryDirectory() as logs:
        for batching in ("--batching", "--no-batching"):
            with api_server(Path(logs) / f"{batching}.log", "--model", args.model, batching) as server:
                for size in args.sizes:
                    for clients in args.clients:
                        row = run(server.url, images, clients, size, args.requests)
                        print(f"{batching.removeprefix('--'):8s} {clients:7d} {size:7d} {clients * args.requests:8d} "
                              f"{row['p50']:7.3f} {row['p95']:7.3f} {row['rate']:7.0f} {row['rate'] / baseline:11.0%} "
                              f"{row['errors']:6d} {row['per_call']:8.1f}", flush=True)
                print(f"server RSS after the {batching} runs: {server.rss_bytes() / 2**20:.0f} MiB "
                      f"(peak {server.peak_rss_bytes() / 2**20:.0f} MiB)", flush=True)


if __name__ == "__main__":
    main()
