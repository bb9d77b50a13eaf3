"""One model across several machines: a Ray cluster (head + workers) and the engine's tensor or pipeline
parallelism on top of it. Ray places the ranks and the engine moves the activations; nothing here schedules.

Two shapes of the same plan:

* **Two (or more) DGX Sparks** (:class:`ClusterPlan`): on node 1 a container runs ``ray start --head``, on every
  other node a container runs ``ray start --address HEAD:PORT``, each with the playbook's flags and the fast
  link's network settings (NCCL/Gloo/UCX interface, the node's own address); then the engine's serving
  command runs inside the head's container with ``--tensor-parallel-size N`` or ``--pipeline-parallel-size N``
  and the Ray executor. Commands for another node go through ``ssh`` (the playbook's passwordless SSH).
  Before any container starts, :func:`preflight` checks every node (reachable, the same image, the model
  files, the link up) and refuses with one line per problem.
* **One machine** (:class:`LocalRayCluster`): Ray's own multi-node-on-one-host form — one ``ray start --block``
  per node on this host, each with its own CPUs, so the same commands, the same ``RAY_ADDRESS`` and the same
  node-loss handling run for real on a CPU box.

:class:`MultiNodeEngine` supervises what was started: when a node leaves (its Ray process or container exits),
the engine is stopped on every node and the learner is told which node went and when.

Per-engine facts (flags, environment, container recipe) are the engine's ``EngineSpec.multinode``
(:class:`~spark_labs.engines.engine_spec.MultiNodeRecipe`, defined and cited in the registry).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EngineError, EngineStartError
from ..paths import cache_dir
from .engine_spec import EngineSpec, MultiNodeRecipe
from .launcher import EngineHandle, likely_cause, new_log_file, start_command
from .ports import free_port
from .reaper import kill_group
from .registry import ENGINES, resolve_engine

PARALLEL_KINDS = ("tensor", "pipeline")
RAY_PORT = 6379  # run_cluster.sh's head port
LINK_INTERFACE = "enp1s0f1np1"  # the playbooks' example: the "(Up)" interface of `ibdev2netdev`
SECOND_NODE_ENV = "SPARK_LABS_SECOND_NODE"  # ssh destination of node 2 (user@192.168.100.11), for doctor
LINK_ENV = "SPARK_LABS_LINK_IF"  # the fast link's interface name, when not the playbook's
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=5")


class MultiNodeError(EngineError):
    """A multi-node start refused before anything started (or a node lost afterwards); the message names the
    node, what is wrong and the fix."""


class NodeLostError(MultiNodeError):
    """A node left while the engine was serving: the engine was stopped on every node."""


# --- nodes and running commands on them ------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """One machine of the cluster: its address on the fast link, and how to reach its shell (None: here)."""

    address: str
    ssh: str | None = None

    @property
    def label(self) -> str:
        return self.ssh or self.address

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on this node: itself here, through ``ssh`` on another machine."""
        if self.ssh is None:
            return list(argv)
        return ["ssh", *SSH_OPTIONS, self.ssh, shlex.join(argv)]


# (argv, timeout) -> (exit code, output); replaced in tests. A missing program is exit code 127.
Runner = Callable[[Sequence[str], float], tuple[int, str]]


def run_command(argv: Sequence[str], timeout: float = 10.0) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, f"{argv[0]}: not installed here"
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:.0f} s"
    return done.returncode, (done.stdout + done.stderr).strip()


def split_problem(spec: EngineSpec, config: Mapping, parallel: str, size: int) -> str | None:
    """Why ``spec`` refuses to split a model with this ``config.json`` ``size`` ways (None: it accepts)."""
    recipe = recipe_of(spec)
    if parallel not in PARALLEL_KINDS:
        return f"parallel must be one of {', '.join(PARALLEL_KINDS)}, got {parallel!r}"
    if size < 1:
        return f"the number of nodes must be at least 1, got {size}"
    return recipe.split_problem(dict(config), parallel, size) if recipe.split_problem else None


def recipe_of(spec: EngineSpec | str) -> MultiNodeRecipe:
    spec = resolve_engine(spec)
    if spec.multinode is None:
        able = [s.display_name for s in ENGINES.values() if s.multinode]
        raise MultiNodeError(f"{spec.display_name} has no multi-node recipe in spark-labs; engines that have one: "
                             f"{', '.join(able)}")
    return spec.multinode


