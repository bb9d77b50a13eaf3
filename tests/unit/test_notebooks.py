"""Notebook machinery: labs/ generated from solutions/, visible skips, and every solution green under nbval."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from spark_labs.notebooks.build import SolutionMarkerError, build_notebook, render, stale_labs, strip_solution

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_strip_solution_keeps_hints_and_raises():
    source = "x = 1\n# BEGIN SOLUTION\n# HINT: add one\ny = x + 1\n# END SOLUTION\nprint(y)"
    assert strip_solution(source, "Exercise 09.1") == (
        'x = 1\n# HINT: add one\nraise NotImplementedError("Exercise 09.1: replace this line with your code")\n'
        "print(y)")


def test_unbalanced_markers_are_reported():
    with pytest.raises(SolutionMarkerError, match="never closed"):
        strip_solution("# BEGIN SOLUTION\nx = 1", "Exercise 09.1")


def test_labs_are_up_to_date_and_rebuild_byte_identically():
    assert SOLUTIONS, "no solution notebooks"
    assert stale_labs(ROOT / "solutions", ROOT / "labs") == [], "run `spark-labs labs build`"
    for solution in SOLUTIONS:
        assert render(build_notebook(solution)) == render(build_notebook(solution))
        lab = nbformat.read(ROOT / "labs" / solution.name, as_version=4)
        assert all(not c.get("outputs") for c in lab.cells if c.cell_type == "code")
        assert "# BEGIN SOLUTION" not in "".join(c.source for c in lab.cells)
