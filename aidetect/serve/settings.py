"""The service's options: one dataclass, each field a command-line flag and an environment variable.

`python -m aidetect.serve --max-files 8` and `AIDETECT_SERVE_MAX_FILES=8` set the same field; a
flag wins over the environment. The command line hands its settings to the worker processes
through the environment (to_environment), so `--workers N` and a plain
`uvicorn aidetect.serve.app:create_app --factory` read them the same way. Light on purpose: no
TensorFlow here, so a bad flag is refused at once.
"""
import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

from ..images import MAX_FILE_BYTES
from ..provenance import TRUST_ANCHORS_ENV_VAR

ENV_PREFIX = "AIDETECT_SERVE_"
API_KEYS_ENV_VAR = "AIDETECT_API_KEYS"
MiB = 2**20


def _option(default, help: str, env: str = ""):
    return field(default=default, metadata={"help": help, "env": env})


@dataclass(frozen=True)
class ServeSettings:
    model: str = _option("", "a .keras file or a run folder (empty: $AIDETECT_MODEL, else the first shipped "
                             "model, models/compact)")
    host: str = _option("127.0.0.1", "address to listen on (0.0.0.0 in a container)")
    port: int = _option(8000, "port to listen on")
    workers: int = _option(1, "worker processes, each with its own model (uvicorn --workers)")
    max_files: int = _option(32, "most files in one request (more: 413)")
    max_file_bytes: int = _option(MAX_FILE_BYTES, "largest file in bytes (larger: 413); the loader's own limit")
    max_request_bytes: int = _option(64 * MiB, "largest request body in bytes (larger: 413)")
    request_timeout_s: float = _option(30.0, "seconds a client has to send its whole upload (slower: 408)")
    batching: bool = _option(True, "gather concurrent requests into one model call (off: one call per request)")
    batch_max_images: int = _option(64, "most images one model call gathers")
    batch_wait_ms: float = _option(5.0, "how long a model call waits for more images once one arrived")
    api_keys: str = _option("", "API keys: a file with one key a line, or a comma-separated list "
                                "(empty: no key needed)", API_KEYS_ENV_VAR)
    trust_anchors: str = _option("", "a PEM file of trusted Content Credentials (C2PA) root certificates",
                                 TRUST_ANCHORS_ENV_VAR)
    load_delay_s: float = _option(0.0, "wait this long before loading the model (tests watch /readyz)")

    def __post_init__(self):
        problems = [f"{name} must be at least 1, got {getattr(self, name)}"
                    for name in ("workers", "max_files", "max_file_bytes", "max_request_bytes", "batch_max_images")
                    if getattr(self, name) < 1]
        problems += [f"{name} must be > 0, got {getattr(self, name)}"
                     for name in ("request_timeout_s",) if getattr(self, name) <= 0]
        problems += [f"{name} must be >= 0, got {getattr(self, name)}"
                     for name in ("batch_wait_ms", "load_delay_s") if getattr(self, name) < 0]
        if problems:
            raise ValueError("; ".join(problems))


def env_name(option: dataclasses.Field) -> str:
    return option.metadata["env"] or ENV_PREFIX + option.name.upper()


def _parse(option: dataclasses.Field, text: str):
    if option.type is bool:
        if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"{env_name(option)}: expected 1/0/true/false, got {text!r}")
        return text.lower() in ("1", "true", "yes", "on")
    kind = option.type
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{env_name(option)}: expected {kind.__name__}, got {text!r}") from None


def from_environment(environ: Mapping[str, str]) -> ServeSettings:
    """Settings from AIDETECT_SERVE_* (and AIDETECT_API_KEYS, AIDETECT_TRUST_ANCHORS);
    ValueError naming the variable for a value that does not parse."""
    values = {option.name: _parse(option, environ[env_name(option)])
              for option in dataclasses.fields(ServeSettings) if environ.get(env_name(option))}
    return ServeSettings(**values)


def to_environment(settings: ServeSettings) -> Dict[str, str]:
    """The variables from_environment reads back as these settings."""
    return {env_name(option): str(int(value) if isinstance(value, bool) else value)
            for option in dataclasses.fields(settings) for value in [getattr(settings, option.name)]}


def parse_args(argv: Optional[Sequence[str]], environ: Mapping[str, str], description: str = "") -> ServeSettings:
    """Flags over the environment over the defaults; exits with a usage message on a bad value."""
    parser = argparse.ArgumentParser(prog="python -m aidetect.serve", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    try:
        base = from_environment(environ)
    except ValueError as error:
        parser.error(str(error))
    for option in dataclasses.fields(ServeSettings):
        flag = "--" + option.name.replace("_", "-")
        help_text = f"{option.metadata['help']} (${env_name(option)}; default: %(default)s)"
        if option.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=getattr(base, option.name),
                                help=help_text)
        else:
            parser.add_argument(flag, type=lambda text, option=option: _parse(option, text),
                                default=getattr(base, option.name), help=help_text)
    try:
        return ServeSettings(**vars(parser.parse_args(argv)))
    except ValueError as error:
        parser.error(str(error))


def read_api_keys(value: str) -> List[str]:
    """AIDETECT_API_KEYS: a file with one key a line ('#' comments), or a comma-separated list."""
    if not value:
        return []
    if os.path.isfile(value):
        with open(value) as file:
            lines = [line.split("#", 1)[0] for line in file]
        return [key.strip() for key in lines if key.strip()]
    return [key.strip() for key in value.split(",") if key.strip()]
