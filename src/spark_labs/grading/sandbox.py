"""Run one graded notebook: the reference's cells in the grading kernel, the learner's behind a wall.

Two kernels per submission:

* the **grading kernel** (:mod:`.worker`) runs outside the wall, in a folder of its own, and executes the
  reference's cells, checkpoints included; no learner code ever runs in it;
* the **learner's kernel** (:mod:`.learner_host`), started by the judge when the first learner cell runs,
  lives inside the wall (:mod:`.boundary`): its own PID and mount namespaces, a memory and pids cgroup, no
  capabilities, the filesystem read-only, the reference and every submission hidden, and a size-capped
  scratch as the only place it can write (:mod:`.jail` builds this).

When the run ends, times out or crashes, the namespace ends with every process in it, and the grader checks
the cgroup is empty before it reports. A machine where the wall cannot be built gets an error row for each
submission, never a run without it, unless the instructor asks for one (``--uncontained``, for trusted
notebooks): then the learner's kernel runs in a private folder and a new session, an environment marker is
used to stop what is left, and every row says that it ran uncontained.
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

from .boundary import GROUP_PREFIX, Cgroup, Wall, containment_problem, covers_python, scratch_base, wall_command
from .judge import PLAN_ENV

MARKER_ENV = "SPARK_LABS_GRADING_RUN"
STOP_GRACE_S = 3.0
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class Limits:
    timeout: float = 600.0        # seconds for the whole notebook
    cell_timeout: float = 300.0   # seconds per cell (the cell is interrupted, the notebook goes on)
    output_limit: int = 2_000_000  # bytes of output per cell
    memory_limit: int = 0         # bytes for all the submission's processes together; 0: no limit
    disk_limit: int = 4 * 2**30   # bytes the submission may write (its scratch: folder, /tmp, /dev/shm, $HOME)
    max_processes: int = 4096     # processes and threads at once (a fork bomb stops here)
    contained: bool = True        # False: --uncontained, no namespaces (trusted notebooks only)
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
    not_contained: str | None = None  # why the wall could not be built (the learner's kernel did not start)
    learner_failure: str | None = None  # the learner's kernel died or stopped answering
    out_of_memory: bool = False        # the cgroup's cap was hit (a process was killed or refused memory)


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


def module_command(module: str) -> list[str]:
    return [sys.executable, "-m", f"spark_labs.grading.{module}"]


def _read_result(out: bytes, execution: Execution) -> None:
    try:
        result = json.loads(out) if out else None
    except json.JSONDecodeError:
        result = None
    if result:
        execution.notebook = nbformat.from_dict(result["notebook"])
        execution.kernel_error = result["kernel_error"]
        execution.cells_executed = result["cells_executed"]
        execution.capped = result["capped"]
        learner = result.get("learner") or {}
        execution.leftover = result["leftover"] + learner.get("leftover", [])
        execution.peak_rss_mb = max(result["peak_rss_kb"], learner.get("peak_rss_kb", 0)) / 1024
        execution.not_contained = learner.get("not_contained")
        execution.learner_failure = learner.get("failure")


def learner_plan(slots: list[dict], command: list[str], env: dict, cwd: Path, log: Path, limits: Limits) -> dict:
    """The plan the judge reads (:data:`.judge.PLAN_ENV`): the learner cells, and how to start their kernel."""
    # The learner's cell gets a little less than the grading kernel's cell: its own timeout then interrupts
    # it and the bridge reports that, before the grading kernel's timeout would interrupt the bridge itself.
    return {"slots": slots, "learner": {"command": command, "env": env, "cwd": str(cwd), "log": str(log),
                                        "cell_timeout": max(1.0, 0.9 * limits.cell_timeout),
                                        "output_limit": limits.output_limit}}


def _thread_env(limits: Limits) -> dict[str, str]:
    env = {"SPARK_LABS_PROFILE": limits.profile} if limits.profile else {}
    if limits.threads and "OMP_NUM_THREADS" not in os.environ:
        # Kernels that each start one thread per core, side by side, spin-wait against each other:
        # lab 00 took 3x the CPU time that way on 2 cores (docs/instructors.md, grading cost).
        env["OMP_NUM_THREADS"] = str(limits.threads)
    return env


def run_judged(submission: Path, notebook: nbformat.NotebookNode, slots: list[dict], limits: Limits,
               hidden: tuple[str, ...] = (), readable: tuple[str, ...] = (), own_network: bool = True) -> Execution:
    """Execute the graded ``notebook`` (assembled from ``submission``); ``slots`` are its learner cells.
    ``hidden`` paths are invisible to the learner's side and ``readable`` folders are bound read-only into
    its cache (the exported model); ``own_network``: the learner's side has a network of its own."""
    if limits.contained and (problem := containment_problem()):
        return Execution(None, not_contained=problem)
    token = uuid.uuid4().hex
    cgroup = None
    # Every run of this grader stages its files in one folder, and each learner's scratch is mounted over that
    # whole folder inside its own namespace: a submission sees its own scratch there, never a neighbour's,
    # nor the grading kernel's folder (its connection file, the plan).
    runs = Path(scratch_base() or tempfile.gettempdir()) / f"spark-labs-grading-{os.getpid()}"
    runs.mkdir(mode=0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=runs) as sandbox, \
            tempfile.TemporaryFile(prefix="spark-labs-grade-log-") as log, contextlib.ExitStack() as stack:
        folders = {name: Path(sandbox) / name for name in ("work", "tmp", "runtime", "judge", "judge-runtime")}
        for folder in folders.values():
            folder.mkdir()
        shutil.copy2(submission, folders["work"] / submission.name)
        base = {**os.environ, MARKER_ENV: token, "PYTHONUNBUFFERED": "1", **_thread_env(limits)}
        learner_env = {**base, "SPARK_LABS_LEARNER_KERNEL": limits.kernel,
                       "SPARK_LABS_LEARNER_MEMORY": str(limits.memory_limit or 0)}
        if limits.contained:
            try:
                cgroup = Cgroup.create(GROUP_PREFIX + token, limits.memory_limit, limits.max_processes)
            except OSError as exc:
                return Execution(None, not_contained=f"could not create the submission's cgroup: {exc}")
            # The learner's kernel is reached through Unix sockets in a folder outside the scratch, the one path
            # both sides see: its TCP ports would be on the loopback of its own network namespace.
            sockets = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spark-labs-kernel-",
                                                                            dir=runs.parent)))
            learner_env["SPARK_LABS_LEARNER_SOCKETS"] = str(sockets)
            wall = Wall(scratch=str(runs), disk_limit=limits.disk_limit, hidden=hidden, readable=readable,
                        submission=str(folders["work"] / submission.name), own_network=own_network,
                        sockets=str(sockets), bind_tmp=not covers_python("/tmp") and Path("/tmp") not in runs.parents)
            wall_file = Path(sandbox) / "wall.json"
            wall_file.write_text(json.dumps(wall.to_json()))
            learner_command = wall_command(module_command("learner_host"), wall_file, cgroup, own_network)
            learner_env["SPARK_LABS_CGROUP_PROCS"] = " ".join(cgroup.procs_files())
        else:
            learner_command = module_command("learner_host")
            learner_env.update(TMPDIR=str(folders["tmp"]), JUPYTER_RUNTIME_DIR=str(folders["runtime"]))
        plan_file = folders["judge"] / "plan.json"
        plan_file.write_text(json.dumps(learner_plan(slots, learner_command, learner_env, folders["work"],
                                                     folders["judge"] / "learner.log", limits)))
        env = {**base, PLAN_ENV: str(plan_file), "JUPYTER_RUNTIME_DIR": str(folders["judge-runtime"])}
        job = {"notebook": notebook, "kernel": limits.kernel, "cell_timeout": limits.cell_timeout,
               "output_limit": limits.output_limit}
        worker = subprocess.Popen(module_command("worker"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=log, cwd=folders["judge"], env=env, start_new_session=True)
        execution = Execution(None)
        try:
            out, _ = worker.communicate(json.dumps(job).encode(), timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            execution.timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, 9)
            worker.kill()
            out, _ = worker.communicate()
        if cgroup is not None:  # the learner's side first: killing its namespace's first process ends it all
            still_there = cgroup.kill_all()
            execution.unstoppable += [f"pid {pid} (still in the submission's cgroup)" for pid in still_there]
        # Whatever either side left behind (each stops its own descendants; this catches the rest).
        stopped, unstoppable = stop_marked(token)
        execution.unstoppable += unstoppable
        if cgroup is not None:
            execution.out_of_memory = cgroup.ran_out_of_memory()
            peak = cgroup.peak_memory_bytes()
            cgroup.remove()
        if not execution.timed_out:
            _read_result(out, execution)
        if cgroup is not None and peak:
            execution.peak_rss_mb = peak / 2**20  # the sum over the submission's processes, not the largest one
        execution.leftover += stopped
        learner_log = folders["judge"] / "learner.log"
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - LOG_TAIL_CHARS))
        execution.log_tail = log.read().decode("utf-8", "replace")
        if learner_log.exists():
            execution.log_tail += learner_log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        if execution.notebook is None and not execution.timed_out and not execution.log_tail:
            execution.log_tail = f"the worker exited with status {worker.returncode} and wrote no result"
    with contextlib.suppress(OSError):
        runs.rmdir()  # the last run out removes the folder; others may still be using it
    return execution
