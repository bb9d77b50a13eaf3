"""Run a cell's work only where the profile has what it needs; otherwise say so, visibly.

    if can_run(ENGINES["trtllm"].availability(), "TensorRT-LLM needs an NVIDIA GPU"):
        handle = launch("trtllm")
        ...

On a machine without it, ``can_run`` prints ``⏭ Skipped on profile tiny: TensorRT-LLM needs an NVIDIA
GPU`` and returns False, so the block does not run and no number is invented. The line is the record:
the grader and the checkpoint helpers count ``⏭`` lines as skipped, never as passed. (A cell cannot be
aborted half-way without IPython reporting an error, which is why this is a condition, not an exception.)
"""

from __future__ import annotations

SKIP_MARK = "⏭ Skipped"


def can_run(condition: object, reason: str) -> bool:
    """True if ``condition`` is truthy; otherwise print the skip line and return False."""
    if condition:
        return True
    from ..profiles import get_profile

    print(f"{SKIP_MARK} on profile {get_profile().name}: {reason}")
    return False
