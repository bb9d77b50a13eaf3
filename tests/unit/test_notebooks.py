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


def test_a_written_answer_cell_reaches_learners_as_a_placeholder():
    """The solution's model answer stays out of labs/: the learner's copy asks for their own words."""
    import tempfile
    from pathlib import Path

    import nbformat

    from spark_labs.notebooks.build import answer_id, build_notebook

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("The cliff comes from the KV cache filling up.",
                                      metadata={"tags": ["answer"], "spark_labs": {"answer": "02.a"}}),
        nbformat.v4.new_markdown_cell("<details><summary>Compare with ours</summary>ours</details>")])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "02_demo.ipynb"
        nbformat.write(notebook, path)
        built = build_notebook(path)
    assert answer_id(notebook.cells[0]) == "02.a"
    assert "Your answer (02.a)" in built.cells[0].source and "KV cache" not in built.cells[0].source
    assert built.cells[1].source.startswith("<details>")


def test_the_quiz_names_the_slip_behind_a_wrong_number():
    from spark_labs.prereq import Quiz

    quiz = Quiz()
    quiz.submit({"kv_per_token": 131072, "kv_4x8k": 1, "sse": 1})
    assert quiz.wrong == ["kv_per_token (that is bytes: the question asks for KiB (÷ 1024))",
                          "kv_4x8k (one user's cache: 4 users each hold their own)"]
    assert "one user's cache" in str(quiz.answer("kv_4x8k", 1))


def test_validate_compares_outputs_only_on_the_profile_they_were_recorded_on(tmp_path):
    import json

    from spark_labs.notebooks.cli import nbval_mode, recorded_profile

    old = tmp_path / "old.ipynb"
    old.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    new = tmp_path / "new.ipynb"
    new.write_text(json.dumps({"cells": [], "metadata": {"spark_labs": {"recorded_profile": "spark"}},
                               "nbformat": 4, "nbformat_minor": 5}))
    assert recorded_profile(old) == "tiny" and recorded_profile(new) == "spark"
    assert nbval_mode("tiny", "tiny") == "--nbval" and nbval_mode("tiny", "spark") == "--nbval-lax"
    assert all(recorded_profile(path) == "tiny" for path in (ROOT / "solutions").glob("*.ipynb"))
