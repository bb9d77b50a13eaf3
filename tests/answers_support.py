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


# The two tests every tests/notebooks/test_answers_labNN.py imports (pytest collects them there, on its ``lab``).
def test_the_reference_answers_pass_every_checkpoint(lab):
    failed = {c: lab.outcome(c).problem for c, state in lab.reference_states().items() if state != "passed"}
    assert not failed, failed


def test_the_run_matches_the_recording(lab):
    """nbval's comparison, with the course's sanitize file, on the rehearsal's run of the reference: the lab's
    recorded outputs still hold as far as the rehearsal ran. This is what nbval of the solution would check,
    without running the lab a second time; test_solutions_nbval runs nbval proper on the labs rehearsed only
    in part."""
    drift = lab.drift()
    assert not drift, "\n".join(drift)
