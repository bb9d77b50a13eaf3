"""Notebook machinery: labs/ generated from solutions/, visible skips, and every solution green under nbval."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from spark_labs.grading.grade import sanitize_file
from spark_labs.notebooks.build import SolutionMarkerError, build_notebook, render, stale_labs, strip_solution

ROOT = Path(__file__).resolve().parents[1]
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


def test_can_run_skips_the_block_visibly_without_an_error(tmp_path):
    notebook = new_notebook(cells=[new_code_cell(
        "from spark_labs.notebooks import can_run\n"
        "if can_run(False, 'needs a GPU'):\n    print('after the skip')"), new_code_cell("print('next cell runs')")])
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    first = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    assert "⏭ Skipped on profile tiny: needs a GPU" in first and "after the skip" not in first
    assert not any(o.output_type == "error" for o in notebook.cells[0].outputs)
    assert "next cell runs" in notebook.cells[1].outputs[0].text


@pytest.mark.notebook
@pytest.mark.timeout(2400)  # lab 01 starts every engine of the profile and measures each one
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebook_passes_nbval(solution):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", str(solution),
         "--nbval-sanitize-with", str(sanitize_file()), "--nbval-cell-timeout=900"],
        capture_output=True, text=True, cwd=solution.parent, timeout=2400)
    assert result.returncode == 0, result.stdout[-4000:]
