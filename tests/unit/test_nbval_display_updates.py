"""``labs validate``'s nbval plugin applies display updates the way nbclient and JupyterLab do: an output shown
under a display id ends in its last state (the course's progress bars are redrawn that way)."""

from __future__ import annotations

from nbformat import NotebookNode

from spark_labs.notebooks.nbval_iopub import apply_display_updates


def _shown(display_id: str | None, text: str, kind: str = "display_data") -> dict:
    transient = {"display_id": display_id} if display_id else {}
    return {"msg_type": kind, "content": {"data": {"text/plain": text}, "metadata": {}, "transient": transient}}


def _as_nbval_stores_it(message: dict) -> NotebookNode:
    out = NotebookNode(output_type=message["msg_type"])
    out["data"] = message["content"]["data"]  # what nbval's runtest does
    return out


def test_an_update_rewrites_the_output_nbval_holds_for_that_display_id():
    shown: dict = {}
    bar = _as_nbval_stores_it(apply_display_updates(_shown("bar", "  0%|"), shown))
    other = _as_nbval_stores_it(apply_display_updates(_shown("other", "other"), shown))
    apply_display_updates(_shown("bar", "50%|", "update_display_data"), shown)
    apply_display_updates(_shown("bar", "", "update_display_data"), shown)
    assert bar["data"] == {"text/plain": ""} and other["data"] == {"text/plain": "other"}


def test_outputs_without_a_display_id_are_left_as_they_are():
    shown: dict = {}
    message = _shown(None, "plain")
    data = message["content"]["data"]
    assert apply_display_updates(message, shown)["content"]["data"] is data and shown == {}
    # an update for an id never shown (another cell's, or before this kernel) changes nothing
    apply_display_updates(_shown("gone", "x", "update_display_data"), shown)
    assert shown == {}