def multinode_engines() -> list[str]:
    """Registry keys of the engines that can serve one model across machines."""
    return [name for name, spec in ENGINES.items() if spec.multinode]


# --- the plan for N DGX Sparks (containers) ---------------------------------------------------------------
@dataclass(frozen=True)
class ClusterPlan:
    """The commands that serve ``model`` across ``nodes`` (node 1 is the head), in the order they run."""

    spec: EngineSpec
    model: str  # HF id (downloaded into each node's HF cache) or a path inside the container
    nodes: tuple[Node, ...]
    parallel: str = "tensor"
    interface: str = LINK_INTERFACE
    image: str | None = None
    ray_port: int = RAY_PORT
    port: int = 8000
    served_name: str | None = None
    hf_cache: str = str(Path.home() / ".cache" / "huggingface")
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.nodes) < 2:
            raise MultiNodeError(f"a multi-node plan needs at least 2 nodes, got {len(self.nodes)}")
        if self.parallel not in PARALLEL_KINDS:
            raise MultiNodeError(f"parallel must be one of {', '.join(PARALLEL_KINDS)}, got {self.parallel!r}")
        recipe_of(self.spec)

    @property
    def recipe(self) -> MultiNodeRecipe:
        return recipe_of(self.spec)

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def head(self) -> Node:
        return self.nodes[0]

    @property
    def container_image(self) -> str:
        return self.image or self.spec.docker_image or ""

    def container(self, index: int) -> str:
        role = "head" if index == 0 else f"worker{index}"
        return f"spark-labs-ray-{role}-{self.port}"

    def node_env(self, index: int) -> list[tuple[str, str]]:
        """The playbook's environment of node ``index``: link interface, own address, head address, fixed."""
        recipe, node = self.recipe, self.nodes[index]
        return ([(name, node.address) for name in recipe.node_ip_env]
                + [(name, self.interface) for name in recipe.link_env]
                + [(name, self.head.address) for name in recipe.head_ip_env]
                + list(recipe.fixed_env.items()))

    def ray_start_args(self, index: int) -> list[str]:
        """``ray start`` for node ``index`` (what Ray's own CLI parses in the tests)."""
        if index == 0:
            return ["ray", "start", "--block", "--head", f"--node-ip-address={self.head.address}",
                    f"--port={self.ray_port}"]
        return ["ray", "start", "--block", f"--address={self.head.address}:{self.ray_port}",
                f"--node-ip-address={self.nodes[index].address}"]

    def ray_node_command(self, index: int) -> list[str]:
        """``docker run`` of node ``index``'s Ray container, as run on that node."""
        recipe = self.recipe
        env = [word for name, value in self.node_env(index) for word in ("-e", f"{name}={value}")]
        return ["docker", "run", "--rm", "--name", self.container(index), *recipe.container_flags,
                "-v", f"{self.hf_cache}:{recipe.container_mount}", "-e", "HF_TOKEN", *env,
                self.container_image, "-c", shlex.join(self.ray_start_args(index))]

    def serve_args(self, extra_args: Sequence[str] = ()) -> list[str]:
        """The serving command's arguments after its program (``vllm serve``): model, address, split, backend."""
        recipe = self.recipe
        return [self.model, "--host", "0.0.0.0", "--port", str(self.port),
                "--served-model-name", self.served_name or self.model, "--dtype", "bfloat16",
                recipe.parallel_flags[self.parallel], str(self.size), recipe.backend_flag, recipe.backend,
                *self.extra_args, *extra_args]

    def serve_command(self, extra_args: Sequence[str] = ()) -> list[str]:
        """Run on node 1: the engine inside the head's container, on the Ray cluster the containers formed."""
        return ["docker", "exec", self.container(0), *self.recipe.serve_prefix, *self.serve_args(extra_args)]

    def stop_command(self, index: int) -> list[str]:
        return ["docker", "stop", self.container(index)]

    def alive_command(self, index: int) -> list[str]:
        return ["docker", "inspect", "--format", "{{.State.Running}}", self.container(index)]

    def steps(self) -> list[tuple[str, list[str]]]:
        """(where, argv) in order: each Ray container, then the engine; argv as typed on that node."""
        steps = [(f"node {i + 1} ({node.label})", self.ray_node_command(i)) for i, node in enumerate(self.nodes)]
        return [*steps, (f"node 1 ({self.head.label})", self.serve_command())]

    def script(self) -> str:
        """The plan as shell lines a learner can read (or type on each node)."""
        lines = []
        for where, argv in self.steps():
            lines += [f"# on {where}", shlex.join(argv), ""]
        return "\n".join(lines).rstrip()


