"""The judge keeps a learner's output shown under a display id in its last state, as nbclient and JupyterLab do
(the course's progress bars are redrawn in place), and an update counts against the output cap by the bytes it
adds: a learner cannot grow a kept output past the cap by updating it."""

from __future__ import annotations

from spark_labs.grading.judge import _output, redraw, remember


def _content(display_id: str | None, text: str) -> dict:
    return {"data": {"text/plain": text}, "metadata": {}, "transient": {"display_id": display_id} if display_id else {}}


def _shown(shown: dict, display_id: str | None, text: str) -> dict:
    content = _content(display_id, text)
    output = _output("display_data", content)
    remember(shown, content, output)
    return output


def test_an_update_rewrites_the_output_shown_under_that_id_and_reports_the_bytes_added():
    shown: dict = {}
    bar, other = _shown(shown, "bar", "  0%|"), _shown(shown, "other", "other")
    assert redraw(shown, _content("bar", "100%| done"), room=1_000) == len("100%| done") - len("  0%|")
    assert redraw(shown, _content("bar", ""), room=1_000) == -len("100%| done")
    assert bar["data"] == {"text/plain": ""} and other["data"] == {"text/plain": "other"}


def test_an_update_larger_than_the_room_left_changes_nothing():
    shown: dict = {}
    bar = _shown(shown, "bar", "small")
    assert redraw(shown, _content("bar", "x" * 10_000), room=100) is None
    assert bar["data"] == {"text/plain": "small"}


def test_outputs_without_a_display_id_and_unknown_ids_are_left_alone():
    shown: dict = {}
    plain = _shown(shown, None, "plain")
    assert shown == {}
    assert redraw(shown, _content("never-shown", "x"), room=100) == 0
    assert plain["data"] == {"text/plain": "plain"}
