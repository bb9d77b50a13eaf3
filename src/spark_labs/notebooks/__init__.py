"""Notebook machinery: visible skips, "finish Exercise N.M first", and building learner notebooks (labs/)
from solutions/."""

from ..progress import route_transformers_bars_once_imported
from .checkpoints import checkpoint
from .exercises import ExerciseNotDone, require
from .skip import SKIP_MARK, can_run

route_transformers_bars_once_imported()  # in a kernel: transformers' bars leave no dead widget either

__all__ = ["ExerciseNotDone", "SKIP_MARK", "can_run", "checkpoint", "require"]
