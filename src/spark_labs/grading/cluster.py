"""``spark-labs grade --cluster ADDRESS``: each submission's grading runs as a Ray task on a node with room.

Ray does the placing (CPUs, memory, GPUs per task), the queueing and the retry when a node is lost; the
grading itself is :func:`.grade.grade_submission`, unchanged, on whichever node the task lands: the same
wall, limits and rows as on one machine. Nothing here schedules.

The nodes share no filesystem: the submission's bytes and the reference travel with the task and are staged
in a private folder on the node, hidden from the submission like the originals are on one machine. Every node
needs the same course install (the same image, or the same checkout and ``.venv`` at the same path).

Ray's token authentication is required (``RAY_AUTH_MODE=token`` on every node and here): the wall gives a
submission no network of its own, and an open Ray port (the client server, the GCS) runs any caller's code on
any node, outside the wall -- measured here: a submission read the reference through ``ray://``. The token
itself is hidden from the submission on its node.

This module is imported only for ``--cluster``: grading on one machine never imports ``ray``.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import psutil

from .boundary import hideable
from .evaluate import CheckpointOutcome
from .grade import GradeRow, grade_submission, hidden_from_submissions
from .reference import Reference
from .sandbox import Limits

# One retry: a lost node costs its submission one more run elsewhere; a submission whose run loses a node
# twice is more likely the cause than the victim, and becomes an error row instead of taking a third node.
RETRIES = 1
CONNECT_TIMEOUT_S = 5.0  # ray.init retries an address where nothing listens for minutes: ask the port first
INSTALL_HINT = "install Ray on every node: pip install 'spark-labs[cluster]' (or `make install`)"
AUTH_HINT = ("a submission could leave the wall through an open Ray port and run code on any node: start every "
             "node and this command with RAY_AUTH_MODE=token (token from `ray get-auth-token --generate`, copied to "
             "each node), or grade trusted notebooks with --uncontained")


class ClusterError(RuntimeError):
    """The cluster cannot take the grading (no Ray, nothing at the address, no node big enough): one line."""


@dataclass(frozen=True)
class TaskResources:
    """What one submission reserves on its node; Ray starts it only on a node where all of it is free."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int = 0   # bytes (the submission's memory cap); 0: Ray reserves none, the cap follows the CPUs


def address(text: str) -> str:
    """An argparse type: ``auto`` (the cluster ``ray start`` made on this machine), ``HOST:PORT`` (the head's
    GCS port, 6379 unless ``ray start --head --port`` said otherwise) or ``ray://HOST:PORT`` (Ray Client)."""
    if text == "auto":
        return text
    host, _, port = text.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a Ray address; give HOST:PORT of the head node (e.g. "
                                         f"10.0.0.1:6379, what `ray start --head` printed), ray://HOST:PORT or auto")
    return text


def connect(where: str, contained: bool = True) -> None:
    """Join the cluster at ``where`` as a driver, or raise ClusterError saying why not."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed here: {INSTALL_HINT}") from None
    if contained and os.environ.get("RAY_AUTH_MODE") != "token":
        raise ClusterError(f"RAY_AUTH_MODE is not token here: {AUTH_HINT}")
    if where != "auto":
        host, _, port = where.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise ClusterError(f"no Ray cluster answers at {where} ({exc.strerror or exc}): start one with "
                               f"`ray start --head` on the head node and pass the address it prints") from None
    try:
        # log_to_driver=False: the nodes' worker output would tear through the progress bar; rows carry it all.
        ray.init(address=where, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"could not join the Ray cluster at {where}: {' '.join(str(exc).split())[:300]}") from None


def check_room(resources: TaskResources) -> None:
    """Refuse a request no node can ever meet: Ray would keep such a task pending for ever, without a word."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    wanted = {"CPU": resources.cpus, "GPU": resources.gpus, "memory": resources.memory}
    if not any(all(node.get(name, 0) >= amount for name, amount in wanted.items() if amount) for node in nodes):
        have = "; ".join(f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU, {n.get('memory', 0) / 2**30:.1f} GiB"
                         for n in nodes) or "no live node"
        raise ClusterError(f"no node of the cluster has room for one submission ({resources.cpus:g} CPU, "
                           f"{resources.gpus:g} GPU, {resources.memory / 2**30:.1f} GiB): nodes have {have}")


