"""The notebooks tier: nbval of the solutions, untouched-learner runs, grading, real kernels and JupyterLab.
Every test here is marked ``notebook``. ``--lab NN`` (``make test-notebooks LAB=NN``) keeps only lab NN's
nbval and untouched-learner runs."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _lab_of(item: pytest.Item) -> str | None:
    """'02' for a test parametrized by lab 02's notebook (a solution path or a lab name), else None."""
    for value in getattr(getattr(item, "callspec", None), "params", {}).values():
        name = getattr(value, "name", value)
        if isinstance(name, str) and len(name) > 2 and name[:2].isdigit() and name[2] == "_":
            return name[:2]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker("notebook")
    lab = config.getoption("--lab")
    if not lab:
        return
    keep, drop = [], []
    for item in items:
        mine = item.path.is_relative_to(HERE)
        (drop if mine and _lab_of(item) != lab.zfill(2) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
