"""The HTTP API (FastAPI): routes, API keys, request logs and metrics around one Predictor.

    uvicorn aidetect.serve.app:create_app --factory      (python -m aidetect.serve does this for you)

Every answer is built by the package, as in classify.py: Predictor.classify turns the uploaded
bytes into Results through the one safe loader, and results.to_record turns each into the JSON
record classify.py --output x.json writes. The model loads in the background after the server
starts (/healthz answers at once, /readyz once the model is warm) and every model call runs in
one worker thread, so the event loop keeps reading uploads while the model works.
"""
import asyncio
import concurrent.futures
import hmac
import io
import logging
import os
import re
import sys
import time
import uuid
from contextlib import asynccontextmanager
from typing import List, Mapping, Optional, Sequence

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.requests import ClientDisconnect

from ..labels import DEFAULT_THRESHOLD, DEFAULT_UNCERTAIN_BAND, check_decision
from ..provenance import read_trust_anchors
from ..results import to_record
from .batching import Batcher
from .metrics import CONTENT_TYPE, Metrics
from .settings import ServeSettings, from_environment, read_api_keys
from .uploads import FIELD, Limits, RequestError, read_files

log = logging.getLogger("aidetect.serve")
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")      # probes and scrapes: logged at DEBUG only
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")        # a client's X-Request-ID is kept if it looks like one
MAX_QUEUED_IMAGES = 1024                                # waiting images beyond this: 503, memory stays bounded

UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD],
    "properties": {FIELD: {"type": "array", "items": {"type": "string", "format": "binary"},
                           "description": "one or more images (repeat the field)"}}}}}}}


def presented_key(headers: Mapping[str, str]) -> str:
    """The key of `Authorization: Bearer KEY`, else of `X-API-Key: KEY`, else ''."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key", "").strip()


def key_accepted(given: str, keys: Sequence[str]) -> bool:
    """Whether given is one of keys, compared in constant time (no key: nothing to check)."""
    return not keys or any(hmac.compare_digest(given.encode(), key.encode()) for key in keys)


def request_id(headers: Mapping[str, str]) -> str:
    given = headers.get("x-request-id", "")
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]


def error_response(error: RequestError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse({"error": error.code, "detail": error.detail}, error.status, headers=headers)


def model_description(predictor) -> dict:
    """What /v1/models says of a loaded Predictor: its name, what it looks at, what it measured."""
    from ..predict import reliability_warning

    info = predictor.run_info()
    return {"name": predictor.name, "path": str(predictor.model_path), "image_size": predictor.image_size,
            "view": predictor.view, "calibrated": predictor.temperature is not None,
            "scope": predictor.scope is not None, "metrics": info.get("metrics", {}),
            "warning": reliability_warning(info),
            "small_images": None if predictor.small is None else model_description(predictor.small)}


def noise_png(side: int) -> bytes:
    """A side x side PNG of noise, made in memory: the warm-up image."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def load_predictor(settings: ServeSettings):
    """The Predictor, loaded quietly, settled for a long-lived process and warmed up: the first
    request must not pay for tracing the model's functions."""
    from ..quiet import start_tensorflow

    time.sleep(settings.load_delay_s)
    start_tensorflow()
    from ..predict import Predictor, settle_long_lived_process

    predictor = Predictor.load(settings.model or None)
    settle_long_lived_process()
    warm = noise_png(predictor.image_size)
    for count in (1, 2):                        # one traced shape, then the general one
        predictor.classify([warm] * count, ["warm-up"] * count)
    return predictor


