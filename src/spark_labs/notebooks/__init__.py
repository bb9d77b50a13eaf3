"""Notebook machinery: visible skips, "finish Exercise N.M first", and building learner notebooks (labs/)
from solutions/."""

from .exercises import ExerciseNotDone, require
from .skip import SKIP_MARK, can_run

__all__ = ["SKIP_MARK", "ExerciseNotDone", "can_run", "require"]
