"""Grade submissions: restore the locked cells, execute alone, read the checkpoints this run printed.

One row per submission, with a status an instructor can act on:

* ``passed``  every checkpoint of the reference passed in this execution;
* ``failed``  at least one did not (each with its sentence, exception and cell);
* ``timeout`` the notebook ran past ``--timeout`` and was stopped; nothing counts;
* ``error``   the grader could not grade it (wrong path, not a notebook, the kernel did not start, nothing
  was executed, a process could not be stopped); the row says why and the command exits non-zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import nbformat

from .evaluate import CellProblem, CheckpointOutcome, cell_problems, checkpoint_outcome
from .reference import Reference
from .restore import restore_locked
from .sandbox import Limits, run_isolated

MEMORY_ERRORS = ("MemoryError", "Cannot allocate memory")


@dataclass
class GradeRow:
    student: str
    path: str
    status: str                                   # passed | failed | timeout | error
    checkpoints: dict[str, CheckpointOutcome] = field(default_factory=dict)
    problems: list[CellProblem] = field(default_factory=list)  # every cell that raised
    notes: list[str] = field(default_factory=list)
    reason: str = ""                              # why a row is an error or a timeout
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    graded: nbformat.NotebookNode | None = None   # the executed notebook, returned with the feedback

    @property
    def passed_count(self) -> int:
        return sum(outcome.passed for outcome in self.checkpoints.values())


def sanitize_file() -> Path:
    """nbval's sanitize file for CI's notebook tests (volatile output kept out of comparisons)."""
    return Path(str(resources.files("spark_labs") / "data" / "nbval_sanitize.cfg"))


def _not_run(reference: Reference) -> dict[str, CheckpointOutcome]:
    return {c: CheckpointOutcome(c, "not run") for c in reference.checkpoints}


def grade_submission(student: str, path: Path, reference: Reference, limits: Limits) -> GradeRow:
    start = time.monotonic()
    row = GradeRow(student, str(path), "error", _not_run(reference))
    if path.is_dir():
        row.reason = f"{path} is a folder with no notebook in it; check the path given to the grader"
        return row
    if not path.is_file():
        row.reason = f"no such file: {path} (looked from {Path.cwd()}); check the path given to the grader"
        return row
    try:
        submission = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a file that is not a notebook
        row.reason = f"not a readable notebook ({type(exc).__name__}: {str(exc)[:200]}); nothing was executed"
        return row
    prepared = restore_locked(reference, submission)
    run = run_isolated(path, prepared.notebook, sorted(set(prepared.checkpoint_cells.values())), limits)
    row.seconds, row.peak_rss_mb, row.graded = time.monotonic() - start, run.peak_rss_mb, run.notebook
    row.notes = list(prepared.notes)
    row.notes += [f"cell {i + 1}: output stopped at the {limits.output_limit:,}-byte cap and the cell interrupted"
                  for i in run.capped]
    row.notes += [f"still running when the notebook ended, stopped by the grader: {cmd}" for cmd in run.leftover]
    if run.unstoppable:
        row.reason = "the grader could not stop: " + "; ".join(run.unstoppable)
    elif run.timed_out:
        row.status = "timeout"
        row.reason = f"stopped after {limits.timeout:.0f} s (--timeout) before the notebook finished; nothing counts"
    elif run.notebook is None:
        row.reason = f"the grader's worker failed: {run.log_tail.strip()[-600:]}"
    elif run.cells_executed == 0:
        row.reason = f"nothing was executed: {run.kernel_error or 'no code cell ran'}"
    else:
        row.checkpoints = {c: checkpoint_outcome(run.notebook, prepared.checkpoint_cells[c], c)
                           for c in reference.checkpoints}
        row.problems = cell_problems(run.notebook)
        if run.kernel_error:
            row.notes.append(f"the kernel stopped during the run ({run.kernel_error}); later cells did not run")
        if limits.memory_limit and any(m in f"{p.exception} {p.message}" for p in row.problems for m in MEMORY_ERRORS):
            row.notes.append(f"a cell ran out of memory under the grader's cap of "
                             f"{limits.memory_limit / 2**30:.0f} GiB per process")
        row.status = "passed" if row.passed_count == len(reference.checkpoints) else "failed"
    return row


def grade_submissions(submissions: list[tuple[str, Path]], reference: Reference, limits: Limits,
                      workers: int = 2, on_done: Callable[[GradeRow], None] | None = None) -> list[GradeRow]:
    """Grade ``(student, path)`` pairs, ``workers`` at a time; returns only when every run has ended and its
    processes are gone, so a gradebook written from the rows cannot be touched by a submission."""

    def one(item: tuple[str, Path]) -> GradeRow:
        row = grade_submission(*item, reference, limits)
        if on_done:
            on_done(row)
        return row

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, submissions))
