"""spark-labs: the helper library behind the *Model Deployment & Inference Engines* course.

Every notebook imports from here so that no notebook hard-codes a profile, a model path or a port.
The top-level names are re-exported lazily so ``import spark_labs`` stays fast (no torch import).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _moved

__version__ = "0.2.0"  # the one place the version is written (pyproject reads it)
_moved.install()  # pre-0.2 module names keep working for one release, with a warning

_ERRORS = ("SparkLabsError", "ProfileError", "ModelNotFoundError", "InsufficientMemoryError", "EngineError",
           "EngineNotInstalledError", "PortInUseError", "EngineStartError", "EngineTimeoutError")
_LAZY = {
    "get_profile": "spark_labs.profiles",
    "plan": "spark_labs.profiles",
    "split_model": "spark_labs.profiles",
    "launch": "spark_labs.engines",
    "ENGINES": "spark_labs.engines",
    "embedded_gguf_path": "spark_labs.models",
    "prepare_embedded_model": "spark_labs.models",
    "cache_dir": "spark_labs.paths",
    **dict.fromkeys(_ERRORS, "spark_labs.errors"),
}
# Top-level modules that are part of the public surface: ``from spark_labs.sizing import weight_bytes``.
PUBLIC_MODULES = ("sizing",)


def __getattr__(name: str) -> Any:
    if name in PUBLIC_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spark_labs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [*sorted(_LAZY), *PUBLIC_MODULES, "__version__"]  # noqa: PLE0604 - the lazy names are _LAZY's keys
