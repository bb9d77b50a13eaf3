"""What every tests/notebooks/test_answers_labNN.py does with an answer a learner might type: push it through
the lab's real checkpoint (a rehearsal, see the ``lab`` fixture) and expect a failure whose message names the
mistake."""

from __future__ import annotations


def assert_fails_naming(lab, exercise: str, code: str | list[str], says: str, **options) -> None:
    """``code`` in ``exercise`` must fail its checkpoint with a message containing ``says``."""
    outcome = lab.answer(exercise, code, **options)
    assert outcome.state == "failed" and says in outcome.problem.message, outcome


def wrong_cases(wrong: dict[str, dict]) -> list:
    """``{exercise: {mistake: (code, says)}}`` as pytest parameters ``(exercise, mistake)``, each named
    ``exercise-mistake``."""
    import pytest

    return [pytest.param(exercise, mistake, id=f"{exercise}-{mistake}")
            for exercise, mistakes in wrong.items() for mistake in mistakes]
