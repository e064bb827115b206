"""A real `python -m aidetect.serve` on a free 127.0.0.1 port, for tests/test_serve.py and benchmarks/bench_api.py.

    with api_server(log_path, "--model", path, env={"AIDETECT_API_KEYS": "k"}) as server:
        server.url               http://127.0.0.1:PORT
        server.rss_bytes()       the server process's resident memory now

Started as a user would (a subprocess, from the project's root so it imports this checkout), and
stopped when the `with` block ends, however it ends. No pytest in here: failures raise ServerError.
"""
import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, Optional

from tests.streamlit_server import ROOT, START_S, Server, ServerError, _stop, free_port


def readiness(url: str) -> Optional[int]:
    """GET /readyz's status code, None while nothing answers."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_for(server: Server, status: int, timeout_s: float) -> None:
    """Until /readyz answers `status` (503: the server is up, the model not yet loaded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"the server exited with {server.process.returncode}:\n{server.log_text()}")
        if readiness(server.url) == status:
            return
        time.sleep(0.2)
    raise ServerError(f"/readyz did not answer {status} within {timeout_s:.0f} s:\n{server.log_text()}")


@contextlib.contextmanager
def api_server(log: Path, *args: str, env: Optional[Dict[str, str]] = None, ready: bool = True,
               start_timeout_s: float = START_S) -> Iterator[Server]:
    """The service with these command-line args (and env); on return it answers /readyz with 200
    (ready=False: with anything, 503 included)."""
    port = free_port()
    environ = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", **(env or {}))
    with Path(log).open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "aidetect.serve", "--port", str(port), *args],
                                   cwd=ROOT, env=environ, stdout=output, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, Path(log))
    try:
        deadline = time.monotonic() + start_timeout_s
        while readiness(server.url) is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        if ready:
            wait_for(server, 200, max(1.0, deadline - time.monotonic()))
        yield server
    finally:
        _stop(process)

