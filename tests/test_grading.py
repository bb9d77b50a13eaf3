"""Grading real lab-00 submissions: each way a submission goes wrong lands in the right gradebook row."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import psutil
import pytest

from spark_labs.grading.cli import main as grade_cli
from spark_labs.grading.grade import expected_checkpoints, grade_notebook

sys.path.insert(0, str(Path(__file__).parent))
from submission_fixtures import SOLUTION, make_submissions  # noqa: E402

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    return make_submissions(tmp_path_factory.mktemp("submissions"))


def test_reference_solution_declares_three_checkpoints():
    assert expected_checkpoints(SOLUTION) == ["00.1", "00.2", "00.3"]


def test_gradebook_rows_for_each_kind_of_submission(submissions, tmp_path):
    out = tmp_path / "gradebook.csv"
    html = tmp_path / "gradebook.html"
    chosen = [submissions[name] for name in ("correct", "undone", "raises", "faked")]
    code = grade_cli([*map(str, chosen), "--lab", "00", "--out", str(out), "--html", str(html),
                      "--solutions", str(SOLUTION.parent), "--profile", "tiny", "--workers", "2",
                      "--timeout", "400", "--cell-timeout", "200"])
    assert code == 0
    rows = {r["submission"]: r for r in csv.DictReader(out.open())}
    assert rows["correct"]["status"] == "passed" and rows["correct"]["checkpoints_passed"] == "3/3"
    assert rows["undone"]["status"] == "error"
    assert rows["undone"]["checkpoint_00.1"] == "not run" and rows["undone"]["checkpoint_00.2"] == "failed"
    assert rows["raises"]["status"] == "error" and rows["raises"]["checkpoint_00.3"] == "error"
    assert rows["raises"]["checkpoint_00.2"] == "passed"
    # The hand-edited passes do not survive re-execution.
    assert rows["faked"]["checkpoint_00.1"] != "passed" and rows["faked"]["checkpoint_00.2"] == "mismatch"
    assert int(rows["faked"]["mismatches"]) >= 1
    assert "<table" in html.read_text()


def test_a_hanging_notebook_is_killed_with_its_kernel(submissions):
    before = {p.pid for p in psutil.process_iter() if "ipykernel" in " ".join(p.cmdline())}
    row = grade_notebook(submissions["hangs"], ["00.1", "00.2", "00.3"], timeout=25, cell_timeout=600)
    assert row.status == "timeout" and row.seconds < 60
    assert row.checkpoints_passed == 0  # its saved "✅" lines were never reproduced
    after = {p.pid for p in psutil.process_iter() if "ipykernel" in " ".join(p.cmdline())}
    assert after <= before, "the hanging notebook's kernel survived"
