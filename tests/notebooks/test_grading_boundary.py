"""Submissions that attack the grader from inside their run, graded with the documented command (relative paths,
from the course folder). Each attack worked before the sandbox (issue 22): it read and executed the reference,
rewrote the reference and other learners' notebooks, planted a .pth file for later runs, wrote outside its
folder, and left a fork-hopping process that rewrote the gradebook after the grader exited. Inside the wall
(own PID and mount namespaces, read-only filesystem, hidden reference and submissions, no capabilities,
cgroup caps) each must fail, and the honest submissions beside them must still be graded right.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell
from submission_fixtures import SOLUTION
from test_grading import SCRIPT, _alive, documented_grade_command

from spark_labs.grading.boundary import containment_problem, scratch_base
from spark_labs.grading.gradebook import read_gradebook
from spark_labs.notebooks.build import build_notebook

pytestmark = pytest.mark.skipif(containment_problem() is not None,
                                reason=f"the grader's sandbox cannot be built here: {containment_problem()}")

MARK = f"spark-attack-{uuid.uuid4().hex[:10]}"
HOPPER_PORT = 47000 + os.getpid() % 2000
SERVICE_PORT = HOPPER_PORT + 2000


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _attack(folder: Path, name: str, code: str, first: bool = False) -> Path:
    """The learner's starting notebook (no exercise done) with ``code`` as an extra cell."""
    notebook = build_notebook(SOLUTION)
    notebook.cells.insert(1 if first else len(notebook.cells), new_code_cell(code))
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


def _course(tmp_path_factory, name: str, outside_tmp: bool = False) -> tuple[Path, Path]:
    """A course folder as an instructor has it. ``outside_tmp``: not under /tmp, which the sandbox covers
    whole, so that hiding the reference and the submissions themselves is what is tested."""
    course = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/var/tmp")) if outside_tmp else tmp_path_factory.mktemp(name)
    (course / "solutions").mkdir()
    shutil.copy(SOLUTION, course / "solutions" / SOLUTION.name)
    submissions = course / "submissions" / "lab00"
    submissions.mkdir(parents=True)
    return course, submissions


def _grade(course: Path, *extra: str) -> subprocess.CompletedProcess:
    command = documented_grade_command()
    assert command[:2] == ["spark-labs", "grade"] and not any(os.path.isabs(a) for a in command)
    return subprocess.run([str(SCRIPT), *command[1:], *extra], cwd=course, capture_output=True, text=True,
                          timeout=1200, check=False)


