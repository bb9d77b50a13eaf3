"""The learner's notebooks in a real kernel: an unfinished exercise shows one line naming it, an untouched
lab runs to its end (or stops where the course map says), and `make lab` opens JupyterLab on the course map.
The same experience without a kernel is checked in tests/unit/test_lab_experience.py."""

from __future__ import annotations

import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from course import LABS, NAMES_AN_EXERCISE, ROOT
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from spark_labs.notebooks.build import build_notebook

# ---------- require: "finish Exercise N.M first" ----------


def test_an_unfinished_exercise_shows_one_line_in_jupyter_not_a_traceback():
    notebook = new_notebook(cells=[new_code_cell(
        "from spark_labs.notebooks import require\nrequire('00.1', 'model')")])
    NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True).execute()
    error = notebook.cells[0].outputs[0]
    assert error.ename == "ExerciseNotDone"
    assert error.traceback == ["⏸ " + error.evalue]


# ---------- the lab 00 quiz ----------


# ---------- stubs, logs, warnings, the live chart ----------


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        body = b"# TYPE demo_requests_in_flight gauge\ndemo_requests_in_flight 1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_live_chart_is_one_output_updated_in_place():
    """A real kernel, a real /metrics endpoint (a minimal Prometheus text server): before the fix, every
    redraw appended another chart."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        notebook = new_notebook(cells=[new_code_cell(
            "import time\nfrom spark_labs.bench.live import watch_while\n"
            f"watcher, _ = watch_while(lambda: time.sleep(2.0), 'http://127.0.0.1:{server.server_port}/metrics', "
            "interval_s=0.2)\nprint(len(watcher.rows), 'samples')")])
        NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    finally:
        server.shutdown()
    outputs = notebook.cells[0].outputs
    charts = [o for o in outputs if o.output_type == "display_data"]
    assert len(charts) == 1 and "application/vnd.plotly.v1+json" in charts[0].data
    samples = int(next(o.text for o in outputs if o.output_type == "stream").split()[0])
    assert samples >= 3  # it did redraw several times, into the same output


# ---------- the learner notebooks themselves ----------


EXERCISE_CELL = re.compile(r"NotImplementedError|require\(|checkpoint\(")


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell stores, names it loads); magics and shell lines left out."""
    import ast

    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    stored, loaded = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, ast.Store) else loaded).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            stored.add(node.name)
    return stored, loaded


