"""Grading real lab-00 submissions: the documented command, run as an instructor types it, puts every honest
and every cheating submission in its right row; a submission cannot reach the others or outlive grading.

All submissions are graded in ONE run of the documented command (lab 00 is the cheapest lab to execute).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest
from submission_fixtures import LEFTOVER_MARK, ROOT, SOLUTION, checkpoint_id, make_hanging, make_submissions

from spark_labs.grading.cli import main as grade_cli
from spark_labs.grading.grade import grade_submission
from spark_labs.grading.gradebook import read_gradebook
from spark_labs.grading.reference import ReferenceError, load_reference
from spark_labs.grading.sandbox import Limits
from spark_labs.notebooks.checkpoints import parse_line, validate_id

DOCS = ROOT / "docs" / "instructors.md"
SCRIPT = Path(sys.executable).parent / "spark-labs"


def documented_grade_command() -> list[str]:
    """The `spark-labs grade ...` command of docs/instructors.md, exactly as written there."""
    block = re.search(r"```bash\n(spark-labs grade .*?)\n```", DOCS.read_text(), re.DOTALL)
    assert block, "docs/instructors.md shows no ```bash block starting with `spark-labs grade`"
    return shlex.split(block.group(1).replace("\\\n", " "))


def _alive(word: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if word in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Run the documented command once, from a course folder with relative paths, on every fixture."""
    course = tmp_path_factory.mktemp("course")
    (course / "solutions").mkdir()
    shutil.copy(SOLUTION, course / "solutions" / SOLUTION.name)
    made = make_submissions(course / "submissions" / "lab00")
    command = documented_grade_command()
    assert command[:2] == ["spark-labs", "grade"] and not any(os.path.isabs(a) for a in command)
    result = subprocess.run([str(SCRIPT), *command[1:]], cwd=course, capture_output=True, text=True, timeout=1200,
                            check=False)
    header, rows = read_gradebook(course / "gradebook.csv")
    return {"course": course, "made": made, "result": result, "header": header,
            "rows": {r["student"]: r for r in rows}}


def _state(row: dict, cid: str) -> str:
    return next(value for key, value in row.items() if key.split(" · ")[0] == cid)


