"""Read a grade off the executed notebook: only what this execution printed counts.

A checkpoint passes when its cell (the reference's, run in the grading kernel) ran, printed the passed line
for its own id and did not raise. Anything else is a failure with the checkpoint's own sentence (``failed
because ...``) or, if the cell raised before printing one, the exception's name and message. Cells are
numbered as the learner finds them in the graded notebook they get back: ``cell 12`` is the twelfth cell from
the top, ``In [7]`` the execution count JupyterLab shows beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..notebooks.checkpoints import parse_line

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class CellProblem:
    cell: int              # 1-based position in the graded notebook
    prompt: int | None     # execution count (In [n])
    exception: str         # exception name, "" when the cell did not raise
    message: str

    @property
    def where(self) -> str:
        return f"cell {self.cell}" + (f" · In [{self.prompt}]" if self.prompt else "")

    def sentence(self) -> str:
        head = f"{self.exception}: " if self.exception else ""
        return f"{self.where}: {head}{self.message}"


@dataclass(frozen=True)
class CheckpointOutcome:
    checkpoint: str
    state: str                       # passed | failed | not run
    problem: CellProblem | None = None

    @property
    def passed(self) -> bool:
        return self.state == "passed"


def _first_line(text: str) -> str:
    lines = [line for line in ANSI.sub("", text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def cell_problems(notebook) -> list[CellProblem]:
    """Every code cell that raised, in notebook order (all of them are kept)."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                problems.append(CellProblem(index + 1, cell.get("execution_count"), output.get("ename", ""),
                                            _first_line(output.get("evalue", "")) or "(no message)"))
    return problems


def checkpoint_outcome(notebook, index: int, checkpoint_id: str) -> CheckpointOutcome:
    cell = notebook.cells[index]
    prompt = cell.get("execution_count")
    if prompt is None and not cell.get("outputs"):
        return CheckpointOutcome(checkpoint_id, "not run",
                                 CellProblem(index + 1, None, "", "the cell was never executed"))
    stated = [result for output in cell.outputs if output.get("output_type") == "stream"
              for result in map(parse_line, output.get("text", "").splitlines())
              if result is not None and result.checkpoint == checkpoint_id]
    errors = [output for output in cell.outputs if output.get("output_type") == "error"]
    if errors:
        error = errors[0]
        said = parse_line(_first_line(error.get("evalue", "")))
        message = said.detail if said is not None else _first_line(error.get("evalue", "")) or "(no message)"
        return CheckpointOutcome(checkpoint_id, "failed", CellProblem(index + 1, prompt, error.get("ename", ""),
                                                                      message))
    failed = [result for result in stated if not result.passed]
    if failed:
        return CheckpointOutcome(checkpoint_id, "failed", CellProblem(index + 1, prompt, "", failed[0].detail))
    if stated:
        return CheckpointOutcome(checkpoint_id, "passed")
    return CheckpointOutcome(checkpoint_id, "failed",
                             CellProblem(index + 1, prompt, "", "the checkpoint cell ran but printed no "
                                                               "checkpoint line"))
