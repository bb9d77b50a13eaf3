"""Learner code that tries to decide its own grade, graded with the documented command (relative paths, from the
course folder). Before the judge moved out of the learner's kernel (issue 22), each of these raised an untouched
starting notebook to 3/3: an IPython hook that rewrote each checkpoint's output, a rebound or replaced
``checkpoint``, a stdout filter turning ❌ into ✅, a toy object reporting a 4-bit footprint, quiz answers equal to
everything. Now the checkpoint cells run in a kernel no learner code touches, and only plain values cross, so each
gets what its real work earns: the environment check (00.3) and nothing else.
"""

from __future__ import annotations

import shutil
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell
from submission_fixtures import SOLUTION, checkpoint_id
from test_grading import SCRIPT, _state, documented_grade_command

from spark_labs.grading.boundary import containment_problem
from spark_labs.grading.gradebook import read_gradebook
from spark_labs.notebooks.build import build_notebook

pytestmark = pytest.mark.skipif(containment_problem() is not None,
                                reason=f"the grader's sandbox cannot be built here: {containment_problem()}")

PASS_LINES = "\n".join(f"✅ Checkpoint 00.{n} passed: done" for n in (1, 2, 3))

ATTACKS = {
    "post_run_hook": f"""
from IPython import get_ipython
from IPython.display import clear_output

def forge(result):
    clear_output()
    print({PASS_LINES!r})

get_ipython().events.register("post_run_cell", forge)
""",
    "checkpoint_rebound": """
import spark_labs.notebooks, spark_labs.notebooks.checkpoints as real
from spark_labs.notebooks.checkpoints import CheckpointResult

def always(checkpoint_id, passed, detail_ok, detail_fail="", strict=True):
    result = CheckpointResult(checkpoint_id, True, detail_ok)
    print(result.line)
    return result

real.checkpoint = spark_labs.notebooks.checkpoint = always
""",
    "module_replaced": """
import sys, types
fake = types.ModuleType("spark_labs.notebooks.checkpoints")
fake.__dict__.update(sys.modules["spark_labs.notebooks.checkpoints"].__dict__)
fake.checkpoint = lambda cid, passed, ok, fail="", strict=True: print(f"✅ Checkpoint {cid} passed: {ok}")
sys.modules["spark_labs.notebooks.checkpoints"] = fake
""",
    "stdout_filter": """
import sys

class Flip:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        return self.stream.write(text.replace("❌", "✅").replace("failed because", "passed:"))
    def __getattr__(self, name):
        return getattr(self.stream, name)

sys.stdout = Flip(sys.stdout)
sys.stderr = Flip(sys.stderr)
""",
}

# Forged answers, written into the exercise cells themselves.
FORGED_MODEL = """
class Linear4bit:  # looks like bitsandbytes' layer by name
    pass

class Toy:
    device = "cpu"
    def get_memory_footprint(self):
        return 1
    def modules(self):
        return [Linear4bit() for _ in range(30)]

model = Toy()
answer = "Paris"
"""
FORGED_QUIZ = """
class Everything(str):
    def __eq__(self, other):
        return True
    def __hash__(self):
        return 0

answers = {key: Everything("x") for key in ("rest_post", "sse", "docker_port", "latency_throughput",
                                            "prefill_decode", "kv_per_token", "kv_4x8k", "enforce_eager")}
"""


def _exercise_cell(notebook, exercise: str):
    return next(c for c in notebook.cells if c.cell_type == "code" and f"Exercise {exercise}" in c.source)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    course = tmp_path_factory.mktemp("judged")
    (course / "solutions").mkdir()
    shutil.copy(SOLUTION, course / "solutions" / SOLUTION.name)
    folder = course / "submissions" / "lab00"
    folder.mkdir(parents=True)
    for name, code in ATTACKS.items():
        notebook = build_notebook(SOLUTION)
        notebook.cells.insert(1, new_code_cell(code))  # first thing the learner runs
        nbformat.write(notebook, folder / f"{name}.ipynb")
    forged = build_notebook(SOLUTION)
    model_cell = _exercise_cell(forged, "00.1")
    model_cell.source = model_cell.source.replace('raise NotImplementedError("Exercise 00.1: replace this line with '
                                                  'your code")', FORGED_MODEL)
    quiz_cell = _exercise_cell(forged, "00.2")
    quiz_cell.source = quiz_cell.source.replace('raise NotImplementedError("Exercise 00.2: replace this line with '
                                                'your code")', FORGED_QUIZ)
    nbformat.write(forged, folder / "forged_objects.ipynb")
    shutil.copy(SOLUTION, folder / "honest.ipynb")  # beside them, a learner who did the work
    command = documented_grade_command()
    done = subprocess.run([str(SCRIPT), *command[1:]], cwd=course, capture_output=True, text=True, timeout=1200,
                          check=False)
    _, table = read_gradebook(course / "gradebook.csv")
    return done, {row["student"]: row for row in table if row["student"] != "pass rate"}, course


def test_every_submission_is_graded(judged):
    done, rows, _ = judged
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert set(rows) == {*ATTACKS, "forged_objects", "honest"}


@pytest.mark.parametrize("name", [*ATTACKS, "forged_objects"])
def test_learner_code_cannot_pass_a_checkpoint_it_did_not_earn(judged, name):
    _, rows, _ = judged
    environment = checkpoint_id("required_failures")
    passed = {cid for cid in (checkpoint_id("handson_ok"), checkpoint_id("quiz.missed_skills"), environment)
              if _state(rows[name], cid) == "passed"}
    assert passed == {environment}, rows[name]


def test_the_honest_learner_beside_them_gets_every_checkpoint(judged):
    _, rows, _ = judged
    assert rows["honest"]["status"] == "passed", rows["honest"]


def test_forged_answers_are_judged_on_what_they_really_are(judged):
    """The toy model's settings carried no quantization, so the grader's own load of it is not 4-bit; the
    string that equals everything crossed as the plain string it holds."""
    _, rows, course = judged
    failures = rows["forged_objects"]["failures"]
    assert "no layer is 4-bit" in failures and "'x' is not a number" in failures, failures
    graded = nbformat.read(course / "feedback" / "forged_objects.graded.ipynb", as_version=4)
    assert any("Linear4bit" in c.source for c in graded.cells)  # the learner's cell, as they wrote it