def through_the_last_exercise(notebook) -> int:
    """How many cells of the learner's ``notebook`` an untouched Run All needs to run here: through its last
    code cell that holds or checks an exercise, when no later cell uses a name that an unfinished exercise
    leaves unset (followed through the cells in between); else all of them. Those later cells then run exactly
    as in the reference's full run — its rehearsal or nbval, which compares them with the recording — so lab
    07's five minutes of split engines are not run a second time here."""
    code = [(i, "".join(c.source)) for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    last = max(i for i, source in code if EXERCISE_CELL.search(source))
    unset: set[str] = set()
    for i, source in code:
        stored, loaded = _names(source)
        if EXERCISE_CELL.search(source) or loaded & unset:
            if i > last:
                return len(notebook.cells)
            unset |= stored
    return last + 1


def _run_undone(name: str, folder: Path):
    """The learner's notebook run untouched (cut as :func:`through_the_last_exercise` says); whether it was cut."""
    notebook = build_notebook(ROOT / "solutions" / f"{name}.ipynb")
    keep = through_the_last_exercise(notebook)
    cut = keep < len(notebook.cells)
    notebook.cells = notebook.cells[:keep]
    NotebookClient(notebook, timeout=600, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook, cut


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", LABS)
def test_an_untouched_learner_notebook_fails_only_by_naming_an_exercise(name, tmp_path):
    """Run All on the learner's copy with every exercise undone (what a learner sees first): each failing
    cell names the exercise to finish; nothing fails with NameError/KeyError/IndexError; no server
    traceback lands in stderr; and the parts that need no exercise still run."""
    notebook, cut = _run_undone(name, tmp_path)
    errors, stderr, ran = [], [], 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        failed = [o for o in cell.outputs if o.output_type == "error"]
        errors += [(index, o.ename, o.evalue) for o in failed]
        stderr += [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        ran += not failed
    assert errors, "the stubs should stop the unfinished exercises"
    for index, ename, evalue in errors:
        assert ename not in ("NameError", "KeyError", "IndexError", "AttributeError"), (index, ename, evalue)
        assert NAMES_AN_EXERCISE.search(evalue), f"cell {index}: {ename}: {evalue}"
    assert not any("Traceback" in text for text in stderr), stderr
    # a lab cut after its last exercise (lab 07: the calculators, then 07.1) has fewer cells left to run
    assert ran >= (2 if cut else 4), "the cells that need no exercise should still run"
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    independent = {"00_prerequisites": "Checkpoint 00.3 passed", "01_engine_benchmark": "TPOT ≥",
                   "02_vllm_serving": "vLLM allocated", "03_tensorrt_build": "Checkpoint 03.3 passed",
                   "04_speculative_decoding": "greedy output identical to the baseline on",
                   "05_production_api": "Checkpoint 05.5 passed",
                   "06_web_ui": "Checkpoint 06.4 passed",
                   "07_two_sparks": "one Spark has 128 GB"}[name]
    assert independent in text, "an independent part was not reached by Run All"


# ---------- make lab ----------


@pytest.mark.timeout(120)
def test_spark_labs_labs_open_serves_the_course_map(tmp_path):
    """The command `make lab` runs, started for real from the repository root: the URL it prints opens
    the course map."""
    import subprocess
    import sys
    import time

    import httpx

    process = subprocess.Popen([sys.executable, "-m", "spark_labs.cli", "labs", "open"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "BROWSER": "true", "JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        deadline, url = time.monotonic() + 90, None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+/lab/tree/README\.md\?token=\w+)", line)
            url = found.group(1) if found else None
        assert url, "JupyterLab did not print the course map's URL"
        page = httpx.get(url, timeout=30, follow_redirects=True)
        assert page.status_code == 200
        contents = httpx.get(url.replace("/lab/tree/", "/api/contents/"), timeout=30)
        assert "The course map" in contents.json()["content"]
    finally:
        process.terminate()
        process.wait(timeout=30)


# ---------- engines stop with the kernel that started them ----------

STARTS_ENGINES = """
from spark_labs import launch
from spark_labs.engines import LocalRayCluster
engine = launch("llamacpp", port="auto", progress=False)   # left running, as a learner's half-done cell does
ray_nodes = LocalRayCluster(nodes=2, cpus=1).start()
print(engine.pid, *(node.process.pid for node in ray_nodes.started))
"""


def _groups_alive(pgids: list[int]) -> list[int]:
    import psutil

    return [pgid for pgid in pgids if any(_pgid(p) == pgid for p in psutil.pids())]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _wait_all_gone(pgids: list[int], seconds: float) -> list[int]:
    import time

    deadline = time.monotonic() + seconds
    while (alive := _groups_alive(pgids)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return alive


@pytest.mark.parametrize("how", ["restart", "shutdown"])
def test_no_engine_outlives_the_kernel_that_started_it(how):
    """A real Jupyter kernel starts a llama.cpp server and a two-node local Ray cluster and leaves them running;
    JupyterLab's Kernel ▸ Restart (or Shut Down) must leave no process of either behind."""
    pytest.importorskip("ray", reason="Ray comes with spark-labs[cluster]")
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        lines = []
        reply = client.execute_interactive(STARTS_ENGINES, timeout=240, output_hook=lambda msg: lines.append(
            msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        groups = [int(pid) for pid in "".join(lines).split()]  # each is its process group's leader (a reaper)
        assert len(groups) == 3 and _groups_alive(groups) == groups
        if how == "restart":
            manager.restart_kernel(now=False)
        else:
            manager.shutdown_kernel(now=False)
        assert not _wait_all_gone(groups, 60), f"left running after the kernel's {how}: {_groups_alive(groups)}"
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel(now=True)
