"""The one atomic-write helper: a process killed mid-write leaves the previous file (or none),
never half of one, and a reader (a server, a resumed run) never sees a partial file."""
import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator, Union


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a sibling temporary path (name + suffix: Keras wants .keras or .weights.h5 endings)
    to write a file or folder to; when the block succeeds it replaces `path` in one step."""
    path = Path(path)
    temporary = path.with_name(path.name + suffix)
    if temporary.is_dir():
        shutil.rmtree(temporary)                # left behind by a killed earlier attempt
    yield temporary
    if temporary.is_dir() and path.exists():    # a folder cannot replace a folder in one step
        shutil.rmtree(path)
    os.replace(temporary, path)


def write_atomically(path, content: Union[bytes, str]) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(content.encode() if isinstance(content, str) else content)