def _outputs(course: Path, student: str) -> str:
    notebook = nbformat.read(course / "feedback" / f"{student}.graded.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    course, folder = _course(tmp_path_factory, "attacked", outside_tmp=True)
    try:
        yield _run_attacks(course, folder)
    finally:
        shutil.rmtree(course, ignore_errors=True)


def _run_attacks(course: Path, folder: Path) -> dict:
    reference = course / "solutions" / SOLUTION.name
    victim = folder / "victim.ipynb"
    shutil.copy(SOLUTION, victim)  # a learner who did everything
    friend = _attack(folder, "friend", "print('untouched')")  # a learner who did nothing
    site_packages = Path(next(p for p in sys.path if p.endswith("site-packages")))
    planted = site_packages / f"zz_{MARK}.pth"
    outside = [Path("/var/tmp") / MARK, Path.home() / MARK, course / MARK]
    gradebook = course / "gradebook.csv"
    _attack(folder, "runs_the_reference", f"""
import json, pathlib, psutil
found = []
for proc in psutil.Process().parents():  # the grader is up there somewhere, and its working folder
    try:
        found += list(pathlib.Path(proc.cwd()).glob("solutions/00_*.ipynb"))
    except psutil.Error:
        pass
found += [p for p in [pathlib.Path({str(reference)!r})] if p.exists()]
print("parents seen:", [" ".join(p.cmdline()) for p in psutil.Process().parents()])
print("reference found:", bool(found and found[0].stat().st_size))
for cell in (json.loads(found[0].read_text())["cells"] if found and found[0].stat().st_size else []):
    text = "".join(cell["source"])
    if cell["cell_type"] == "code" and "checkpoint(" not in text:
        try:
            exec(text, globals())
        except Exception as exc:
            print("skipped a cell:", type(exc).__name__)
""", first=True)
    _attack(folder, "rewrites_files", f"""
import pathlib
for target, text in [({str(reference)!r}, "tampered"), ({str(victim)!r}, "{{}}"), ({str(friend)!r}, "{{}}")]:
    try:
        pathlib.Path(target).write_text(text)
        print("rewrote", pathlib.Path(target).name)
    except OSError as exc:
        print("could not rewrite", pathlib.Path(target).name, type(exc).__name__)
""")
    _attack(folder, "plants_pth", f"""
import pathlib
try:
    pathlib.Path({str(planted)!r}).write_text("import os; os.environ['SPARK_LABS_OWNED'] = '1'\\n")
    print("planted")
except OSError as exc:
    print("could not plant", type(exc).__name__)
""")
    _attack(folder, "writes_outside", f"""
import pathlib
for target in {[str(p) for p in outside]!r}:
    try:
        with open(target, "wb") as handle:
            handle.write(b"x" * 50_000_000)
        print("wrote", target)
    except OSError as exc:
        print("could not write", target, type(exc).__name__)
""")
    hopper = f"""
import os, socket, sys, time
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", {HOPPER_PORT}))
listener.listen()
start = time.time()
while time.time() - start < 60:
    if os.fork():
        os._exit(0)  # hop: the parent goes, the child carries on under a new pid
    time.sleep(0.2)
    if time.time() - start > 6:
        for target in {[str(gradebook), str(course / "gradebook.html")]!r}:
            try:
                open(target, "w").write("student,status,score\\nmallory,passed,3/3\\n")
            except OSError:
                pass
"""
    _attack(folder, "leaves_a_forker", f"""
import os, subprocess, sys
env = {{k: v for k, v in os.environ.items() if k != "SPARK_LABS_GRADING_RUN"}}  # no grading marker
subprocess.Popen([sys.executable, "-c", {hopper!r}, {MARK!r}], env=env, start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("forker started")
""")
    _attack(folder, "reaches_the_network", f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {SERVICE_PORT}), timeout=3).close()
    print("reached the machine's service: True")
except OSError as exc:
    print("reached the machine's service: False", type(exc).__name__)
""")
    malformed = nbformat.read(SOLUTION, as_version=4)
    malformed.cells[2]["source"] = 42
    (folder / "malformed.ipynb").write_text(json.dumps(malformed))
    shutil.copy(friend, folder / '=HYPERLINK("evil.example","open me").ipynb')
    before = {p: _sha(p) for p in (reference, victim, friend)}
    service = socket.create_server(("127.0.0.1", SERVICE_PORT))  # a service of this machine: a Ray head, an engine
    try:
        result = _grade(course)
    finally:
        service.close()
    graded_at = time.monotonic()
    book = gradebook.read_text()
    time.sleep(max(0.0, 8 - (time.monotonic() - graded_at)))  # the forker rewrote the book at 6 s
    header, rows = read_gradebook(gradebook)
    return {"course": course, "result": result, "rows": {r["student"]: r for r in rows}, "before": before,
            "book": book, "planted": planted, "outside": outside}


def _score(rows: dict, student: str) -> str:
    return rows[student]["score"]


def test_the_class_is_graded_despite_the_attacks(attacked):
    rows, result = attacked["rows"], attacked["result"]
    assert result.returncode == 1, result.stderr[-3000:]  # 1: the malformed notebook is an error row
    assert _score(rows, "victim") == "3/3" and rows["victim"]["status"] == "passed", rows["victim"]
    assert rows["malformed"]["status"] == "error" and "source is a int" in rows["malformed"]["reason"]


def test_a_submission_cannot_find_or_run_the_reference(attacked):
    """Before: it found the grader's folder through its parent processes and executed the reference: 3/3."""
    text = _outputs(attacked["course"], "runs_the_reference")
    assert "reference found: False" in text, text[-2000:]
    assert "parents seen: [" in text and "bin/spark-labs" not in text  # its own PID namespace: no grader in it
    assert _score(attacked["rows"], "runs_the_reference") == _score(attacked["rows"], "friend") != "3/3"


