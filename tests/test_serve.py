"""The HTTP API (aidetect.serve): its pieces in-process, then a real server over real HTTP.

The server tests start `python -m aidetect.serve` as a user would (tests/api_server.py) with the
tiny test model and small limits, and check the contract against classify.py, every bad input,
API keys, readiness and concurrent requests.
"""
import asyncio
import concurrent.futures
import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

import classify
from aidetect.images import MAX_FILE_BYTES
from aidetect.serve import app as service_app
from aidetect.serve.batching import Batcher
from aidetect.serve.settings import (ServeSettings, from_environment, parse_args, read_api_keys,
                                     to_environment)
from aidetect.serve.uploads import Limits, RequestError, read_files
from tests import bad_inputs
from tests.api_server import api_server, readiness, wait_for

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "deploy" / "kubernetes.yaml"
MiB = 2**20
MAX_FILES, MAX_FILE, MAX_REQUEST, TIMEOUT_S = 8, 2 * MiB, 5 * MiB, 2
LIMIT_FLAGS = ("--max-files", str(MAX_FILES), "--max-file-bytes", str(MAX_FILE),
               "--max-request-bytes", str(MAX_REQUEST), "--request-timeout-s", str(TIMEOUT_S))


# --- in-process: settings, keys, uploads, batching, the manifest -----------------------------------

def test_settings_from_flags_over_environment_and_back():
    assert ServeSettings().max_file_bytes == MAX_FILE_BYTES           # the loader's own limit by default
    environ = {"AIDETECT_SERVE_MAX_FILES": "4", "AIDETECT_SERVE_BATCHING": "0", "AIDETECT_API_KEYS": "a,b"}
    settings = parse_args(["--port", "9001", "--max-files", "5"], environ)
    assert (settings.port, settings.max_files, settings.batching, settings.api_keys) == (9001, 5, False, "a,b")
    assert from_environment(to_environment(settings)) == settings
    with pytest.raises(ValueError, match="AIDETECT_SERVE_PORT"):
        from_environment({"AIDETECT_SERVE_PORT": "eighty"})
    with pytest.raises(ValueError, match="max_files must be at least 1"):
        ServeSettings(max_files=0)
    with pytest.raises(SystemExit):
        parse_args(["--request-timeout-s", "0"], {})


def test_api_keys_from_a_list_or_a_file(tmp_path):
    assert read_api_keys("") == [] and read_api_keys(" k1, k2 ,") == ["k1", "k2"]
    keys = tmp_path / "keys"
    keys.write_text("# platform A\nkey-a\n\nkey-b   # platform B\n")
    assert read_api_keys(str(keys)) == ["key-a", "key-b"]
    assert service_app.presented_key({"authorization": "Bearer key-a"}) == "key-a"
    assert service_app.presented_key({"x-api-key": "key-b"}) == "key-b"
    assert service_app.presented_key({"authorization": "Basic eDp5"}) == ""
    assert service_app.key_accepted("key-a", ["key-a", "key-b"]) and service_app.key_accepted("", [])
    assert not service_app.key_accepted("", ["key-a"]) and not service_app.key_accepted("key-c", ["key-a"])


def multipart(*files, field="files", boundary="XyZ"):
    """A multipart/form-data body of (file name, bytes) parts, and its headers."""
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
                    for name, data in files) + f"--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(len(body))}


def read(body, headers, limits=Limits(3, 100, 1000), chunk=7):
    async def stream():
        for start in range(0, len(body), chunk):
            yield body[start:start + chunk]
    return asyncio.run(read_files(headers, stream(), limits))