def test_documented_command_grades_every_submission(graded):
    result = graded["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(graded["rows"]) == {*graded["made"], "pass rate"}
    assert "graded 9 submissions" in result.stderr and "peak memory" in result.stderr


def test_honest_submissions_land_in_their_rows(graded):
    rows, quiz = graded["rows"], checkpoint_id("quiz.missed_skills")
    assert rows["honest_complete"]["status"] == "passed" and rows["honest_complete"]["score"] == "3/3"
    buggy = rows["honest_buggy"]
    assert buggy["status"] == "failed" and buggy["score"] == "2/3" and _state(buggy, quiz) == "failed"
    # The checkpoint's own sentence, not a count of cells.
    assert f"checkpoint {quiz} failed at cell" in buggy["failures"]
    assert "review needed on: REST APIs" in buggy["failures"]


@pytest.mark.parametrize("name", ["print_instead_of_checkpoint", "checkpoint_redefined", "nbval_skip_markers",
                                  "solution_outputs_pasted", "sneaky", "runaway_output"])
def test_unfinished_work_gets_no_credit_whatever_it_printed_or_saved(graded, name):
    """The learner's starting notebook with a trick: only the environment checkpoint (no exercise) passes."""
    row = graded["rows"][name]
    environment = checkpoint_id("required_failures")
    assert row["status"] == "failed" and row["score"] == "1/3", row
    assert _state(row, environment) == "passed"
    assert "NotImplementedError: Exercise" in row["failures"]


def test_checkpoint_cells_run_as_the_reference_wrote_them(graded):
    rows = graded["rows"]
    notes = rows["print_instead_of_checkpoint"]["notes"]
    assert "ran as the course wrote them" in notes and "(checkpoint 00.1, changed)" in notes
    # Only prints left: the course's cells still run (the machine meets the environment check), the
    # exercises run as their starting stubs, and each missing exercise is named.
    reduced = rows["only_checkpoint_prints"]
    assert reduced["status"] == "failed" and reduced["score"] == "1/3"
    assert _state(reduced, checkpoint_id("required_failures")) == "passed"
    assert "Exercise 00.1: its cell was not found" in reduced["notes"]


def test_redefined_checkpoint_is_not_the_one_that_runs(graded):
    feedback = graded["course"] / "feedback"
    notebook = nbformat.read(feedback / "checkpoint_redefined.graded.ipynb", as_version=4)
    printed = [parse_line(line) for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.outputs if out.get("output_type") == "stream" for line in out["text"].splitlines()]
    assert "passed: all good" not in "".join(str(p) for p in printed)
    assert any(p is not None and not p.passed for p in printed)
    assert "prints a checkpoint line itself: only the checkpoint cell's own output counts" in \
        graded["rows"]["checkpoint_redefined"]["notes"]


def test_a_submission_reaches_nothing_outside_its_folder_and_leaves_nothing_running(graded):
    course, row = graded["course"], graded["rows"]["sneaky"]
    assert not list(course.rglob("escaped.txt")), "the submission wrote outside its private folder"
    notebook = nbformat.read(course / "feedback" / "sneaky.graded.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "other submission readable: False" in text
    assert "stopped by the grader" in row["notes"] and LEFTOVER_MARK in row["notes"]
    assert not _alive(LEFTOVER_MARK)
    # Three quarters of the machine's memory is more than the default cap (memory / 2 workers) allows.
    assert "ran out of memory under the grader's cap" in row["notes"]


def test_runaway_output_is_stopped_and_marked(graded):
    row = graded["rows"]["runaway_output"]
    assert "output stopped at the 2,000,000-byte cap" in row["notes"]
    notebook = nbformat.read(graded["course"] / "feedback" / "runaway_output.graded.ipynb", as_version=4)
    last = notebook.cells[-1]
    assert sum(len(o.get("text", "")) for o in last.outputs) < 2_100_000
    assert any(o.get("ename") == "KeyboardInterrupt" for o in last.outputs)


def test_gradebook_is_readable(graded):
    course, rows = graded["course"], graded["rows"]
    assert graded["header"][0].startswith("Lab 00") and "course version spark-labs" in graded["header"][2]
    assert any(h.startswith("legend: passed = ") for h in graded["header"])
    quiz = checkpoint_id("quiz.missed_skills")
    description = load_reference(SOLUTION).descriptions[quiz]
    assert f"{quiz} · {description}" in rows["pass rate"]  # columns are named with what they check
    assert _state(rows["pass rate"], quiz) == "1/9 (11%)"
    page = (course / "gradebook.html").read_text()
    assert "<details>" in page and "Legend" in page and "Scores" in page and "pass rate" in page
    feedback = (course / "feedback" / "honest_buggy.md").read_text()
    assert "review needed on: REST APIs" in feedback and "cell" in feedback


def test_a_hanging_notebook_is_stopped_with_everything_it_started(tmp_path):
    reference = load_reference(SOLUTION)
    row = grade_submission("hangs", make_hanging(tmp_path), reference, Limits(timeout=20, profile="tiny"))
    assert row.status == "timeout" and row.passed_count == 0 and row.seconds < 60
    assert not _alive(f"{LEFTOVER_MARK}-hang")


def test_grader_errors_are_rows_with_a_reason_and_exit_1(tmp_path, monkeypatch):
    """Nothing here executes a lab: a missing path, a file that is not a notebook, a kernel that cannot start."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "solutions").mkdir()
    shutil.copy(SOLUTION, tmp_path / "solutions")
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "garbled.ipynb").write_text("not json")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "subs" / "empty.ipynb")
    code = grade_cli(["subs", "nowhere/alice.ipynb", "--lab", "00", "--kernel", "no-such-kernel", "--timeout", "120"])
    assert code == 1
    _, rows = read_gradebook(tmp_path / "gradebook.csv")
    reasons = {r["student"]: (r["status"], r["reason"]) for r in rows}
    assert reasons["alice"][0] == "error" and "no such file: nowhere/alice.ipynb" in reasons["alice"][1]
    assert reasons["garbled"][0] == "error" and "not a readable notebook" in reasons["garbled"][1]
    assert reasons["empty"][0] == "error" and "nothing was executed" in reasons["empty"][1]
    assert "no-such-kernel" in reasons["empty"][1]


def test_a_missing_reference_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert grade_cli(["subs", "--lab", "00"]) == 2
    assert "no reference folder solutions/" in capsys.readouterr().err


def test_one_checkpoint_id_rule():
    assert validate_id("05.3") == "05.3"
    with pytest.raises(ValueError, match="NN.M"):
        validate_id("05.3b")
    assert parse_line("❌ Checkpoint 05.3 failed because the burst was not limited").detail == \
        "the burst was not limited"
    assert parse_line("✅ Checkpoint 05.3b passed: x") is None


def test_reference_with_a_bad_checkpoint_id_is_refused(tmp_path):
    notebook = nbformat.read(SOLUTION, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell('checkpoint("00.3b", True, "extra")'))
    nbformat.write(notebook, tmp_path / "00_bad.ipynb")
    with pytest.raises(ReferenceError, match=r"00\.3b.*00\.M"):
        load_reference(tmp_path / "00_bad.ipynb")


def test_reference_checkpoints_come_from_the_notebook():
    reference = load_reference(SOLUTION)
    assert reference.checkpoints == sorted(reference.checkpoints) and len(reference.checkpoints) == 3
    assert all(reference.descriptions.values())


def test_course_cells_run_as_written_where_the_reference_has_them(tmp_path):
    """No execution: a changed course cell runs as the reference has it, a deleted checkpoint cell runs after
    the cell that precedes it in the reference, and no submitted tag survives."""
    from spark_labs.grading.assemble import GRADER_KEY, assemble
    from spark_labs.notebooks.build import build_notebook

    reference = load_reference(SOLUTION)
    setup = next(c for c in reference.notebook.cells if c.cell_type == "code" and "environment_checks(" in c.source)
    environment = checkpoint_id("required_failures")

    submission = build_notebook(SOLUTION)
    position = next(i for i, c in enumerate(submission.cells) if "environment_checks(" in c.source)
    submission.cells[position].source = "checks = []  # nothing to check"
    submission.cells[position].metadata["tags"] = ["skip-execution"]
    gone = next(i for i, c in enumerate(submission.cells) if f'checkpoint("{environment}"' in c.source)
    before = submission.cells[gone - 1].source
    del submission.cells[gone]

    prepared = assemble(reference, submission)
    cells = prepared.notebook.cells
    assert cells[position].source == setup.source
    assert cells[position].metadata[GRADER_KEY]["runs"] == "reference"
    assert "(a course cell, changed)" in prepared.notes[-1] and "(checkpoint 00.3, deleted)" in prepared.notes[-1]
    restored = prepared.checkpoint_cells[environment]
    assert cells[restored].metadata[GRADER_KEY]["runs"] == "reference" and cells[restored - 1].source == before
    assert not any(c.metadata.get("tags") for c in cells)
    assert len(cells) == len(reference.notebook.cells)
