"""Keep TensorFlow's native start-up chatter (oneDNN, CPU features, "DT_HALF") off the terminal.

Its C++ code writes those lines to file descriptor 2 before any log level applies
(TF_CPP_MIN_LOG_LEVEL does not stop them), so the only way is to point descriptor 2 at /dev/null
while TensorFlow starts and while a model is built or loaded. Failures still surface: they are
raised as Python exceptions, which the tools print. AIDETECT_VERBOSE=1 (the tools' --verbose)
leaves everything on.
"""
import contextlib
import os
import sys

VERBOSE_ENV_VAR = "AIDETECT_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV_VAR, "") not in ("", "0")


@contextlib.contextmanager
def native_logs_silenced():
    """Descriptor 2 points at /dev/null inside the block (unless verbose); Python's sys.stderr
    writes in the block are dropped too, so keep the block to imports, builds and loads."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def start_tensorflow(verbose_flag: bool = False) -> None:
    """Import TensorFlow and Keras quietly (a command-line tool or the page calls this first); --verbose sets
    AIDETECT_VERBOSE so that every later load in this process is verbose too."""
    if verbose_flag:
        os.environ[VERBOSE_ENV_VAR] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # Python-side TensorFlow warnings
    if "tensorflow" in sys.modules:     # started already (the page runs its script again on every click)
        return
    with native_logs_silenced():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