def test_uploads_are_read_in_order_and_limits_refuse_them():
    body, headers = multipart(("a.jpg", b"A" * 50), ("b.png", b""), ("c.gif", b"\r\n--Xy"))
    assert read(body, headers) == [("a.jpg", b"A" * 50), ("b.png", b""), ("c.gif", b"\r\n--Xy")]
    cases = [(multipart(*[("x", b"1")] * 4), "max_files"),
             (multipart(("big.jpg", b"B" * 101)), "max_file_bytes"),
             (multipart(*[("x", b"C" * 90)] * 3, boundary="Q" * 400), "max_request_bytes")]
    for (body, headers), code in cases:
        with pytest.raises(RequestError) as refused:
            read(body, headers)
        assert (refused.value.status, refused.value.code) == (413, code)
    body, headers = multipart(("a", b"1"))
    chunked = {"content-type": headers["content-type"]}         # no length declared: counted as it comes
    with pytest.raises(RequestError, match="larger than 20 bytes"):
        read(body, chunked, Limits(3, 100, 20))
    for body, headers, code in [(*multipart(("a", b"1"), field="other"), "no_files"),
                                (b"{}", {"content-type": "application/json"}, "not_multipart"),
                                (b"junk", {"content-type": "multipart/form-data; boundary=Z"}, "bad_multipart"),
                                (body[:-10], headers, "bad_multipart")]:
        with pytest.raises(RequestError) as refused:
            read(body, headers)
        assert refused.value.code == code


def test_batcher_gathers_concurrent_requests_and_splits_their_answers():
    calls = []

    def model_call(sources, names, decision):
        calls.append((list(names), decision))
        time.sleep(0.05)                        # while the model works, the next requests queue up
        return [f"{name}@{decision}" for name in names]

    async def requests(enabled):
        calls.clear()
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            batcher = Batcher(model_call, executor, max_images=64, wait_s=0.5, enabled=enabled, max_queued_images=100)
            worker = asyncio.create_task(batcher.run())
            jobs = [batcher.classify([b""] * (i % 3 + 1), [f"r{i}-{j}" for j in range(i % 3 + 1)], i % 2)
                    for i in range(12)]
            answers = await asyncio.gather(*jobs)
            started = time.perf_counter()                   # alone, nothing else arriving: no wait
            assert await batcher.classify([b""], ["r0-alone"], 0) == ["r0-alone@0"]
            assert time.perf_counter() - started < 0.05 + 0.5 * batcher.wait_s
            with pytest.raises(RequestError, match="more than 100 images"):
                await batcher.classify([b""] * 101, ["x"] * 101, 0)
            worker.cancel()
        return answers

    for enabled in (True, False):
        answers = asyncio.run(requests(enabled))
        assert answers == [[f"r{i}-{j}@{i % 2}" for j in range(i % 3 + 1)] for i in range(12)]
        assert all(int(name[1:].split("-")[0]) % 2 == decision for names, decision in calls for name in names)
        assert len(calls) < 12 + 1 if enabled else len(calls) == 12 + 1


def test_kubernetes_manifest_probes_match_the_service():
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed")
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}
    container = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python", "-m", "aidetect.serve"]
    port = ServeSettings().port
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert (container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]) == (
        "/readyz", "/healthz")
    assert container["readinessProbe"]["httpGet"]["port"] == container["livenessProbe"]["httpGet"]["port"] == port
    service = documents["Service"]["spec"]
    assert service["selector"] == documents["Deployment"]["spec"]["selector"]["matchLabels"]
    assert [p["targetPort"] for p in service["ports"]] == [port]


# --- a real server --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tiny_model_path, tmp_path_factory):
    with api_server(tmp_path_factory.mktemp("serve") / "server.log", "--model", str(tiny_model_path),
                    *LIMIT_FLAGS) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def sample_files(sample_dir, count=3):
    return [path for name in ("FAKE", "REAL") for path in sorted((sample_dir / name).glob("*.jpg"))[:count]]


def analyze(client, files, **params):
    return client.post("/v1/analyze", files=[("files", (name, data)) for name, data in files], params=params)


def answers_next_request(client, sample_dir):
    path = sample_files(sample_dir, 1)[0]
    response = analyze(client, [(path.name, path.read_bytes())])
    assert response.status_code == 200 and response.json()["results"][0]["label"]


