"""A cell that needs an unfinished exercise's result says "finish Exercise N.M first", never NameError.

    model, answer = require("00.1", "model", "answer")        # names the exercise's cell defines
    require("01.2", done=report.engine_names, what="no engine was measured yet")

``require`` looks the names up in the notebook's namespace (the caller's globals). A missing name, or a
false ``done``, raises :class:`ExerciseNotDone`, which Jupyter shows as one line instead of a traceback:
the learner should read which exercise to finish, not where inside the library the error surfaced.
"""

from __future__ import annotations

import sys

# Exercise N.M is checked by checkpoint N.M, so both ids follow the one rule notebooks/checkpoints.py defines.
from spark_labs.notebooks.checkpoints import CHECKPOINT_ID as EXERCISE_ID

_MISSING = object()


class ExerciseNotDone(RuntimeError):
    """Raised by :func:`require`; its message starts with "finish Exercise NN.M first"."""

    def __init__(self, exercises: tuple[str, ...], what: str):
        self.exercises = exercises
        named = (f"Exercise {exercises[0]}" if len(exercises) == 1 else
                 "Exercises " + ", ".join(exercises[:-1]) + f" and {exercises[-1]}")
        super().__init__(f"finish {named} first: {what}")

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of the traceback
        return [f"⏸ {self}"]


def require(exercise: str | tuple[str, ...], *names: str, done: object = True, what: str = ""):
    """Return the notebook variables ``names`` (one value, a tuple, or None when no names are given).

    Raises :class:`ExerciseNotDone` when one of them is not defined (or still None), or when ``done`` is
    false; ``what`` then says what is missing. ``exercise`` is one id ("01.2") or several, when a cell
    needs the results of more than one exercise.
    """
    exercises = (exercise,) if isinstance(exercise, str) else tuple(exercise)
    bad = [e for e in exercises if not isinstance(e, str) or not EXERCISE_ID.fullmatch(e)]
    if bad or not exercises:
        raise ValueError(f"require({exercise!r}): give exercise ids as NN.M, e.g. require('01.2', ...)")
    namespace = sys._getframe(1).f_globals
    values = []
    for name in names:
        value = namespace.get(name, _MISSING)
        if value is _MISSING or value is None:
            their = "its cell" if len(exercises) == 1 else "their cells"
            raise ExerciseNotDone(exercises, what or f"`{name}` is not set yet (replace the NotImplementedError "
                                                     f"line in {their} with your code, then run {their})")
        values.append(value)
    if not done:
        raise ExerciseNotDone(exercises, what or "its result is not there yet")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)
