"""Notebook machinery: visible skips, and building learner notebooks (labs/) from solutions/."""

from .skip import SKIP_MARK, can_run

__all__ = ["SKIP_MARK", "can_run"]