@pytest.mark.slow
def test_records_are_classify_pys_records(server, client, sample_dir, tiny_model_path, tmp_path):
    paths = sample_files(sample_dir) + [sample_dir.parent / "README.md"]        # and a file that is no image
    output = tmp_path / "classify.json"
    # classify.py sorts its files; the API answers in upload order
    assert classify.main([str(p) for p in paths] + ["--model", str(tiny_model_path), "--output", str(output)]) == 0
    expected = {Path(record["path"]).name: record for record in json.loads(output.read_text())}
    uploads = list(reversed(paths))
    response = analyze(client, [(p.name, p.read_bytes()) for p in uploads], threshold=0.5, uncertain_band=0.1)
    assert response.status_code == 200 and re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])
    records = response.json()["results"]
    assert [record["path"] for record in records] == [p.name for p in uploads]
    for record in records:
        wanted = dict(expected[record["path"]], path=record["path"])
        assert list(record) == list(wanted)
        if wanted["prob_ai"] is not None:       # batched differently: the last digit may differ
            assert record.pop("prob_ai") == pytest.approx(wanted.pop("prob_ai"), abs=2e-6)
        assert record == wanted
    assert records[0]["error"].startswith("not an image file")
    assert {record["label"] for record in records[1:]} <= {"AI-generated", "Real", "Uncertain"}
    decided = analyze(client, [(uploads[1].name, uploads[1].read_bytes())], threshold=0, uncertain_band=0)
    assert decided.json()["results"][0]["label"] == "AI-generated"


BAD_FILES = [("truncated JPEG", bad_inputs.truncated_jpeg, "cannot decode image"),
             ("zero-byte file", bad_inputs.zero_bytes, "file is empty"),
             ("text named .jpg", bad_inputs.text_named_jpg, "not an image file"),
             ("decompression bomb", bad_inputs.decompression_bomb_png, "image is too large")]


@pytest.mark.slow
@pytest.mark.parametrize("case, build, error", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_an_undecodable_file_gets_its_error_record(client, sample_dir, case, build, error):
    good = sample_files(sample_dir, 1)[0]
    response = analyze(client, [("bad.jpg", build()), (good.name, good.read_bytes())])
    assert response.status_code == 200
    bad, fine = response.json()["results"]
    assert bad["error"].startswith(error) and bad["label"] == "" and bad["prob_ai"] is None
    assert fine["error"] == "" and fine["label"]
    answers_next_request(client, sample_dir)


def slow_upload(url: str, seconds: float) -> bytes:
    """A request that sends its headers and part of its body, then nothing: what the server says."""
    host, port = url.removeprefix("http://").split(":")
    body = b'--B\r\nContent-Disposition: form-data; name="files"; filename="slow.jpg"\r\n\r\n' + b"x" * 100
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n"
                           b"Content-Type: multipart/form-data; boundary=B\r\n\r\n" + body)
        connection.settimeout(seconds)
        received = b""
        try:
            while b"}" not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
        except socket.timeout:
            pass
        return received


@pytest.mark.slow
def test_structural_problems_are_4xx_json_errors_naming_the_limit(server, client, sample_dir):
    image = sample_files(sample_dir, 1)[0].read_bytes()
    chunked_body = multipart(*[("part.jpg", b"x" * MiB)] * 6)[0]
    cases = [
        ("oversized file", dict(files=[("files", ("big.png", bad_inputs.png_with_alpha() + b"\0" * MAX_FILE))]),
         413, "max_file_bytes"),
        ("oversized request", dict(files=[("files", (f"{i}.jpg", b"x" * (MAX_FILE - 100))) for i in range(3)]),
         413, "max_request_bytes"),
        ("oversized chunked request", dict(content=iter([chunked_body]),
                                           headers={"content-type": "multipart/form-data; boundary=XyZ"}),
         413, "max_request_bytes"),
        ("too many files", dict(files=[("files", (f"{i}.jpg", image)) for i in range(MAX_FILES + 1)]),
         413, "max_files"),
        ("not multipart", dict(json={"files": ["a.jpg"]}), 415, "not_multipart"),
        ("no files field", dict(files=[("image", ("a.jpg", image))]), 400, "no_files"),
        ("broken multipart", dict(content=b"--Z\r\nnonsense", headers={"content-type": "multipart/form-data; boundary=Z"}),
         400, "bad_multipart"),
        ("bad threshold", dict(files=[("files", ("a.jpg", image))], params={"threshold": 2}), 400, "bad_decision"),
    ]
    for case, request, status, code in cases:
        response = client.post("/v1/analyze", **request)
        assert (response.status_code, response.json()["error"]) == (status, code), case
        assert response.json()["detail"], case
        answers_next_request(client, sample_dir)
    started = time.monotonic()
    reply = slow_upload(server.url, seconds=TIMEOUT_S + 10)
    assert reply.startswith(b"HTTP/1.1 408") and b'"request_timeout_s"' in reply, reply[:300]
    assert TIMEOUT_S - 0.5 < time.monotonic() - started < TIMEOUT_S + 8
    answers_next_request(client, sample_dir)


