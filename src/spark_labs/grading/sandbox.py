"""Run one prepared notebook alone: a private folder, its own process session, caps, and a clean exit.

Each submission is copied by itself into a fresh temporary folder (``<tmp>/work``, with ``TMPDIR`` and the
Jupyter runtime folder beside it), so relative paths reach no other submission and nothing it writes
outlives its grading. The worker process (:mod:`.worker`) runs in a new session, and every process of the
run carries a marker in its environment; when the notebook ends, times out or crashes, every process that
still carries the marker is stopped, and the grader checks that none is left before it reports.

This keeps submissions from disturbing each other or the grader by accident or by a simple trick. It is
not a security sandbox: code running as the same user can still read files elsewhere on the machine. Grade
untrusted work inside the course container (see docs/instructors.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil

MARKER_ENV = "SPARK_LABS_GRADING_RUN"
STOP_GRACE_S = 3.0
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class Limits:
    timeout: float = 600.0        # seconds for the whole notebook
    cell_timeout: float = 300.0   # seconds per cell (the cell is interrupted, the notebook goes on)
    output_limit: int = 2_000_000  # bytes of output per cell
    memory_limit: int = 0         # bytes of address space per process; 0: no limit
    kernel: str = "python3"
    profile: str | None = None
    threads: int | None = None    # CPU threads per kernel (OMP_NUM_THREADS) unless already set


@dataclass
class Execution:
    notebook: nbformat.NotebookNode | None  # the executed notebook; None when the run did not finish
    timed_out: bool = False
    kernel_error: str | None = None
    cells_executed: int = 0
    capped: list[int] = field(default_factory=list)       # cell indices whose output hit the cap
    leftover: list[str] = field(default_factory=list)     # processes still running at the end (stopped)
    unstoppable: list[str] = field(default_factory=list)  # processes the grader could not stop
    peak_rss_mb: float | None = None
    log_tail: str = ""


def _marked(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) == token and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _describe(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:200] or proc.name()
    except psutil.Error:
        return f"pid {proc.pid}"


def stop_marked(token: str) -> tuple[list[str], list[str]]:
    """Stop every process carrying ``token``; return (what was stopped, what is still there)."""
    stopped: list[str] = []
    for _ in range(3):  # a process may start another while it is being stopped
        procs = _marked(token)
        if not procs:
            return stopped, []
        stopped += [_describe(p) for p in procs]
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=STOP_GRACE_S)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=STOP_GRACE_S)
    return stopped, [_describe(p) for p in _marked(token)]


def run_isolated(submission: Path, notebook: nbformat.NotebookNode, rebind_before: list[int],
                 limits: Limits) -> Execution:
    token = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="spark-labs-grade-") as sandbox, \
            tempfile.TemporaryFile(prefix="spark-labs-grade-log-") as log:
        work, tmp, runtime = (Path(sandbox) / name for name in ("work", "tmp", "runtime"))
        for folder in (work, tmp, runtime):
            folder.mkdir()
        shutil.copy2(submission, work / submission.name)
        env = {**os.environ, MARKER_ENV: token, "TMPDIR": str(tmp), "JUPYTER_RUNTIME_DIR": str(runtime),
               "PYTHONUNBUFFERED": "1"}
        if limits.profile:
            env["SPARK_LABS_PROFILE"] = limits.profile
        if limits.threads and "OMP_NUM_THREADS" not in os.environ:
            # Kernels that each start one thread per core, side by side, spin-wait against each other:
            # lab 00 took 3x the CPU time that way on 2 cores (docs/instructors.md, grading cost).
            env["OMP_NUM_THREADS"] = str(limits.threads)
        job = {"notebook": notebook, "rebind_before": rebind_before, "kernel": limits.kernel,
               "cell_timeout": limits.cell_timeout, "output_limit": limits.output_limit,
               "memory_limit": limits.memory_limit}
        worker = subprocess.Popen([sys.executable, "-m", "spark_labs.grading.worker"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log, cwd=work, env=env, start_new_session=True)
        execution = Execution(None)
        try:
            out, _ = worker.communicate(json.dumps(job).encode(), timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            execution.timed_out = True
            stop_marked(token)  # the worker too: it carries the marker
            worker.kill()
            out, _ = worker.communicate()
        # Whatever the notebook left behind (the worker stops its own descendants; this catches the rest).
        stopped, execution.unstoppable = stop_marked(token)
        if out and not execution.timed_out:
            try:
                result = json.loads(out)
            except json.JSONDecodeError:
                result = None
            if result:
                execution.notebook = nbformat.from_dict(result["notebook"])
                execution.kernel_error = result["kernel_error"]
                execution.cells_executed = result["cells_executed"]
                execution.capped = result["capped"]
                execution.leftover = result["leftover"]
                execution.peak_rss_mb = result["peak_rss_kb"] / 1024
        execution.leftover += stopped
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - LOG_TAIL_CHARS))
        execution.log_tail = log.read().decode("utf-8", "replace")
        if execution.notebook is None and not execution.timed_out and not execution.log_tail:
            execution.log_tail = f"the worker exited with status {worker.returncode} and wrote no result"
    return execution