class Service:
    """What the routes share: the settings, the keys, the model once loaded, its queue, metrics."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.keys = read_api_keys(settings.api_keys)
        self.trust_anchors = read_trust_anchors(settings.trust_anchors)
        self.limits = Limits(settings.max_files, settings.max_file_bytes, settings.max_request_bytes)
        self.metrics = Metrics()
        self.predictor = None
        self.load_error = ""
        # the model's one thread: it loads the model and makes every call, one at a time
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        self.batcher: Optional[Batcher] = None

    def model_call(self, sources: List[bytes], names: List[str], decision) -> list:
        threshold, uncertain_band = decision
        return self.predictor.classify(sources, names, threshold, uncertain_band, trust_anchors=self.trust_anchors)

    async def load(self) -> None:
        try:
            self.predictor = await asyncio.get_running_loop().run_in_executor(
                self.executor, load_predictor, self.settings)
            log.info("model %s loaded from %s: ready", self.predictor.name, self.predictor.model_path)
        except Exception as error:                  # ModelError and the like: say so on /readyz
            self.load_error = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.error("model could not be loaded: %s", self.load_error)

    def require_key(self, request: Request) -> None:
        if not key_accepted(presented_key(request.headers), self.keys):
            raise RequestError(401, "unauthorized", "a valid API key is needed: "
                                                    "`Authorization: Bearer KEY` or `X-API-Key: KEY`")

    def require_model(self):
        if self.predictor is None:
            raise RequestError(503, "not_ready", self.load_error or "the model is still loading")
        return self.predictor


def _configure_logging() -> None:
    """Request logs on stdout, one line each (TensorFlow's start-up silences stderr for a while)."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def create_app(settings: Optional[ServeSettings] = None) -> FastAPI:
    """The ASGI app; settings default to the environment's (settings.from_environment)."""
    settings = settings or from_environment(os.environ)
    _configure_logging()
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.batcher = Batcher(service.model_call, service.executor, settings.batch_max_images,
                                  settings.batch_wait_ms / 1000, settings.batching, MAX_QUEUED_IMAGES,
                                  service.metrics.batch_images.observe)
        tasks = [asyncio.create_task(service.batcher.run()), asyncio.create_task(service.load())]
        yield
        for task in tasks:
            task.cancel()
        service.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="aidetect", lifespan=lifespan,
                  description="Is this image AI-generated or real? The same verdicts and records as "
                              "the web page and classify.py.")
    app.state.service = service

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError):
        return error_response(error)

    @app.middleware("http")
    async def log_and_count(request: Request, call_next):
        request.state.request_id, request.state.files = request_id(request.headers), 0
        started, status = time.perf_counter(), 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request.state.request_id
            return response
        finally:
            seconds = time.perf_counter() - started
            route = request.scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            service.metrics.requests.labels(endpoint, str(status)).inc()
            service.metrics.latency.labels(endpoint).observe(seconds)
            log.log(logging.DEBUG if request.url.path in QUIET_PATHS else logging.INFO,
                    "request_id=%s %s %s status=%d files=%d duration_ms=%.1f", request.state.request_id,
                    request.method, request.url.path, status, request.state.files, seconds * 1000)

    @app.get("/healthz", summary="The process is alive")
    async def healthz():
        return {"status": "alive"}

    @app.get("/readyz", summary="The model is loaded and warm (503 before)")
    async def readyz():
        if service.predictor is None:
            return JSONResponse({"status": "failed" if service.load_error else "loading",
                                 "detail": service.load_error or "the model is still loading"}, 503)
        return {"status": "ready", "model": service.predictor.name}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics():
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", summary="The loaded model and what it measured",
             dependencies=[Depends(service.require_key)])
    async def models():
        return {"models": [model_description(service.require_model())]}

    @app.post("/v1/analyze", summary="Classify one or more images", openapi_extra=UPLOAD_SCHEMA,
              dependencies=[Depends(service.require_key)],
              description=f"Multipart form data, the images in the field `{FIELD}` (repeated). Returns "
                          "`{\"results\": [...]}`: per file, in upload order, the record `classify.py "
                          "--output x.json` writes (`path` is the upload's file name). A file that "
                          "cannot be decoded gets its record with `error`; limits give 4xx errors.")
    async def analyze(request: Request,
                      threshold: float = Query(DEFAULT_THRESHOLD, description="P(AI-generated) at or above "
                                               "which the label is AI-generated"),
                      uncertain_band: float = Query(DEFAULT_UNCERTAIN_BAND, description="label Uncertain "
                                                    "within threshold +/- this; 0 = always decide")):
        try:
            check_decision(threshold, uncertain_band)
        except ValueError as error:
            raise RequestError(400, "bad_decision", str(error)) from None
        service.require_model()
        try:
            with service.batcher.receiving():
                files = await asyncio.wait_for(read_files(request.headers, request.stream(), service.limits),
                                               settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(408, "request_timeout_s",
                               f"the upload did not arrive within {settings.request_timeout_s:g} s") from None
        except ClientDisconnect:
            raise RequestError(400, "client_disconnected", "the client went away during the upload") from None
        request.state.files = len(files)
        results = await service.batcher.classify([data for _, data in files], [name for name, _ in files],
                                                 (threshold, uncertain_band))
        for result in results:
            service.metrics.images.labels("unreadable" if result.error else "classified").inc()
        return JSONResponse({"results": [to_record(result) for result in results]})

    return app
