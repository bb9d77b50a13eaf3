"""Instructor grading: re-execute each submission against the reference's locked checkpoints, alone, and
write a gradebook (CSV, HTML) and per-learner feedback. ``spark-labs grade --help`` is the entry point."""

from .grade import GradeRow, grade_submission, grade_submissions
from .reference import Reference, ReferenceError, load_reference

__all__ = ["GradeRow", "Reference", "ReferenceError", "grade_submission", "grade_submissions", "load_reference"]
