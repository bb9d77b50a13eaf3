"""Where the library keeps things it makes once (exported models, logs, reports)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "SPARK_LABS_CACHE"


def cache_dir(*parts: str) -> Path:
    """``$SPARK_LABS_CACHE`` or ``~/.cache/spark-labs``, with ``parts`` appended and created."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "spark-labs")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (parallel graders, pytest workers) on ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
