"""Start the HTTP API: python -m aidetect.serve [--model PATH] [--host H] [--port P] [--workers N]

    POST /v1/analyze   images as multipart form data (field `files`, repeated) -> {"results": [...]}
    GET  /v1/models    the loaded model and what it measured
    GET  /healthz      alive;  GET /readyz  model loaded (503 before);  GET /metrics  Prometheus
    GET  /docs         the OpenAPI documentation

Every option is also an environment variable (shown in --help); API keys: $AIDETECT_API_KEYS.
"""
import copy
import os
import sys
from pathlib import Path

from ..provenance import read_trust_anchors
from .settings import parse_args, to_environment


def main(argv=None) -> int:
    settings = parse_args(argv, os.environ, __doc__)
    if settings.model and not Path(settings.model).exists():     # before the server starts: a typo costs no wait
        print(f"error: {settings.model}: no such file or folder", file=sys.stderr)
        return 1
    try:
        read_trust_anchors(settings.trust_anchors)          # each worker reads it again; refuse a bad one now
    except (OSError, ValueError) as error:
        print(f"error: --trust-anchors: {error}", file=sys.stderr)
        return 1
    import uvicorn

    # the worker processes read their settings back from the environment (app.create_app)
    os.environ.update(to_environment(settings))
    # uvicorn's own lines on stdout too: TensorFlow's start-up silences stderr while the model loads
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["default"]["stream"] = "ext://sys.stdout"
    uvicorn.run("aidetect.serve.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_config=log_config,
                access_log=False)           # app.py logs each request, with its id
    return 0


if __name__ == "__main__":
    sys.exit(main())