def spark_plan(model: str | None = None, nodes: Sequence[Node | str] | None = None, *, parallel: str = "tensor",
               engine: str | EngineSpec | None = None, interface: str | None = None,
               extra_args: Sequence[str] = ()) -> ClusterPlan:
    """The plan for two DGX Sparks as the playbooks set them up (192.168.100.10 / .11 on the QSFP link) unless
    ``nodes`` says otherwise; node 2 is reached as ``SPARK_LABS_SECOND_NODE`` (ssh destination) when set."""
    from ..profiles import get_profile

    spec = resolve_engine(engine or multinode_engines()[0])
    profile = get_profile("spark")
    if nodes is None:
        second = os.environ.get(SECOND_NODE_ENV, "192.168.100.11")
        nodes = (Node("192.168.100.10"), Node(second.rpartition("@")[2], ssh=second))
    nodes = tuple(n if isinstance(n, Node) else Node(n.rpartition("@")[2], ssh=n) for n in nodes)
    model = model or profile.default_model.hf_id
    context = ["--max-model-len", str(profile.sizes.max_model_len)]
    given = {a for a in extra_args if a.startswith("-")}
    return ClusterPlan(spec=spec, model=model, nodes=nodes, parallel=parallel,
                       interface=interface or os.environ.get(LINK_ENV, LINK_INTERFACE),
                       extra_args=(*([] if given & {"--max-model-len"} else context), *extra_args))


# --- checks before anything starts ---------------------------------------------------------------
@dataclass(frozen=True)
class NodeCheck:
    node: str
    check: str  # reachable, image, model, link
    ok: bool
    detail: str


def hf_cache_dir_name(model: str) -> str:
    """The HF cache folder of a model id (``models--org--name``)."""
    return "models--" + model.replace("/", "--")


def check_node(node: Node, *, image: str | None, model: str | None, interface: str | None, hf_cache: str,
               runner: Runner = run_command) -> list[NodeCheck]:
    """Reachable, the image present (its id), the model's files in the HF cache, the link up: one row each.
    The image id goes in ``detail`` so :func:`preflight` can compare the nodes."""
    rows = []
    code, out = runner(node.wrap(["true"]), 8.0)
    if code != 0:
        why = out.splitlines()[-1] if out else f"exit code {code}"
        rows.append(NodeCheck(node.label, "reachable", False,
                              f"cannot run a command on {node.label}: {why}. Set up passwordless SSH as in "
                              "NVIDIA's connect-two-sparks playbook (ssh-copy-id), and check the cable"))
        return rows
    rows.append(NodeCheck(node.label, "reachable", True, "answers"))
    if image:
        code, out = runner(node.wrap(["docker", "image", "inspect", "--format", "{{.Id}}", image]), 15.0)
        rows.append(NodeCheck(node.label, "image", code == 0, out.strip() if code == 0 else
                              f"{image} is not on {node.label}: docker pull {image} there"))
    if model:
        folder = f"{hf_cache}/hub/{hf_cache_dir_name(model)}/snapshots"
        code, out = runner(node.wrap(["sh", "-c", f"ls {shlex.quote(folder)}/*/config.json"]), 15.0)
        rows.append(NodeCheck(node.label, "model", code == 0, "in the HF cache" if code == 0 else
                              f"{model} is not in {node.label}'s HF cache ({folder}): run "
                              f"`huggingface-cli download {model}` on {node.label}"))
    if interface:
        code, out = runner(node.wrap(["cat", f"/sys/class/net/{interface}/operstate"]), 8.0)
        state = out.strip()
        rows.append(NodeCheck(node.label, "link", code == 0 and state == "up",
                              f"{interface} is up" if state == "up" else
                              f"{interface} is {state or 'missing'} on {node.label}: `ibdev2netdev` shows which "
                              "interface is (Up); set SPARK_LABS_LINK_IF to it, or reseat the QSFP cable"))
    return rows


