"""What may cross from a learner's kernel to the judge, and how a submission's cells are placed in the graded
notebook. No process is started: the codec and the assembly are plain functions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from spark_labs.bench.records import Chunk, RequestRecord, TokenCounts
from spark_labs.grading.assemble import GRADER_KEY, assemble
from spark_labs.grading.contract import ContractError, read_contract, split_statements
from spark_labs.grading.exchange import NotPlain, dumps, from_plain, loads, to_plain
from spark_labs.grading.learner_side import call, send
from spark_labs.grading.reference import ReferenceError, load_reference
from spark_labs.notebooks.build import build_notebook

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("0*.ipynb"))


@pytest.mark.parametrize("value", [None, True, 3, -2.5, "text", [1, "a"], (1, 2), {1, 2}, {"a": 1, 2: (3, None)},
                                   float("inf"), {"nested": [{"deep": (1.5, "x")}]}])
def test_plain_values_cross_unchanged(value):
    assert loads(dumps(value)) == value


def test_nan_crosses_as_nan():
    assert math.isnan(loads(dumps(float("nan"))))


def test_tables_and_arrays_cross_with_their_types():
    frame = pd.DataFrame({"engine": ["vllm", "llama.cpp"], "ttft": [0.1, 0.2], "n": [1, 2]},
                         index=pd.Index(["a", "b"], name="run"))
    back = loads(dumps(frame))
    pd.testing.assert_frame_equal(back, frame)
    series = pd.Series([1.0, 2.0], index=["x", "y"], name="speedup")
    pd.testing.assert_series_equal(loads(dumps(series)), series)
    array = np.arange(6, dtype="float32").reshape(2, 3)
    assert np.array_equal(loads(dumps(array)), array) and loads(dumps(array)).dtype == np.float32
    assert loads(dumps(np.int64(7))) == 7


def test_the_courses_own_dataclasses_are_rebuilt_by_their_class():
    record = RequestRecord("r1", "engine", "chat", scheduled_ns=0, sent_ns=1, end_ns=9,
                           chunks=[Chunk(5, "hi")], output_tokens=TokenCounts(server=1))
    back = loads(dumps(record))
    assert type(back) is RequestRecord and back == record and type(back.chunks[0]) is Chunk


@pytest.mark.parametrize("forged", ["everything_equal", "str_subclass", "module", "function", "foreign_dataclass"])
def test_objects_that_could_lie_cannot_cross(forged):
    import dataclasses

    class Everything:
        def __eq__(self, other):
            return True

    class Sly(str):
        def __eq__(self, other):
            return True

    @dataclasses.dataclass
    class Outside:
        value: int = 1

    value = {"everything_equal": Everything(), "str_subclass": Sly("x"), "module": json,
             "function": lambda: 1, "foreign_dataclass": Outside()}[forged]
    if forged == "str_subclass":  # a str subclass crosses as the plain str it holds: its __eq__ stays behind
        back = loads(dumps(value))
        assert type(back) is str and back == "x" and back != "y"
        return
    with pytest.raises(NotPlain, match="cannot be graded"):
        to_plain(value)


@pytest.mark.parametrize("data", [{"__dataclass__": "os:PathLike", "fields": {}},
                                  {"__dataclass__": "subprocess:Popen", "fields": {"args": "id"}},
                                  {"__dataclass__": "spark_labs.grading.sandbox:run_judged", "fields": {}},
                                  {"__reduce__": ["os.system", ["id"]]}])
def test_decoding_builds_nothing_but_plain_values_and_course_dataclasses(data):
    with pytest.raises(NotPlain):
        from_plain(data)


def test_a_runaway_answer_stops_at_the_item_limit(monkeypatch):
    monkeypatch.setattr("spark_labs.grading.exchange.MAX_ITEMS", 1000)
    with pytest.raises(NotPlain, match="more than"):
        to_plain(list(range(5000)))


def test_the_learner_side_reports_missing_and_ungradable_outputs():
    namespace = {"ok": 3, "fn": len, "bad": object()}
    answer = json.loads(send(namespace, [["ok", "value"], ["fn", "function"], ["bad", "value"], ["gone", "value"]]))
    assert answer["values"]["ok"] == 3 and answer["values"]["fn"] == {"callable": True}
    assert "cannot be graded" in answer["problems"]["bad"] and answer["missing"] == ["gone"]


def test_a_learner_generator_crosses_with_the_items_before_its_exception():
    from spark_labs.grading.exchange import pack

    def reader(lines):
        for line in lines:
            if line == "boom":
                raise RuntimeError("the server failed mid-answer")
            yield {"line": line}

    answer = json.loads(call({"reader": reader}, "reader", pack(((["a", "b", "boom"],), {}))))
    assert answer["raised"]["type"] == "RuntimeError" and [from_plain(i) for i in answer["raised"]["items"]] == [
        {"line": "a"}, {"line": "b"}]


# --- contracts and assembly -------------------------------------------------------------------------------------

def test_every_reference_exercise_declares_a_contract_the_grader_accepts():
    for path in SOLUTIONS:
        reference = load_reference(path)
        exercises = {c.exercise for c in reference.contracts.values() if c.exercise}
        expected = {cid for cid in reference.checkpoints
                    if any(f"BEGIN SOLUTION Exercise {cid}" in c.source for c in reference.notebook.cells)}
        assert expected <= exercises, (path.name, expected - exercises)


def test_an_exercise_without_a_contract_is_refused_naming_the_cell(tmp_path):
    notebook = nbformat.read(SOLUTIONS[0], as_version=4)
    cell = next(c for c in notebook.cells if "BEGIN SOLUTION" in c.source)
    del cell.metadata["spark_labs"]
    nbformat.write(notebook, tmp_path / SOLUTIONS[0].name)
    with pytest.raises(ReferenceError, match="declares no contract"):
        load_reference(tmp_path / SOLUTIONS[0].name)


def test_a_contract_with_an_unknown_kind_is_refused():
    cell = new_code_cell("x = 1\n# BEGIN SOLUTION Exercise 02.1\ny = 2\n# END SOLUTION\n",
                         metadata={"spark_labs": {"exercise": "02.1", "outputs": {"y": "pickle"}}})
    with pytest.raises(ContractError, match="not one of"):
        read_contract(cell, 0, "02", "cell 1")


def test_the_reference_cell_splits_into_setup_answer_and_after():
    source = ("import math\nDATA = [1, 2]\n\n\ndef f(x):\n    # BEGIN SOLUTION Exercise 02.1\n    return x\n"
              "    # END SOLUTION\n\n\nresult = f(DATA)\nprint(result)")
    setup, after = split_statements(source, "cell")
    assert "DATA = [1, 2]" in setup and "def f" not in setup
    assert after.strip() == "result = f(DATA)\nprint(result)"


@pytest.fixture(scope="module")
def lab02():
    return load_reference(ROOT / "solutions" / "02_vllm_serving.ipynb")


def _runs(assembled):
    return [c.metadata.get(GRADER_KEY, {}).get("runs") for c in assembled.notebook.cells]


def test_course_cells_run_as_written_and_the_learners_exercise_cells_as_they_wrote_them(lab02):
    submission = build_notebook(lab02.path)
    exercise = next(i for i, c in enumerate(submission.cells) if "Exercise 02.1" in c.source and c.cell_type == "code")
    submission.cells[exercise].source = submission.cells[exercise].source.replace(
        'raise NotImplementedError("Exercise 02.1: replace this line with your code")', "return 0.5")
    setup = next(i for i, c in enumerate(submission.cells) if "mixed_lengths(" in c.source)
    submission.cells[setup].source = "lengths = [1] * 16  # changed by the learner"
    submission.cells.insert(exercise, new_code_cell("def helper():\n    return 1"))
    submission.cells.insert(exercise, new_markdown_cell("my notes"))
    assembled = assemble(lab02, submission)
    cells = assembled.notebook.cells
    assert "mixed_lengths(" in cells[setup].source  # the course's cell ran, not the change
    assert any("changed" in note for note in assembled.notes)
    slots = {s["kind"] for s in assembled.slots}
    assert slots == {"exercise", "added"}
    added = next(i for i, c in enumerate(cells) if c.source.startswith("def helper"))
    mine = next(i for i, c in enumerate(cells) if "return 0.5" in c.source)
    assert added < mine and cells[added - 1].source == "my notes"
    assert set(assembled.checkpoint_cells) == set(lab02.checkpoints)
    assert all(_runs(assembled)[i] == "reference" for i in assembled.checkpoint_cells.values())


def test_a_deleted_exercise_runs_as_its_starting_cell(lab02):
    submission = build_notebook(lab02.path)
    submission.cells = [c for c in submission.cells if "Exercise 02.3" not in c.source or c.cell_type != "code"]
    assembled = assemble(lab02, submission)
    slot = next(s for s in assembled.slots if s.get("exercise") == "02.3")
    assert "NotImplementedError" in slot["source"]
    assert any("Exercise 02.3" in note and "not found" in note for note in assembled.notes)


# --- written answers ----------------------------------------------------------------------------------------------

def _with_answer_cell(tmp_path) -> Path:
    notebook = nbformat.read(SOLUTIONS[0], as_version=4)
    notebook.cells.insert(3, new_markdown_cell("Engines stream tokens because users read as they arrive.",
                                               metadata={"tags": ["answer"], "spark_labs": {"answer": "00.a"}}))
    path = tmp_path / SOLUTIONS[0].name
    nbformat.write(notebook, path)
    return path


def test_what_a_learner_wrote_reaches_the_scores_file_and_an_instructors_score_survives_regrading(tmp_path):
    from spark_labs.grading.grade import GradeRow
    from spark_labs.grading.written import merge_scores, read_scores, score_label

    reference = load_reference(_with_answer_cell(tmp_path))
    assert reference.answers == {"00.a": "Engines stream tokens because users read as they arrive."}
    submission = build_notebook(reference.path)
    cell = next(c for c in submission.cells if "Your answer (00.a)" in c.source)
    cell.source = "=HYPERLINK(\"x\") Because a reader starts before the answer ends."
    blank = assemble(reference, build_notebook(reference.path)).written
    assert blank == {"00.a": ""}  # the placeholder left as it was is no answer
    written = assemble(reference, submission).written
    assert written["00.a"].startswith("=HYPERLINK")

    scores = tmp_path / "gradebook.written.csv"
    rows = [GradeRow("ana", "ana.ipynb", "passed", written=written),
            GradeRow("bo", "bo.ipynb", "failed", written=blank)]
    merged = merge_scores(rows, reference, scores)
    assert score_label(merged, "ana", "00.a") == "to score" and score_label(merged, "bo", "00.a") == "no answer"
    assert "'=HYPERLINK" in scores.read_text()  # no formula reaches a spreadsheet

    text = scores.read_text().replace(",,,", ",2/3,clear,", 1)  # the instructor scores ana's answer
    scores.write_text(text)
    assert read_scores(scores)[("ana", "00.a")]["score"] == "2/3"
    again = merge_scores(rows, reference, scores)  # re-grading, same answer
    assert score_label(again, "ana", "00.a") == "2/3" and again[("ana", "00.a")]["comment"] == "clear"
    rows[0].written = {"00.a": "A different answer."}
    changed = merge_scores(rows, reference, scores)
    assert score_label(changed, "ana", "00.a") == "2/3 (answer changed since scored)"
    assert changed[("ana", "00.a")]["learner_answer"] == "A different answer."


GIVEN = {"kv_bytes_per_token": "02.3", "relay_until_stop": "06.5", "TokenBucket": "05.3"}


@pytest.mark.parametrize(("source", "found"), [
    ("from spark_labs.sizing import kv_bytes_per_token as k\nk({})", "kv_bytes_per_token"),
    ("import spark_labs.sizing as s\ns.kv_bytes_per_token({})", "kv_bytes_per_token"),
    ("import spark_labs\nspark_labs.ui.relay.relay_until_stop", "relay_until_stop"),
    ("from spark_labs import ui\nui.relay_until_stop", "relay_until_stop"),  # a re-export
    ("from spark_labs.sizing import *\ndef mine(c):\n    return kv_bytes_per_token(c)", "kv_bytes_per_token"),
    ("from spark_labs.serve.limits import TokenBucket\nclass MyTokenBucket(TokenBucket):\n    pass", "TokenBucket"),
])
def test_a_learner_cell_taking_the_courses_own_answer_is_found(source, found):
    from spark_labs.grading.contract import library_answers_used

    assert library_answers_used(source, GIVEN) == [(found, GIVEN[found])]


@pytest.mark.parametrize("source", [
    "def kv_bytes_per_token(config, dtype_bytes=2):\n    return 2 * config['n'] * dtype_bytes",  # the same name, theirs
    "from spark_labs.sizing import *\ndef kv_bytes_per_token(c):\n    return 2",
    "import json\njson.kv_bytes_per_token",  # not the package
    "from spark_labs.bench import Load\nLoad()",  # the package, not an answer
    "this is not python(",  # running it reports the syntax error
])
def test_a_learners_own_code_is_not_taken_for_the_courses_answer(source):
    from spark_labs.grading.contract import library_answers_used

    assert library_answers_used(source, GIVEN) == []
