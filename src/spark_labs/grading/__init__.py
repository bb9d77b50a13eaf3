"""Instructor grading: re-execute submitted notebooks with nbval and write a gradebook."""

from .grade import GradeRow, grade_notebook, grade_submissions, write_gradebook

__all__ = ["GradeRow", "grade_notebook", "grade_submissions", "write_gradebook"]
