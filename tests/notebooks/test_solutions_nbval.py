"""Notebook machinery: visible skips, and nbval proper (`spark-labs labs validate`) on the labs the rehearsals
run only in part (the others are compared with their recording on the rehearsal's run)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "spark-labs"
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def rehearsed_only_in_part(solution: Path) -> bool:
    """A lab whose test_answers_labNN.py stops its rehearsal early (``REHEARSE_THROUGH``). Every other lab runs
    whole in its rehearsal, whose ``test_the_run_matches_the_recording`` makes nbval's comparison on that run:
    running nbval on it as well would execute the lab twice (``make validate`` runs nbval on every lab)."""
    answers = Path(__file__).with_name(f"test_answers_lab{solution.name[:2]}.py")
    return not answers.exists() or re.search(r"^REHEARSE_THROUGH\s*=", answers.read_text(), re.M) is not None


def test_can_run_skips_the_block_visibly_without_an_error(tmp_path):
    notebook = new_notebook(cells=[new_code_cell(
        "from spark_labs.notebooks import can_run\n"
        "if can_run(False, 'needs a GPU'):\n    print('after the skip')"), new_code_cell("print('next cell runs')")])
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    first = "".join(o.get("text", "") for o in notebook.cells[0].outputs)
    assert "⏭ Skipped on profile tiny: needs a GPU" in first and "after the skip" not in first
    assert not any(o.output_type == "error" for o in notebook.cells[0].outputs)
    assert "next cell runs" in notebook.cells[1].outputs[0].text


@pytest.mark.timeout(2400)  # lab 01 starts every engine of the profile and measures each one
@pytest.mark.parametrize("solution", [s for s in SOLUTIONS if rehearsed_only_in_part(s)], ids=lambda p: p.name)
def test_solution_notebook_passes_nbval(solution, tmp_path):
    """Through the command instructors validate a machine with (docs/instructors.md), as they type it."""
    result = subprocess.run([str(SCRIPT), "labs", "validate", f"solutions/{solution.name}", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=2400)
    summary = (tmp_path / "summary.txt").read_text() if (tmp_path / "summary.txt").exists() else ""
    log = (tmp_path / f"{solution.stem}.log").read_text() if (tmp_path / f"{solution.stem}.log").exists() else ""
    assert result.returncode == 0, (result.stdout + log)[-4000:]
    assert f"{solution.name}: passed" in summary and (tmp_path / f"{solution.stem}.xml").is_file()
