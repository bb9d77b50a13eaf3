"""Grade submissions: the reference's cells judge, the learner's run behind a wall; read what this run printed.

Each submission is assembled into a graded notebook (:mod:`.assemble`): the reference's own cells, checkpoint
cells included, run in a clean grading kernel; the learner's exercise cells (and cells they added) run in
the learner's kernel behind the wall, and only plain values cross (:mod:`.judge`).

One row per submission, with a status an instructor can act on:

* ``passed``  every checkpoint of the reference passed in this execution;
* ``failed``  at least one did not (each with its sentence, exception and cell);
* ``timeout`` the notebook ran past ``--timeout`` and was stopped; nothing counts;
* ``error``   the grader could not grade it (wrong path, not a notebook, a malformed notebook, the sandbox
  could not be built, the kernel did not start, nothing was executed, a process could not be stopped); the
  row says why and the command exits non-zero. One bad submission never stops the others.

Everything the grader spends on a submission counts against its ``--timeout``: assembling its graded notebook
as well as executing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat

from .assemble import assemble
from .boundary import hideable
from .evaluate import CellProblem, CheckpointOutcome, cell_problems, checkpoint_outcome
from .reference import Reference
from .sandbox import Limits, run_judged

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
    written: dict[str, str] = field(default_factory=dict)  # written-answer id -> the learner's text

    @property
    def passed_count(self) -> int:
        return sum(outcome.passed for outcome in self.checkpoints.values())


def _not_run(reference: Reference) -> dict[str, CheckpointOutcome]:
    return {c: CheckpointOutcome(c, "not run") for c in reference.checkpoints}


def hidden_from_submissions(reference: Reference, submissions: list[Path]) -> tuple[str, ...]:
    """What no submission may see: the reference's folder (or, where that folder also holds the course
    itself, every reference notebook in it) and every submission, with the folders they were found in."""
    folders = [reference.path.parent, *(p.parent for p in submissions)]
    files = [reference.path, *reference.path.parent.glob("*.ipynb"), *submissions]
    return hideable([*folders, *files])


def _readable_models() -> tuple[str, ...]:
    """The exported embedded model, bound read-only into each run (no submission re-exports it)."""
    from ..paths import cache_dir

    models = cache_dir("models")
    return (str(models),) if any(models.iterdir()) else ()


def grade_submission(student: str, path: Path, reference: Reference, limits: Limits,
                     hidden: tuple[str, ...] = ()) -> GradeRow:
    """One row for one submission, whatever the submission holds: a notebook the grader cannot process
    becomes an ``error`` row with the reason, never an exception that stops the class."""
    start = time.monotonic()
    try:
        return _grade(student, path, reference, limits, hidden, start)
    except Exception as exc:  # noqa: BLE001 - one malformed submission must not cost the class its gradebook
        row = GradeRow(student, str(path), "error", _not_run(reference), seconds=time.monotonic() - start)
        row.reason = f"the grader could not process this notebook ({type(exc).__name__}: {str(exc)[:300]})"
        return row


def _malformed(submission: nbformat.NotebookNode) -> str | None:
    """What makes a notebook impossible to grade, in the learner's words; None when it can be graded.
    Not the full schema: notebooks JupyterLab and other tools write deviate from it in harmless ways."""
    cells = submission.get("cells")
    if not isinstance(cells, list):
        return "not a valid notebook (it has no list of cells); nothing was executed"
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return f"not a valid notebook (cell {number} is not a code, markdown or raw cell); nothing was executed"
        if not isinstance(cell.get("source"), str):
            return (f"not a valid notebook (cell {number}'s source is a {type(cell.get('source')).__name__}, "
                    f"not text); nothing was executed")
    return None


def _grade(student: str, path: Path, reference: Reference, limits: Limits, hidden: tuple[str, ...],
           start: float) -> GradeRow:
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
    if problem := _malformed(submission):
        row.reason = problem
        return row
    prepared = assemble(reference, submission)
    row.written = prepared.written
    left = limits.timeout - (time.monotonic() - start)
    if left <= 0:
        row.status, row.seconds = "timeout", time.monotonic() - start
        row.reason = f"assembling its graded notebook alone took past {limits.timeout:.0f} s (--timeout); nothing ran"
        return row
    own_network = reference.learner_network != "host"
    run = run_judged(path, prepared.notebook, prepared.slots, replace(limits, timeout=left), hidden=hidden,
                     readable=_readable_models() if limits.contained else (), own_network=own_network)
    row.seconds, row.peak_rss_mb, row.graded = time.monotonic() - start, run.peak_rss_mb, run.notebook
    row.notes = list(prepared.notes)
    if not limits.contained:
        row.notes.append("graded without the sandbox (--uncontained): its processes shared this machine's files")
    elif reference.learner_network == "host":
        row.notes.append("its code shared this machine's network: this lab's exercises serve or call the grading "
                         "kernel's engines")
    row.notes += [f"cell {i + 1}: output stopped at the {limits.output_limit:,}-byte cap and the cell interrupted"
                  for i in run.capped]
    row.notes += [f"still running when the notebook ended, stopped by the grader: {cmd}" for cmd in run.leftover]
    if run.learner_failure and not run.not_contained:
        row.notes.append(f"your code's kernel stopped during grading ({run.learner_failure}); later exercises did "
                         f"not run")
    if run.not_contained:
        row.reason = f"not graded: {run.not_contained}"
    elif run.unstoppable:
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
        memory_error = any(m in f"{p.exception} {p.message}" for p in row.problems for m in MEMORY_ERRORS)
        if limits.memory_limit and (run.out_of_memory or memory_error):
            per = "for all its processes together" if limits.contained else "per process"
            row.notes.append(f"ran out of memory under the grader's cap of {limits.memory_limit / 2**30:.1f} GiB {per}")
        row.status = "passed" if row.passed_count == len(reference.checkpoints) else "failed"
    return row


def grade_submissions(submissions: list[tuple[str, Path]], reference: Reference, limits: Limits,
                      workers: int = 2, on_done: Callable[[GradeRow], None] | None = None,
                      grade: Callable[..., GradeRow] = grade_submission) -> list[GradeRow]:
    """Grade ``(student, path)`` pairs, ``workers`` at a time; returns only when every run has ended and its
    processes are gone, so a gradebook written from the rows cannot be touched by a submission. ``grade``
    stands in for :func:`grade_submission` with the same arguments (``--cluster`` runs it as a Ray task)."""

    hidden = hidden_from_submissions(reference, [path for _, path in submissions])

    def one(item: tuple[str, Path]) -> GradeRow:
        row = grade(*item, reference, limits, hidden)
        if on_done:
            on_done(row)
        return row

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, submissions))
