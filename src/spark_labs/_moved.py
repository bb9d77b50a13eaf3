"""Old module names kept importable for one release, so a learner's saved notebook survives the 0.2 layout.

``from spark_labs.checkpoint import checkpoint`` still works and warns once, naming the new place
(``spark_labs.notebooks``). Nothing here copies code: the old name is an alias of the new module object.
Remove this file (and its line in ``spark_labs/__init__.py``) in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

# Old dotted name -> new one. A package's entry covers its submodules (spark_labs.spec.runner ->
# spark_labs.speculative.runner) unless a submodule has an entry of its own.
MOVED = {
    "spark_labs.specs": "spark_labs.hardware.datasheets",
    "spark_labs.memory": "spark_labs.hardware.memory",
    "spark_labs.cache": "spark_labs.paths",
    "spark_labs.checkpoint": "spark_labs.notebooks.checkpoints",
    "spark_labs.calc": "spark_labs.sizing",
    "spark_labs.http11": "spark_labs.http_client",
    "spark_labs.coroutines": "spark_labs.event_loop",
    "spark_labs.model_catalog": "spark_labs.models.catalog",
    "spark_labs.bench.learner_parts": "spark_labs.bench.learner_functions",
    "spark_labs.spec.bench": "spark_labs.speculative.comparison",
    "spark_labs.spec": "spark_labs.speculative",
    "spark_labs.build": "spark_labs.variants",
    "spark_labs.engines.spec": "spark_labs.engines.engine_spec",
    "spark_labs.grading.bench": "spark_labs.grading.cost",
}


class MovedModuleWarning(FutureWarning):
    """A spark_labs module was imported by its pre-0.2 name (FutureWarning: shown to learners by default)."""


def new_name(old: str) -> str | None:
    """Where ``old`` lives now, or None if it did not move."""
    parts = old.split(".")
    for end in range(len(parts), 1, -1):
        head = ".".join(parts[:end])
        if head in MOVED:
            return ".".join([MOVED[head], *parts[end:]])
    return None


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        new = new_name(fullname)
        if new is None:
            return None
        module = importlib.import_module(new)
        return importlib.machinery.ModuleSpec(fullname, self, loader_state=(module, module.__spec__),
                                              is_package=hasattr(module, "__path__"))

    def create_module(self, spec):
        return spec.loader_state[0]

    def exec_module(self, module):
        alias = module.__spec__
        module.__spec__ = alias.loader_state[1]  # the import system stamped the alias's spec on the real module
        warnings.warn(f"{alias.name} moved to {module.__name__} in spark-labs 0.2; import it from there "
                      f"(the old name goes away in 0.3)", MovedModuleWarning, stacklevel=2)


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        # First, so a folder left behind by an in-place upgrade (an empty spark_labs/spec/) cannot be taken
        # for a namespace package before the alias is found.
        sys.meta_path.insert(0, _Alias())
