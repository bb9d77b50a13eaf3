"""Checkpoint cells: verify a learner's result on real criteria and print one stable line.

The printed line is what nbval compares, so it must not contain timings, ports or paths:

    ✅ Checkpoint 01.1 passed: report holds real measurements for 3 engines
    ❌ Checkpoint 01.1 failed because only 1 engine was measured (need ≥2)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckpointResult:
    checkpoint: str
    passed: bool
    detail: str

    @property
    def line(self) -> str:
        if self.passed:
            return f"✅ Checkpoint {self.checkpoint} passed: {self.detail}"
        return f"❌ Checkpoint {self.checkpoint} failed because {self.detail}"

    def __bool__(self) -> bool:
        return self.passed


def checkpoint(checkpoint_id: str, passed: bool, detail_ok: str, detail_fail: str = "",
               strict: bool = True) -> CheckpointResult:
    """Print the stable checkpoint line; with ``strict`` a failure raises so nbval marks the cell red."""
    result = CheckpointResult(checkpoint_id, bool(passed), detail_ok if passed else (detail_fail or detail_ok))
    print(result.line)
    if strict and not result.passed:
        raise AssertionError(result.line)
    return result
