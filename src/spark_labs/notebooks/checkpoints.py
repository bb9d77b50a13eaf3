"""Checkpoint cells: verify a learner's result on real criteria and print one stable line.

The printed line is what the grader reads, so it must not contain timings, ports or paths:

    ✅ Checkpoint 01.2 passed: report holds real measurements for 3 engines
    ❌ Checkpoint 01.2 failed because only 1 engine was measured (need ≥2)

This module holds the one rule for checkpoint ids (``NN.M``: lab ``NN``, exercise ``M``, so exercise
05.3 is checked by checkpoint 05.3) and the parsers the grader uses for cells and lines, so the course's
notebooks and the grader can never disagree about what a checkpoint is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHECKPOINT_ID = re.compile(r"\d{2}\.\d+")
PASSED_MARK, FAILED_MARK = "✅", "❌"
_LINE = re.compile(rf"^(?P<mark>{PASSED_MARK}|{FAILED_MARK}) Checkpoint (?P<id>{CHECKPOINT_ID.pattern}) "
                   r"(?:passed: (?P<passed>.*)|failed because (?P<failed>.*))$")
# A call with a literal id, as checkpoint cells write it: checkpoint("05.3", ...).
_CALL = re.compile(r"""\bcheckpoint\(\s*(?P<quote>["'])(?P<id>[^"'\n]*)(?P=quote)""")


def validate_id(checkpoint_id: str) -> str:
    """``checkpoint_id`` unchanged if it follows the rule; otherwise a ValueError that says the rule."""
    if not isinstance(checkpoint_id, str) or not CHECKPOINT_ID.fullmatch(checkpoint_id):
        raise ValueError(f"checkpoint id {checkpoint_id!r} does not follow the rule NN.M (two-digit lab number, "
                         f"a dot, the exercise number, e.g. '05.3'): exercise N.M is checked by checkpoint N.M")
    return checkpoint_id


@dataclass(frozen=True)
class CheckpointResult:
    checkpoint: str
    passed: bool
    detail: str

    @property
    def line(self) -> str:
        if self.passed:
            return f"{PASSED_MARK} Checkpoint {self.checkpoint} passed: {self.detail}"
        return f"{FAILED_MARK} Checkpoint {self.checkpoint} failed because {self.detail}"

    def __bool__(self) -> bool:
        return self.passed


def parse_line(line: str) -> CheckpointResult | None:
    """The result a printed checkpoint line states, or None if ``line`` is not one."""
    match = _LINE.match(line.rstrip("\r\n"))
    if not match:
        return None
    passed = match.group("mark") == PASSED_MARK
    return CheckpointResult(match.group("id"), passed, match.group("passed" if passed else "failed"))


def ids_called(source: str) -> list[str]:
    """Checkpoint ids a cell's code passes to ``checkpoint(...)``, in order (not validated)."""
    return [match.group("id") for match in _CALL.finditer(source)]


class CheckpointFailed(AssertionError):
    """A strict checkpoint that failed: the cell turns red and Run All stops there."""

    def __init__(self, result: CheckpointResult):
        self.result = result
        super().__init__(result.line)

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a library traceback: the ❌ line printed just above says why, once.
        exercise = self.result.checkpoint
        return [f"↑ fix Exercise {exercise} (the line above says what is wrong), then run its cell and this one again"]


def checkpoint(checkpoint_id: str, passed: bool, detail_ok: str, detail_fail: str = "",
               strict: bool = True) -> CheckpointResult:
    """Print the stable checkpoint line; with ``strict`` a failure raises so the cell turns red."""
    result = CheckpointResult(validate_id(checkpoint_id), bool(passed),
                              detail_ok if passed else (detail_fail or detail_ok))
    print(result.line)
    if strict and not result.passed:
        raise CheckpointFailed(result)
    return result
