"""The notebooks tier: each lab run once (its rehearsal, compared with the recording the way nbval compares),
untouched-learner runs, grading, real kernels and JupyterLab.
Every test here is marked ``notebook``. ``--lab NN`` (``make test-notebooks LAB=NN``) keeps only lab NN's
run, untouched-learner runs and wrong-answer suite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _lab_of(item: pytest.Item) -> str | None:
    """'02' for a test of lab 02: parametrized by its notebook (a solution path or a lab name), or in
    test_answers_lab02.py; else None."""
    answers = re.fullmatch(r"test_answers_lab(\d\d)", item.path.stem)
    if answers:
        return answers.group(1)
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


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest):
    """test_answers_labNN.py's rehearsal: lab NN run once through the grader's two kernels; each answer then
    re-runs one exercise and its checkpoint on that run's data."""
    from spark_labs.grading.rehearsal import Rehearsal

    number = re.fullmatch(r"test_answers_lab(\d\d)", request.path.stem)
    assert number, f"the lab fixture serves test_answers_labNN.py files, not {request.path.name}"
    # a module may stop the run at its last exercise's checkpoint (REHEARSE_THROUGH = "07.1") when what follows
    # costs minutes and no answer needs it
    with Rehearsal(number.group(1), through=getattr(request.module, "REHEARSE_THROUGH", None)) as rehearsal:
        yield rehearsal

