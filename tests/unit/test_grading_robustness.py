"""One bad submission never stops the class: malformed notebooks are error rows, the gradebook is safe to open in a
spreadsheet, and assembling a hostile notebook's graded copy is cheap and counted against its time limit. No
process is started here: each case is decided before a submission would run."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from spark_labs.grading.assemble import assemble
from spark_labs.grading.grade import GradeRow, grade_submission, grade_submissions
from spark_labs.grading.gradebook import Header, spreadsheet_safe, write_csv
from spark_labs.grading.reference import load_reference
from spark_labs.grading.sandbox import Limits
from spark_labs.notebooks.build import build_notebook
from spark_labs.notebooks.checkpoints import ids_called

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "00_prerequisites.ipynb"


@pytest.fixture(scope="module")
def reference():
    return load_reference(SOLUTION)


def _write(path: Path, notebook) -> Path:
    nbformat.write(notebook, path)
    return path


def test_a_cell_whose_source_is_a_number_is_an_error_row_and_the_others_are_graded(reference, tmp_path, monkeypatch):
    """Before: `cell.source` as an integer raised inside the grader and no gradebook was written for anyone."""
    broken = nbformat.read(SOLUTION, as_version=4)
    broken.cells[3]["source"] = 42
    bad = tmp_path / "mallory.ipynb"
    bad.write_text(json.dumps(broken))  # as a hand-edited file would be: nbformat.write would refuse it
    good = _write(tmp_path / "alice.ipynb", build_notebook(SOLUTION))
    ran = []
    monkeypatch.setattr("spark_labs.grading.grade.run_judged", lambda *a, **k: ran.append(a[0]) or _no_run())
    rows = grade_submissions([("mallory", bad), ("alice", good)], reference, Limits(), workers=1)
    assert [r.student for r in rows] == ["mallory", "alice"]
    assert rows[0].status == "error" and "not a valid notebook" in rows[0].reason
    assert ran == [good]  # the well-formed one still went on to run


def _no_run():
    from spark_labs.grading.sandbox import Execution

    return Execution(None, not_contained="not started in this test")


def test_any_exception_while_grading_is_that_submissions_error_row(reference, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("unexpected shape")

    monkeypatch.setattr("spark_labs.grading.grade.assemble", boom)
    row = grade_submission("bob", _write(tmp_path / "bob.ipynb", build_notebook(SOLUTION)), reference, Limits())
    assert row.status == "error" and "RuntimeError: unexpected shape" in row.reason


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(A1:A9)",
                                  "-2+3", "\t=1+1"])
def test_learner_text_never_reaches_a_spreadsheet_as_a_formula(reference, tmp_path, name):
    row = GradeRow(name, f"{name}.ipynb", "error", {c: _outcome(c) for c in reference.checkpoints},
                   reason=f"={name}", notes=[f"@{name}"])
    out = tmp_path / "gradebook.csv"
    write_csv([row], reference, Header.of(reference, None), out)
    table = [line for line in out.read_text(encoding="utf-8").splitlines() if not line.startswith("# ")]
    cells = [value for record in csv.reader(io.StringIO("\n".join(table))) for value in record]
    assert name in " ".join(cells)  # still readable
    assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in cells)


def test_spreadsheet_safe_leaves_plain_values_alone():
    assert spreadsheet_safe("alice") == "alice" and spreadsheet_safe(3) == 3 and spreadsheet_safe("3/3") == "3/3"


def _outcome(cid):
    from spark_labs.grading.evaluate import CheckpointOutcome

    return CheckpointOutcome(cid, "not run")


def test_a_huge_cell_in_a_checkpoints_place_is_assembled_quickly(reference):
    """Before: a checkpoint cell replaced by 4 MB of text cost 36 s of text comparison, outside --timeout."""
    notebook = build_notebook(SOLUTION)
    index = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and ids_called(c.source))
    notebook.cells[index].source = "y = '" + "c" * 4_000_000 + "'"
    start = time.perf_counter()
    prepared = assemble(reference, notebook)
    assert time.perf_counter() - start < 3
    assert set(prepared.checkpoint_cells) == set(reference.checkpoints)


def test_assembling_counts_against_the_time_limit(reference, tmp_path, monkeypatch):
    slow = assemble

    def slow_restore(*args):
        time.sleep(0.3)
        return slow(*args)

    monkeypatch.setattr("spark_labs.grading.grade.assemble", slow_restore)
    monkeypatch.setattr("spark_labs.grading.grade.run_judged", lambda *a, **k: pytest.fail("ran past its budget"))
    notebook = build_notebook(SOLUTION)
    notebook.cells.append(new_code_cell("pass"))
    row = grade_submission("carol", _write(tmp_path / "carol.ipynb", notebook), reference, Limits(timeout=0.2))
    assert row.status == "timeout" and "assembling its graded notebook" in row.reason, row.reason
