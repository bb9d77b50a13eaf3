"""Notebook machinery: visible skips, "finish Exercise N.M first", and building learner notebooks (labs/)
from solutions/."""

from .checkpoints import checkpoint
from .exercises import ExerciseNotDone, require
from .skip import SKIP_MARK, can_run

__all__ = ["ExerciseNotDone", "SKIP_MARK", "can_run", "checkpoint", "require"]