def node_checks(plan: ClusterPlan, runner: Runner = run_command) -> list[NodeCheck]:
    """Every node's checks, plus 'same image' across nodes (what ``spark-labs doctor`` prints)."""
    rows = [row for node in plan.nodes
            for row in check_node(node, image=plan.container_image, model=plan.model, interface=plan.interface,
                                  hf_cache=plan.hf_cache, runner=runner)]
    ids = {row.node: row.detail for row in rows if row.check == "image" and row.ok}
    if len(set(ids.values())) > 1:
        head_id = ids.get(plan.head.label)
        for node, image_id in ids.items():
            if image_id != head_id:
                rows.append(NodeCheck(node, "same image", False,
                                      f"{node} has another build of {plan.container_image} ({image_id[:19]}) than "
                                      f"node 1 ({(head_id or '?')[:19]}): docker pull the same tag on both nodes"))
    return rows


def preflight(plan: ClusterPlan, runner: Runner = run_command) -> list[NodeCheck]:
    """:func:`node_checks`, raising :class:`MultiNodeError` that lists every problem (one line each) before any
    container starts; returns the rows when all passed."""
    rows = node_checks(plan, runner)
    problems = [row for row in rows if not row.ok]
    if problems:
        raise MultiNodeError("not starting: " + str(len(problems)) + " problem(s) before any container started:\n"
                             + "\n".join(f"- {row.node} [{row.check}]: {row.detail}" for row in problems))
    return rows


# --- Ray's multi-node-on-one-host ----------------------------------------------------------------
@dataclass
class RayNode:
    """One ``ray start --block`` process (its own session: stopping it stops the node's raylet and workers)."""

    index: int
    command: list[str]
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = 2.0) -> None:
        # Ray's node processes ignore SIGTERM (measured: all still there 12 s after it), so a long grace only
        # delays the SIGKILL that stops them
        if self.process.poll() is None or _group_alive(self.process.pid):
            kill_group(self.process.pid, grace_s)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_s)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def ray_executable() -> str:
    found = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    if not Path(found).exists():
        raise MultiNodeError("Ray is not installed here: pip install 'spark-labs[cluster]' (ray==2.60.0)")
    return found