def test_the_reference_and_other_submissions_cannot_be_rewritten(attacked):
    """Before: the reference (so every later run) and a victim's and a friend's notebooks were rewritten."""
    assert {p: _sha(p) for p in attacked["before"]} == attacked["before"]
    text = _outputs(attacked["course"], "rewrites_files")
    assert "rewrote" not in text.replace("could not rewrite", "")


def test_nothing_is_planted_for_later_runs_or_written_outside(attacked):
    """Before: a .pth file in the kernel's site-packages raised later runs' grades; 1 GiB written outside
    the sandbox stayed."""
    assert not attacked["planted"].exists()
    assert "could not plant" in _outputs(attacked["course"], "plants_pth")
    assert not [p for p in attacked["outside"] if p.exists()]


def test_no_process_outlives_grading_and_the_gradebook_stays_the_graders(attacked):
    """Before: a process without the grading marker, in its own session, forking every 0.2 s, survived,
    kept its listener and rewrote the CSV and HTML six seconds after the grader exited."""
    assert "forker started" in _outputs(attacked["course"], "leaves_a_forker")
    assert not _alive(MARK)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", HOPPER_PORT), timeout=1):
        pass
    assert (attacked["course"] / "gradebook.csv").read_text() == attacked["book"]
    assert "mallory" not in attacked["book"]


def test_a_submission_reaches_no_service_of_the_machine(attacked):
    """Before: the learner's kernel shared the machine's network; a submission graded on an unauthenticated Ray
    cluster used it to read the reference from outside. Its own network namespace has only its loopback, and
    the grading kernel reaches it through Unix sockets."""
    assert "reached the machine's service: False" in _outputs(attacked["course"], "reaches_the_network")


def test_a_formula_file_name_reaches_the_csv_as_text(attacked):
    raw = (attacked["course"] / "gradebook.csv").read_text()
    assert "'=HYPERLINK" in raw and '\n=HYPERLINK' not in raw and ',=HYPERLINK' not in raw


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    course, folder = _course(tmp_path_factory, "capped")
    _attack(folder, "three_children", """
import subprocess, sys, time
children = [subprocess.Popen([sys.executable, "-c",
            "b = bytearray(1200 * 2**20); import time; time.sleep(30)"]) for _ in range(3)]
time.sleep(8)
print("children still running:", sum(c.poll() is None for c in children))
""")
    _attack(folder, "fills_the_disk", """
import os, tempfile
written = 0
try:
    with open(os.path.join(tempfile.gettempdir(), "filler"), "wb") as handle:
        for _ in range(64):
            handle.write(b"x" * 2**24)
            handle.flush()
            written += 2**24
    print("wrote it all")
except OSError as exc:
    print("stopped after", written // 2**20, "MiB:", type(exc).__name__, exc.errno)
""")
    staging = Path(scratch_base() or tempfile.gettempdir())
    before = set(staging.glob("spark-labs-grading-*"))  # another grader on this machine may have its own
    result = _grade(course, "--memory-limit-gb", "3", "--disk-limit-gb", "0.5")
    header, rows = read_gradebook(course / "gradebook.csv")
    return {"course": course, "result": result, "rows": {r["student"]: r for r in rows},
            "staging": staging, "staged_before": before}


def test_memory_is_capped_for_all_of_a_submissions_processes_together(capped):
    """Before: memory was capped per process only; three children of 2.5 GiB each all ran. Here each child
    (1.2 GiB) is under the per-process cap, their sum is not."""
    row = capped["rows"]["three_children"]
    assert "ran out of memory under the grader's cap of 3.0 GiB for all its processes together" in row["notes"], row
    assert float(row["peak_memory_mb"]) <= 3 * 1024 + 16
    assert "children still running: 3" not in _outputs(capped["course"], "three_children")


def test_what_a_submission_may_write_is_capped_and_gone_afterwards(capped):
    text = _outputs(capped["course"], "fills_the_disk")
    assert "wrote it all" not in text and "OSError 28" in text, text[-1000:]  # 28: ENOSPC, the scratch is full
    left = set(capped["staging"].glob("spark-labs-grading-*")) - capped["staged_before"]
    assert not left, f"a run's staging folder outlived grading: {left}"