@pytest.mark.slow
def test_32_concurrent_requests_are_all_answered_and_counted(server, sample_dir):
    paths = sample_files(sample_dir, 8)

    async def one(http, i):
        chosen = [paths[(i + j) % len(paths)] for j in range(i % 3 + 1)]
        response = await http.post("/v1/analyze", files=[("files", (f"{i}-{p.name}", p.read_bytes())) for p in chosen])
        return response.status_code, [r["path"] for r in response.json()["results"]], [f"{i}-{p.name}" for p in chosen]

    async def together():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            return await asyncio.gather(*(one(http, i) for i in range(32)))

    for status, got, sent in asyncio.run(together()):
        assert status == 200 and got == sent
    metrics = httpx.get(f"{server.url}/metrics").text
    assert re.search(r'aidetect_requests_total\{endpoint="/v1/analyze",status="200"\} [1-9]', metrics)
    assert re.search(r'aidetect_images_total\{outcome="classified"\} [1-9]', metrics)
    assert re.search(r"aidetect_batch_images_count [1-9]", metrics)
    assert re.search(r'aidetect_request_seconds_bucket\{endpoint="/v1/analyze",le="\+Inf"\} [1-9]', metrics)
    log = server.log_text()
    assert re.search(r"request_id=[0-9a-f]{16} POST /v1/analyze status=200 files=3 duration_ms=[0-9.]+", log)
    assert "JFIF" not in log                   # no image bytes in the log


@pytest.mark.slow
def test_models_healthz_and_docs(client):
    models = client.get("/v1/models").json()["models"]
    assert models[0]["name"].startswith("tiny-run")         # the run folder's name
    assert models[0]["image_size"] == 32 and "metrics" in models[0]
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json()["status"] == "ready"
    schema = client.get("/openapi.json").json()
    assert "multipart/form-data" in schema["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


@pytest.mark.slow
def test_api_keys_and_readiness_before_the_model_loads(tiny_model_path, tmp_path, sample_dir):
    image = sample_files(sample_dir, 1)[0]
    upload = [("files", (image.name, image.read_bytes()))]
    with api_server(tmp_path / "keys.log", "--model", str(tiny_model_path), "--load-delay-s", "4",
                    env={"AIDETECT_API_KEYS": "key-one,key-two"}, ready=False) as server:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert readiness(server.url) == 503 and http.get("/readyz").json()["status"] == "loading"
            assert http.get("/healthz").status_code == 200
            not_yet = http.post("/v1/analyze", files=upload, headers={"X-API-Key": "key-one"})
            assert (not_yet.status_code, not_yet.json()["error"]) == (503, "not_ready")
            wait_for(server, 200, 120)
            for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": "key-one"}):
                refused = http.post("/v1/analyze", files=upload, headers=headers)
                assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized"), headers
                assert refused.headers["www-authenticate"] == "Bearer"
            assert http.get("/v1/models").status_code == 401
            for headers in ({"X-API-Key": "key-one"}, {"Authorization": "Bearer key-two"}):
                assert http.post("/v1/analyze", files=upload, headers=headers).status_code == 200
                assert http.get("/v1/models", headers=headers).status_code == 200
            for open_path in ("/healthz", "/readyz", "/metrics"):
                assert http.get(open_path).status_code == 200, open_path


@pytest.mark.slow
def test_the_service_imports_neither_streamlit_nor_training_code():
    import subprocess
    import sys
    code = ("import sys, aidetect.serve.app, aidetect.serve.__main__, aidetect.predict; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit' or m in "
            "('aidetect.train', 'aidetect.data', 'aidetect.augment', 'model_training')))")
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"