@dataclass
class LocalRayCluster:
    """``nodes`` Ray nodes on this machine, ``cpus`` CPUs each (Ray's multi-node-on-one-host): the head with
    ``ray start --head``, the others joining it with ``ray start --address``. Its own ports and temp dir, so
    another Ray cluster on this host is left alone. Use as a context manager."""

    nodes: int = 2
    cpus: int = 1
    object_store_bytes: int = 100_000_000
    started: list[RayNode] = field(default_factory=list)
    port: int = 0
    temp_dir: Path | None = None

    def commands(self, port: int, temp_dir: Path) -> list[list[str]]:
        ray = ray_executable()
        common = ["--block", "--num-cpus", str(self.cpus), "--object-store-memory", str(self.object_store_bytes),
                  "--temp-dir", str(temp_dir), "--disable-usage-stats"]
        head = [ray, "start", "--head", "--port", str(port), "--include-dashboard", "false",
                "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                *common]
        workers = [[ray, "start", "--address", f"127.0.0.1:{port}", "--dashboard-agent-listen-port",
                    str(free_port()), *common] for _ in range(self.nodes - 1)]
        return [head, *workers]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> LocalRayCluster:
        self.port = free_port()
        self.temp_dir = Path(cache_dir("ray")) / f"c{self.port}"  # short: Ray's socket paths have a length limit
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        try:
            for index, command in enumerate(self.commands(self.port, self.temp_dir)):
                log_file = new_log_file(f"ray-node{index + 1}", self.port)
                # Under the launcher's reaper: a node never outlives the kernel that started it.
                reaper = [sys.executable, "-m", "spark_labs.engines.reaper", "--parent", str(os.getpid()), "--"]
                process = subprocess.Popen(reaper + command, stdout=log_file, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=env, start_new_session=True)
                log_file.close()
                self.started.append(RayNode(index, command, process, Path(log_file.name)))
                self._wait_for_nodes(index + 1, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_nodes(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.started:
                if not node.alive():
                    tail = "\n".join(node.log_path.read_text(errors="replace").splitlines()[-15:])
                    raise MultiNodeError(f"Ray node {node.index + 1} exited while starting (code "
                                         f"{node.process.returncode}):\n{tail}")
            if self.alive_nodes() >= count:
                return
            time.sleep(1.0)
        raise MultiNodeError(f"the local Ray cluster did not reach {count} node(s) in {timeout:.0f} s "
                             f"(logs: {', '.join(str(n.log_path) for n in self.started)})")

    def alive_nodes(self) -> int:
        """Nodes the head's GCS reports alive, asked through `ray list nodes`-free means: the session's node
        files are not public API, so ask Ray's own CLI (`ray status` prints one 'node_' line per live node)."""
        code, out = run_command([ray_executable(), "status", "--address", self.address], 30.0)
        if code != 0:
            return 0
        active = out.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return sum(1 for line in active.splitlines() if "node_" in line)

    def stop(self) -> None:
        # every node at once: each takes seconds to wind down its raylet and workers
        with ThreadPoolExecutor(max(1, len(self.started))) as pool:
            list(pool.map(RayNode.stop, reversed(self.started)))

    def __enter__(self) -> LocalRayCluster:
        return self.start() if not self.started else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the engine across nodes, supervised ------------------------------------------------------------
class MultiNodeEngine:
    """An engine serving across nodes: its handle (``.engine``, for the harness) and the nodes under it.

    A watcher checks every ``poll_s`` that every node is alive; when one is lost it stops the engine and every
    other node, prints what happened, and :meth:`check` raises :class:`NodeLostError` with the same words."""

    def __init__(self, engine: EngineHandle, node_alive: Sequence[Callable[[], bool]],
                 stop_nodes: Callable[[], None], labels: Sequence[str], poll_s: float = 1.0,
                 backend: str = "", note: str = ""):
        self.engine = engine
        self._node_alive = list(node_alive)
        self._stop_nodes = stop_nodes
        self.labels = list(labels)
        self.backend = backend
        self.note = note
        self.lost: str | None = None
        self._stopped = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(poll_s,), daemon=True, name="node-watch")
        self._watcher.start()

    def supervise(self, node_alive: Sequence[Callable[[], bool]], stop_nodes: Callable[[], None],
                  labels: Sequence[str], poll_s: float = 1.0) -> None:
        """Watch other nodes from now on (e.g. a Ray cluster the engine's ranks run beside)."""
        self._stopped.set()
        self._watcher.join(poll_s + 5)
        self._node_alive, self._stop_nodes, self.labels = list(node_alive), stop_nodes, list(labels)
        self._stopped = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(poll_s,), daemon=True, name="node-watch")
        self._watcher.start()

    def _watch(self, poll_s: float) -> None:
        while not self._stopped.wait(poll_s):
            for label, alive in zip(self.labels, self._node_alive, strict=True):
                try:
                    ok = alive()
                except Exception:  # noqa: BLE001 - a probe that cannot answer counts as a lost node
                    ok = False
                if not ok:
                    self._on_loss(label)
                    return

    def _on_loss(self, label: str) -> None:
        when = time.strftime("%H:%M:%S")
        self.engine.stop()
        self._stop_nodes()
        self._stopped.set()
        self.lost = (f"{label} left the cluster at {when}: {self.engine.spec.display_name} was stopped on every "
                     f"node. Requests in flight failed; check that node (power, cable, `docker logs`), then start "
                     "the engine again.")
        print(f"\n⚠ {self.lost}", file=sys.stderr, flush=True)

    def check(self) -> None:
        if self.lost:
            raise NodeLostError(self.lost)

    @property
    def url(self) -> str:
        return self.engine.url

    def is_running(self) -> bool:
        return self.lost is None and self.engine.is_running()

    def stop(self) -> None:
        self._stopped.set()
        self.engine.stop()
        self._stop_nodes()

    def __enter__(self) -> MultiNodeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_command(spec: EngineSpec, model_dir: str, port: int, parallel: str, size: int, backend: str,
                  extra_args: Sequence[str] = (), served_name: str | None = None) -> list[str]:
    """The engine's local serving command split ``size`` ways with ``backend`` (Ray or local processes)."""
    recipe = recipe_of(spec)
    return spec.local_command(model_dir, port=port, served_name=served_name,
                              extra_args=[recipe.parallel_flags[parallel], str(size), recipe.backend_flag, backend,
                                          *extra_args])


def launch_local(spec: EngineSpec | str, model_dir: str, *, parallel: str = "pipeline", size: int = 2,
                 cluster: LocalRayCluster | None = None, extra_args: Sequence[str] = (),
                 served_name: str | None = None, config: Mapping | None = None, timeout: float = 240.0,
                 progress: bool = True) -> MultiNodeEngine:
    """Serve ``model_dir`` split ``size`` ways on this machine: over ``cluster`` (a running
    :class:`LocalRayCluster`) with the engine's Ray backend, or, without one, with its local-process backend.
    The engine is stopped when any node of the cluster is lost."""
    spec = resolve_engine(spec)
    recipe = recipe_of(spec)
    if config is not None and (problem := split_problem(spec, config, parallel, size)):
        raise MultiNodeError(problem)
    for flag in extra_args if parallel == "pipeline" and size > 1 else ():
        if flag in recipe.pipeline_refused_flags:
            raise MultiNodeError(f"{spec.display_name} cannot split this way here: {flag}: "
                                 f"{recipe.pipeline_refused_flags[flag]}")
    backend = recipe.backend if cluster is not None else recipe.local_backend
    port = free_port()
    env: dict[str, str | None] = dict(recipe.cpu_env(size) if recipe.cpu_env else {})
    if cluster is not None:
        if not cluster.started or not all(node.alive() for node in cluster.started):
            raise MultiNodeError("the Ray cluster is not running: start it first (LocalRayCluster().start())")
        env["RAY_ADDRESS"] = cluster.address
    command = local_command(spec, model_dir, port, parallel, size, backend, extra_args, served_name)
    handle = start_command(spec, command, host="127.0.0.1", port=port, served_name=served_name or model_dir,
                           model_arg=model_dir, env=env)
    nodes = cluster.started if cluster is not None else []
    engine = MultiNodeEngine(handle, [node.alive for node in nodes], cluster.stop if cluster else (lambda: None),
                             [f"Ray node {n.index + 1}" for n in nodes], backend=backend)
    try:
        handle.wait_ready(timeout=timeout, progress=progress)
    except EngineStartError as exc:
        engine.stop()
        cause = likely_cause(handle.logs(60), recipe.ray_hints)
        raise EngineStartError(f"{spec.display_name} across {size} ranks ({backend} backend) did not start.\n"
                               f"Why: {cause}\n{exc}") from None
    except BaseException:
        engine.stop()
        raise
    if engine.lost:
        raise NodeLostError(engine.lost)
    return engine


def launch_spark(plan: ClusterPlan, *, runner: Runner = run_command, timeout: float = 1800.0,
                 progress: bool = True) -> MultiNodeEngine:
    """Start ``plan`` on real machines: preflight, each node's Ray container, the engine in the head's
    container; supervised like :func:`launch_local` (a node's container that stops stops everything)."""
    preflight(plan, runner)
    containers: list[subprocess.Popen] = []

    def stop_nodes() -> None:
        for index, node in enumerate(plan.nodes):
            runner(node.wrap(plan.stop_command(index)), 60.0)
        for process in containers:
            if process.poll() is None:
                process.terminate()

    try:
        for index, node in enumerate(plan.nodes):
            log_file = new_log_file(f"ray-node{index + 1}", plan.port)
            containers.append(subprocess.Popen(node.wrap(plan.ray_node_command(index)), stdout=log_file,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True))
            log_file.close()
            time.sleep(10.0 if index == 0 else 0.0)  # the head's GCS listens before a worker joins
        time.sleep(15.0)
        handle = start_command(plan.spec, plan.serve_command(), host=plan.head.address, port=plan.port,
                               served_name=plan.served_name or plan.model, model_arg=plan.model, docker=True)
    except BaseException:
        stop_nodes()
        raise

    def alive(index: int) -> Callable[[], bool]:
        return lambda: runner(plan.nodes[index].wrap(plan.alive_command(index)), 15.0)[1].strip() == "true"

    engine = MultiNodeEngine(handle, [alive(i) for i in range(plan.size)], stop_nodes,
                             [f"node {i + 1} ({n.label})" for i, n in enumerate(plan.nodes)], poll_s=5.0,
                             backend=plan.recipe.backend)
    try:
        handle.wait_ready(timeout=timeout, progress=progress)
    except BaseException:
        engine.stop()
        raise
    return engine


def port_answers(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether something accepts TCP connections at ``host:port`` (a node's SSH, a Ray head)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
