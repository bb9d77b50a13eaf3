"""Labs 00, 01 and 05 as a learner meets them: unfinished exercises fail with a message that names the
exercise, hints never give a solution line away, learner-facing text has no authoring words, and the
pieces behind that (require, the quiz, stubs, quiet logs, one live chart) behave."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path

import nbformat
import pytest
from course import LABS, NAMES_AN_EXERCISE, ROOT

from spark_labs.notebooks import ExerciseNotDone, checkpoint, require
from spark_labs.notebooks.build import BEGIN, END, build_notebook, strip_solution
from spark_labs.notebooks.checkpoints import CheckpointFailed
from spark_labs.prereq.handson import KNOWN_HARMLESS_WARNING, hide_known_bitsandbytes_warning
from spark_labs.prereq.skills import Quiz
from spark_labs.serve.logs import LogCollector, configure, log

# ---------- require: "finish Exercise N.M first" ----------

def test_require_returns_the_notebook_variables():
    x, y = 1, 2  # noqa: F841 - locals are not the notebook namespace
    globals()["_lab_value"] = 41
    try:
        assert require("00.1", "_lab_value") == 41
        assert require("00.1") is None
    finally:
        del globals()["_lab_value"]


def test_require_names_the_exercise_for_a_missing_variable_or_result():
    with pytest.raises(ExerciseNotDone, match=r"^finish Exercise 00\.1 first: `model` is not set yet"):
        require("00.1", "model")
    with pytest.raises(ExerciseNotDone, match=r"^finish Exercises 05\.2 and 05\.3 first"):
        require(("05.2", "05.3"), "mine")
    with pytest.raises(ExerciseNotDone, match=r"^finish Exercise 01\.2 first: no engine has been measured yet$"):
        require("01.2", done=[], what="no engine has been measured yet")


def test_a_failed_checkpoint_prints_its_line_once_and_shows_one_hint_not_a_traceback(capsys):
    """In JupyterLab a failed checkpoint used to print its ❌ line, then again in an AssertionError traceback
    through the library; now IPython shows one hint line (``_render_traceback_``) under the printed line."""
    with pytest.raises(CheckpointFailed) as failed:
        checkpoint("02.3", False, "right", "the capacity ignores whole blocks")
    printed = capsys.readouterr().out
    assert printed == "❌ Checkpoint 02.3 failed because the capacity ignores whole blocks\n"
    assert isinstance(failed.value, AssertionError) and str(failed.value) == printed.strip()  # the grader reads it
    shown = failed.value._render_traceback_()
    assert len(shown) == 1 and "Exercise 02.3" in shown[0] and "❌" not in shown[0]


def test_require_rejects_an_id_that_is_not_nn_m():
    with pytest.raises(ValueError, match="NN.M"):
        require("1.2")


# ---------- the lab 00 quiz ----------

def test_quiz_accepts_the_port_mapping_with_or_without_the_flag():
    quiz = Quiz()
    for answer in ("8000:8000", "-p 8000:8000", "--publish=8000:8000"):
        assert quiz.answer("docker_port", answer).correct, answer
    assert not quiz.answer("docker_port", "8000").correct


def test_quiz_shows_the_answer_only_after_a_second_miss_or_on_request():
    quiz = Quiz()
    explanation = quiz.question("kv_per_token").explain
    first = quiz.answer("kv_per_token", 3)
    assert not first.correct and explanation not in first.message and "try again" in first.message
    second = quiz.answer("kv_per_token", 4)
    assert explanation in second.message
    assert explanation in Quiz().reveal("kv_per_token")


def test_quiz_lists_its_keys_and_refuses_an_unknown_one_by_naming_them():
    quiz = Quiz()
    assert quiz.keys[0] == "rest_post" and "docker_port" in quiz.keys
    with pytest.raises(ValueError, match="use one of the keys rest_post, sse"):
        quiz.submit({"docker": "-p 8000:8000"})


def test_quiz_summary_is_a_plain_text_record():
    quiz = Quiz()
    quiz.answer("rest_post", "POST")
    quiz.answer("sse", 0)
    lines = quiz.summary().splitlines()
    assert lines[0] == "✅ rest_post (REST APIs)" and lines[1] == "❌ sse (REST APIs)"
    assert lines[2] == "· docker_port (Docker): not answered"


# ---------- stubs, logs, warnings, the live chart ----------

def test_a_stub_block_keeps_a_generator_a_generator():
    source = ("async def events():\n    # BEGIN SOLUTION Exercise 05.1\n"
              "    # STUB: yield 'Exercise 05.1: not written yet'\n    yield 'done'\n    # END SOLUTION\n")
    assert strip_solution(source, "Exercise 05.1") == "async def events():\n    yield 'Exercise 05.1: not written yet'"


def test_the_05_1_stub_streams_an_error_event_naming_the_exercise():
    """The learner's unfinished sse_events, run as the app runs it: its one event is an OpenAI-style error
    that the official client raises as APIError with this message (no server traceback)."""
    lab = build_notebook(ROOT / "solutions" / "05_production_api.ipynb")
    cell = next(c for c in lab.cells if c.cell_type == "code" and "async def sse_events" in c.source)
    namespace: dict = {}
    exec(cell.source, namespace)  # noqa: S102 - the learner's own cell

    async def first_events():
        return [event async for event in namespace["sse_events"](None, "m")]

    events = asyncio.run(first_events())
    payload = json.loads(events[0].removeprefix("data: "))
    assert NAMES_AN_EXERCISE.search(payload["error"]["message"])


def test_gateway_log_lines_are_collected_instead_of_printed(capfd):
    configure()
    with LogCollector() as collected:
        log(logging.WARNING, "upstream failed", upstream="127.0.0.1:1", kind="connect")
    log(logging.WARNING, "after the collector")
    assert collected.lines[0]["msg"] == "upstream failed" and collected.lines[0]["kind"] == "connect"
    assert list(collected.frame().columns) == ["level", "msg", "upstream", "kind"]
    err = capfd.readouterr().err
    assert "upstream failed" not in err and "after the collector" in err


def test_only_the_known_bitsandbytes_warning_is_hidden(caplog):
    hide_known_bitsandbytes_warning()
    hide_known_bitsandbytes_warning()  # twice: still one filter
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning(KNOWN_HARMLESS_WARNING + " from kernels-community: No module named 'kernels'.")
        logger.warning("something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]


# ---------- the learner notebooks themselves ----------

def _learner_cells(name: str):
    return nbformat.read(ROOT / "labs" / f"{name}.ipynb", as_version=4).cells


@pytest.mark.parametrize("name", LABS)
def test_no_learner_facing_cell_mentions_seeds(name):
    for cell in _learner_cells(name):
        assert not re.search(r"\bseeds?\b", cell.source, re.IGNORECASE), cell.source[:200]
        assert "module README" not in cell.source


def _solution_blocks(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN.match(line):
            inside = True
        elif END.match(line):
            inside = False
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def _hint_fragments(text: str) -> set[str]:
    """Every hint line and every inline code span in it, stripped the way a learner would copy them."""
    fragments = set()
    for line in text.splitlines():
        line = re.sub(r"^\s*(#\s*HINT:|[*-]|\d+\.)\s*", "", line).strip()
        fragments.add(line)
        fragments.update(span.strip() for span in re.findall(r"`([^`]+)`", line))
    return fragments - {""}


@pytest.mark.parametrize("name", LABS)
def test_each_exercise_has_stepped_hints_that_give_no_solution_line_away(name):
    cells = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4).cells
    exercises = [i for i, c in enumerate(cells) if c.cell_type == "code" and "# BEGIN SOLUTION" in c.source]
    assert exercises
    for i in exercises:
        hint = cells[i - 1]
        assert hint.cell_type == "markdown" and hint.source.count("<details>") >= 2, \
            f"cell {i}: the exercise needs a hints cell above it (a nudge, then a formula)"
        solution = set(_solution_blocks(cells[i].source))
        given_away = _hint_fragments(hint.source) & solution
        assert not given_away, f"cell {i}: hints repeat solution lines {given_away}"
        assert "# HINT:" not in cells[i].source, "hints live in the collapsed cell above, in steps"


# ---------- make lab ----------

def test_make_lab_passes_allow_root_only_to_root_and_opens_the_course_map():
    from spark_labs.notebooks.lab_server import jupyter_command

    as_root = jupyter_command(Path("labs"), uid=0)
    assert "--allow-root" in as_root and "--LabApp.default_url=/lab/tree/README.md" in as_root
    assert "--allow-root" not in jupyter_command(Path("labs"), uid=1000)
    assert "lab: install\n\t$(PY) -m spark_labs.cli labs open\n" in (ROOT / "Makefile").read_text()


def test_lab_settings_are_merged_into_existing_overrides(tmp_path):
    from spark_labs.notebooks.lab_server import write_overrides

    path = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    settings = json.loads(write_overrides(tmp_path).read_text())
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert settings["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": False}
    # no news pop-up on a machine that may have no internet (it covered the notebook in JupyterLab 4)
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_labs_open_from_the_wrong_folder_says_what_to_do(tmp_path, capsys):
    from spark_labs.notebooks.cli import main

    assert main(["open", "--labs", str(tmp_path)]) == 1
    assert "run this from the repository root" in capsys.readouterr().out


def test_a_generated_lab_opens_with_the_metadata_its_kernel_reports():
    """JupyterLab marks a notebook modified when the kernel's metadata differs from the file's (checked in
    Chromium: a generated lab opened dirty before, and clean once these fields match)."""
    from ipykernel.ipkernel import IPythonKernel

    from spark_labs.notebooks.lab_server import CourseContents, fill_kernel_metadata, jupyter_command

    generated = build_notebook(ROOT / "solutions" / "00_prerequisites.ipynb").metadata
    fill_kernel_metadata(generated)
    assert generated["language_info"] == IPythonKernel.language_info
    assert generated["kernelspec"]["name"] == "python3" and generated["kernelspec"]["display_name"]
    saved = {"kernelspec": {"name": "python3", "display_name": "Python 3"},  # as nbclient records it
             "language_info": {"name": "python", "version": "3.12.1"}}
    fill_kernel_metadata(saved)
    assert saved["language_info"]["version"] == "3.12.1"  # a learner's saved file stays as saved
    # but names the kernel as JupyterLab will once it starts it, so the notebook does not open as modified
    assert saved["kernelspec"]["display_name"] == generated["kernelspec"]["display_name"] != "Python 3"
    assert "--ServerApp.contents_manager_class=spark_labs.notebooks.lab_server.CourseContents" in \
        jupyter_command(Path("labs"), uid=1)
    assert CourseContents.__name__ == "CourseContents"


@pytest.mark.parametrize("name", LABS)
def test_every_name_an_exercise_must_set_is_given_to_the_learner(name):
    """An exercise whose answer a later cell reads by name says that name, in its text or in the code the
    learner's copy keeps (06.3's variable was once named only in a hint)."""
    cells = nbformat.read(ROOT / "solutions" / f"{name}.ipynb", as_version=4).cells
    for i, cell in enumerate(cells):
        contract = cell.get("metadata", {}).get("spark_labs", {})
        if "exercise" not in contract:
            continue
        text, j = "", i - 1
        while j >= 0 and cells[j].cell_type == "markdown":
            text, j = cells[j].source + text, j - 1
        kept, inside = [], False
        for line in cell.source.splitlines():
            if BEGIN.match(line) or END.match(line):
                inside = BEGIN.match(line) is not None
            elif not inside:
                kept.append(line)
        kept_code = "\n".join(kept)
        for output in contract.get("outputs", {}):
            assert output in text or output in kept_code, f"{contract['exercise']}: `{output}` is never named"