def _not_run(reference: Reference) -> dict[str, CheckpointOutcome]:
    return {c: CheckpointOutcome(c, "not run") for c in reference.checkpoints}


def _ray_secrets() -> list[Path]:
    """Hide Ray's token from the submission: its file (RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token, as Ray
    looks it up) joins the hidden paths, and the variable leaves this worker's environment, which the sandbox
    passes on (the worker has already used it to join the cluster)."""
    os.environ.pop("RAY_AUTH_TOKEN", None)
    files = [os.environ.get("RAY_AUTH_TOKEN_PATH", ""), os.path.expanduser("~/.ray/auth_token")]
    return [Path(f) for f in files if f and os.path.exists(f)]


def _grade_on_node(student: str, name: str, original: str, content: bytes, reference: Reference, limits: Limits,
                   hidden: tuple[str, ...], cpus: float, share_memory: bool) -> GradeRow:
    """Runs on the node Ray chose: stage the submission and the reference in a private folder, grade, and
    report the row under the submission's original path."""
    import ray

    if limits.contained and os.environ.get("RAY_AUTH_MODE") != "token":
        row = GradeRow(student, original, "error", _not_run(reference))
        row.reason = f"not graded: node {socket.gethostname()} runs Ray without RAY_AUTH_MODE=token; {AUTH_HINT}"
        return row
    node = ray.get_runtime_context().get_node_id()
    node_cpus = next((n["Resources"].get("CPU", 1) for n in ray.nodes() if n["NodeID"] == node), 1)
    if share_memory:
        # The default cap on one machine is its memory shared by the workers; here Ray runs up to
        # node CPUs / task CPUs submissions side by side, so each gets that share of this node's memory.
        limits = replace(limits, memory_limit=int(psutil.virtual_memory().total * min(1.0, cpus / node_cpus)))
    with tempfile.TemporaryDirectory(prefix="spark-labs-cluster-") as stage:
        path = Path(stage, "submission", name)
        staged = replace(reference, path=Path(stage, "reference", reference.path.name))
        for folder in (path.parent, staged.path.parent):
            folder.mkdir()
        path.write_bytes(content)
        nbformat.write(reference.notebook, staged.path)
        # Hidden here: the staged copies, and whatever the head hid that exists on this node too (the same
        # image holds the course's solutions/ at the same path).
        here = hidden_from_submissions(staged, [path]) + hideable([Path(p) for p in hidden if os.path.exists(p)]
                                                                  + _ray_secrets())
        row = grade_submission(student, path, staged, limits, tuple(dict.fromkeys(here)))
    row.path = original
    row.notes.append(f"graded on Ray node {node[:12]} at {ray.util.get_node_ip_address()} ({socket.gethostname()})")
    return row


class ClusterGrader:
    """A stand-in for :func:`.grade.grade_submission` that runs it as a Ray task and waits for the row."""

    def __init__(self, resources: TaskResources, share_memory: bool):
        import ray

        self.resources, self.share_memory = resources, share_memory
        self.task = ray.remote(_grade_on_node).options(
            num_cpus=resources.cpus, num_gpus=resources.gpus, memory=resources.memory or None,
            max_retries=RETRIES, retry_exceptions=False)  # the grader's own failures are rows, never raised

    def __call__(self, student: str, path: Path, reference: Reference, limits: Limits,
                 hidden: tuple[str, ...] = ()) -> GradeRow:
        import ray

        try:
            content = path.read_bytes()
        except OSError:
            # Missing, a folder, unreadable: its error row needs no node, and reads as on one machine.
            return grade_submission(student, path, reference, limits, hidden)
        run = self.task.remote(student, path.name, str(path), content, reference, limits, hidden,
                               self.resources.cpus, self.share_memory)
        try:
            return ray.get(run)
        except ray.exceptions.RayError as exc:
            # A node or worker lost twice (RETRIES), or the task could not run there (no spark_labs on the node):
            # the row says so and the command exits 1; the submission is never dropped.
            row = GradeRow(student, str(path), "error", _not_run(reference))
            lost = isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError |
                              ray.exceptions.ObjectLostError | ray.exceptions.RaySystemError)
            what = (f"its grading node or worker was lost ({RETRIES + 1} tries)" if lost
                    else "its grading task failed on the node")
            row.reason = f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}; grade it again"
            return row


def disconnect() -> None:
    import ray

    ray.shutdown()
