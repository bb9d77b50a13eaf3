"""Push answers through a lab's real checkpoints: run the lab once, then try answer after answer.

    with Rehearsal("02") as lab:          # the reference runs once: engines, measurements, checkpoints
        outcome = lab.answer("02.3", "return kv_bytes // bytes_per_token")
        assert outcome.state == "failed" and "vLLM allocated" in outcome.problem.message

The lab runs the way the grader runs it (:mod:`.judge`): the reference's cells in a grading kernel, the
exercise cells in a learner's kernel, only plain values crossing. ``answer`` puts ``code`` in place of the
exercise's ``BEGIN/END SOLUTION`` block, runs that exercise cell again in the learner's kernel, then the
exercise's checkpoint cell in the grading kernel, on the data this run measured, and returns what the
checkpoint decided. The reference's own answer is put back afterwards, so answers do not leak into each
other. This is how the course's tests prove every checkpoint against the wrong answers learners type.

The learner's kernel here has no wall (``--uncontained``): rehearsals run the course's own test answers.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import tempfile
import uuid
from pathlib import Path

import nbformat

from .assemble import GRADER_KEY, assemble
from .contract import solution_lines
from .evaluate import CellProblem, CheckpointOutcome, cell_problems, checkpoint_outcome
from .judge import PLAN_ENV
from .reference import Reference, find_reference, load_reference
from .sandbox import MARKER_ENV, Limits, learner_plan, module_command, stop_marked
from .worker import GuardedClient

ROOT_SOLUTIONS = Path(__file__).resolve().parents[3] / "solutions"


def replace_blocks(source: str, answers: list[str]) -> str:
    """``source`` with its BEGIN..END SOLUTION blocks replaced, in order, by ``answers`` (indented to fit)."""
    blocks = solution_lines(source)
    if len(blocks) != len(answers):
        raise ValueError(f"the exercise cell has {len(blocks)} solution block(s); {len(answers)} answer(s) given")
    lines = source.splitlines()
    for (first, last), answer in reversed(list(zip(blocks, answers))):
        indent = re.match(r"\s*", lines[first - 1]).group(0)
        lines[first:last - 1] = [indent + line if line.strip() else line for line in answer.strip("\n").splitlines()]
    return "\n".join(lines)


class Rehearsal:
    """A lab run kept open so answers can be pushed through its checkpoints (see the module's docstring)."""

    def __init__(self, lab: str, solutions: Path | None = None, limits: Limits | None = None,
                 through: str | None = None):
        """``through``: run the lab only as far as this checkpoint's cell (the exercises up to it are all the
        answers need; what follows may cost minutes of engine time)."""
        self.reference: Reference = load_reference(find_reference(solutions or ROOT_SOLUTIONS, lab))
        # A rehearsal checks answers, not the grading limits (tests/notebooks/test_grading*.py do): on a busy
        # 2-core box lab 01's engine loop ran past the 270 s a learner's cell gets under the default limits.
        self.limits = limits or Limits(contained=False, cell_timeout=900)
        self.assembled = assemble(self.reference, self.reference.notebook)
        cells = self.assembled.notebook.cells
        self.last_cell = self.assembled.checkpoint_cells[through] if through else len(cells) - 1
        self._stack = contextlib.ExitStack()
        self.token = uuid.uuid4().hex

    # ---------- running ----------
    def __enter__(self) -> Rehearsal:
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="spark-labs-rehearsal-")))
        for name in ("work", "tmp", "runtime", "judge"):
            (folder / name).mkdir()
        env = {**os.environ, MARKER_ENV: self.token, "PYTHONUNBUFFERED": "1"}
        learner_env = {**env, "TMPDIR": str(folder / "tmp"), "JUPYTER_RUNTIME_DIR": str(folder / "runtime")}
        plan = learner_plan(self.assembled.slots, module_command("learner_host"), learner_env, folder / "work",
                            folder / "judge" / "learner.log", self.limits)
        (folder / "judge" / "plan.json").write_text(json.dumps(plan))
        self.client = GuardedClient(self.assembled.notebook, output_limit=self.limits.output_limit,
                                    timeout=self.limits.cell_timeout, allow_errors=True,
                                    kernel_name=self.limits.kernel, resources={"metadata": {"path": str(folder)}})
        self._stack.callback(self._stop)
        self._stack.enter_context(self.client.setup_kernel(env={**env, PLAN_ENV: str(folder / "judge" / "plan.json")},
                                                           cwd=str(folder / "judge")))
        for index, cell in enumerate(self.assembled.notebook.cells[:self.last_cell + 1]):
            self.client.execute_cell(cell, index)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.run_silently("__spark_labs_judge__.close()")
        stop_marked(self.token)

    # ---------- answers ----------
    def outcome(self, exercise: str) -> CheckpointOutcome:
        """What the exercise's checkpoint decided in the run so far."""
        return checkpoint_outcome(self.assembled.notebook, self.assembled.checkpoint_cells[exercise], exercise)

    def reference_states(self) -> dict[str, str]:
        """Each checkpoint's state after the reference run ('passed' for every one when the lab is sound)."""
        return {exercise: self.outcome(exercise).state for exercise in self.reference.checkpoints
                if self.assembled.checkpoint_cells[exercise] <= self.last_cell}

    def drift(self) -> list[str]:
        """The cells run so far whose outputs nbval would not accept against the lab's recording (see
        :func:`spark_labs.notebooks.drift.output_drift`); answers run copies of cells, so this is the first run."""
        from ..notebooks.drift import output_drift

        return output_drift(self.reference.notebook, self.assembled.notebook.cells[:self.last_cell + 1])

    def _slot(self, exercise: str) -> tuple[int, int]:
        for index, cell in enumerate(self.assembled.notebook.cells):
            slot = cell.metadata.get(GRADER_KEY, {}).get("slot")
            if slot is not None and self.assembled.slots[slot].get("exercise") == exercise:
                return index, slot
        raise KeyError(f"lab {self.reference.lab} has no exercise {exercise}")

    def _run_cell(self, index: int) -> nbformat.NotebookNode:
        cell = copy.deepcopy(self.assembled.notebook.cells[index])
        cell.outputs = []
        self.client.execute_cell(cell, index)
        return cell

    def _run_exercise(self, exercise: str, source: str, also: tuple[str, ...]) -> list[CellProblem]:
        """The exercise cell with ``source``, then the reference cells up to its checkpoint that hold ``also``;
        the errors they raised. The exercise's outputs are cleared first, as in a fresh run: a failing answer
        must not be checked on the values the reference left behind."""
        index, slot = self._slot(exercise)
        outputs = list(self.assembled.slots[slot].get("outputs", {}))
        self.client.run_silently(f"__spark_labs_judge__.plan['slots'][{slot}]['source'] = {source!r}\n"
                                 f"for _name in {outputs!r}:\n    globals().pop(_name, None)")
        ran = [self._run_cell(index)]
        for between in range(index + 1, self.assembled.checkpoint_cells[exercise]):
            if any(text in self.assembled.notebook.cells[between].source for text in also):
                ran.append(self._run_cell(between))
        return cell_problems(nbformat.v4.new_notebook(cells=ran))

    def answer(self, exercise: str, code: str | list[str], also: tuple[str, ...] = (),
               restore: bool = True) -> CheckpointOutcome:
        """Run the exercise with ``code`` (one string per solution block) and its checkpoint; what it decided.
        ``also``: text found in reference cells between them that must run again too (cells that use the
        exercise's result before its checkpoint does). ``restore=False`` leaves this answer's results in place
        instead of running the reference's answer again: for an exercise that takes minutes (it measures
        engines), when no later answer needs the reference's results."""
        _, slot = self._slot(exercise)
        original = self.assembled.slots[slot]["source"]
        answers = [code] if isinstance(code, str) else list(code)
        try:
            raised = self._run_exercise(exercise, replace_blocks(original, answers), also)
            ran = self._run_cell(self.assembled.checkpoint_cells[exercise])
            outcome = checkpoint_outcome(nbformat.v4.new_notebook(cells=[ran]), 0, exercise)
            # A cell that raised before the checkpoint fails the answer, as it would in a fresh run (state such
            # as a quiz's record may otherwise still hold what the reference's answer left there), and it is
            # the cause to report: the checkpoint then only says the exercise is not done.
            return CheckpointOutcome(exercise, "failed", raised[0]) if raised else outcome
        finally:
            if restore:
                self._run_exercise(exercise, original, also)  # the reference's answer again, for the next answer
