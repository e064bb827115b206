"""A real `streamlit run web_app.py` server on a free 127.0.0.1 port, for browser tests and benchmarks.

    with streamlit_server(model_path, log_path) as server:
        server.url               http://127.0.0.1:PORT
        server.model_loads()     how many times the server process has loaded a model so far
        server.rss_bytes()       the server process's resident memory now (VmRSS); peak: VmHWM

The server is Streamlit's own command line (`python -m streamlit run web_app.py ...`), exactly as
a user starts it; the page prints LOAD_MARKER on every model load, so tests count loads from the
log. The server is always stopped when the `with` block ends, however it ends.
No pytest in here: a failure raises ServerError, so benchmarks can use it too.
"""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
# Debian's Chromium (Playwright cannot download browsers here), as the browser tests launch it
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
LOAD_MARKER = "Model loaded: "          # web_app.py's line on stderr, once per model load
START_S = 120                   # imports TensorFlow first; slow on a busy 2-core machine
STOP_S = 15


class ServerError(RuntimeError):
    """The server exited or did not become healthy; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _proc_status_bytes(pid: int, field: str) -> int:
    """VmRSS / VmHWM of a live process from /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024          # the kernel reports kB
    raise ServerError(f"no {field} in /proc/{pid}/status")


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def model_loads(self) -> int:
        return sum(line.startswith(LOAD_MARKER) for line in self.log_text().splitlines())

    def rss_bytes(self) -> int:
        return _proc_status_bytes(self.pid, "VmRSS")

    def peak_rss_bytes(self) -> int:
        return _proc_status_bytes(self.pid, "VmHWM")


def _wait_until_healthy(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(f"streamlit exited with {server.process.returncode}:\n{server.log_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServerError(f"streamlit not healthy after {timeout_s:.0f} s:\n{server.log_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@contextlib.contextmanager
def streamlit_server(model_path, log: Path, page: str = "web_app.py",
                     start_timeout_s: float = START_S) -> Iterator[Server]:
    """`streamlit run PAGE` with AIDETECT_MODEL=model_path, healthy on return, stopped on exit."""
    port = free_port()
    env = dict(os.environ, AIDETECT_MODEL=str(model_path), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONUNBUFFERED="1")
    with Path(log).open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", page,
             "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, Path(log))
    try:
        _wait_until_healthy(server, start_timeout_s)
        yield server
    finally:
        _stop(process)
