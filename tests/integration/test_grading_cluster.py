"""``spark-labs grade --cluster``: grading on a real local Ray cluster of two nodes (two raylets on this host,
started with Ray's own ``ray start``), with token authentication as the grader requires.

What is real: Ray's scheduling, the transport of submissions and rows, the retry of a task whose worker died,
the sandbox on the node. What is simulated: a lost node is its Ray worker process killed mid-grading (what a
machine that drops out, or an OOM kill, does to the task); both "nodes" share this host's disk, which the
grader does not rely on (the submission travels as bytes).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from submission_fixtures import ROOT, make_hanging, make_submissions  # noqa: E402

from spark_labs.grading.cli import main  # noqa: E402
from spark_labs.grading.gradebook import read_gradebook  # noqa: E402

# Ray reads RAY_AUTH_MODE once, when it is imported: every driver here (the grader, the readiness check) is a
# process of its own, started with the cluster's token in its environment, as an instructor's shell would be.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="the cluster extra is not installed (make install installs it)")
WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
deadline = time.monotonic() + 90
while sum(n["Alive"] for n in ray.nodes()) < 2 and time.monotonic() < deadline:
    time.sleep(1)
sys.exit(sum(n["Alive"] for n in ray.nodes()) < 2)
"""

RAY = Path(sys.executable).with_name("ray")
COMPARED = ("student", "status", "score", "failures", "reason")  # notes differ: a cluster row names its node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    # --block keeps `ray start` in the foreground and its processes in one new session: the fixture stops
    # exactly those (never `ray stop`, which stops every Ray process of this host, other users' included).
    with log.open("w") as out:
        return subprocess.Popen([str(RAY), "start", "--block", "--disable-usage-stats", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(2)  # raylet and GCS leave after `ray start` itself: look once more, SIGKILL what stayed


def _tail(log: Path) -> str:
    return f"--- {log.name}:\n" + (log.read_text()[-2000:] if log.exists() else "(no log)\n")


def _wait_for_gcs(address: str, head: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Until the head's GCS port accepts connections: a second node started earlier fails to join."""
    host, port = address.split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"the Ray head exited with code {head.returncode}\n" + _tail(log))
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the Ray head's GCS did not listen on {address} within {timeout:.0f} s\n" + _tail(log))


def _start_cluster(folder: Path, env: dict, nodes: list[subprocess.Popen]) -> str:
    """Start a head and a second node into ``nodes`` (so the caller stops whatever started); their address
    once Ray counts both alive, or RuntimeError with the logs."""
    address = f"127.0.0.1:{_free_port()}"
    common = ["--num-cpus", "1", "--object-store-memory", str(80 * 2**20), "--temp-dir", str(folder / "ray")]
    # Free ports of our own: another Ray cluster on this host (another user's) holds the defaults.
    nodes.append(_start(["--head", "--port", address.split(":")[1], "--include-dashboard", "false",
                         "--ray-client-server-port", str(_free_port()), "--dashboard-agent-listen-port",
                         str(_free_port()), *common], env, folder / "head.log"))
    _wait_for_gcs(address, nodes[0], folder / "head.log")
    nodes.append(_start(["--address", address, "--dashboard-agent-listen-port", str(_free_port()), *common],
                        env, folder / "node.log"))
    logs = _tail(folder / "head.log") + _tail(folder / "node.log")
    try:
        ready = subprocess.run([sys.executable, "-c", WAIT_FOR_NODES, address], env=env, timeout=150,
                               capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"ray.init({address!r}) did not return within 150 s\n{logs}") from None
    if ready.returncode:
        raise RuntimeError(f"the second node did not join:\n{ready.stderr[-2000:]}\n{logs}")
    return address


def _stop_cluster(folder: Path, nodes: list[subprocess.Popen]) -> list[int]:
    """Stop the nodes and everything they started; the pids of Ray processes that outlived them."""
    family = []  # every process the nodes started (GCS, raylets, Ray workers), to check none outlives them
    for process in nodes:
        with contextlib.suppress(psutil.Error):
            family += psutil.Process(process.pid).children(recursive=True)
    for process in reversed(nodes):
        _stop(process)
    _, alive = psutil.wait_procs(family, timeout=5)
    left = [p.pid for p in alive]
    left += [p.pid for p in psutil.process_iter(["cmdline"]) if str(folder) in " ".join(p.info["cmdline"] or [])]
    shutil.rmtree(folder, ignore_errors=True)
    return left


@pytest.fixture(scope="module")
def cluster():
    """A head (1 CPU) and a second node (1 CPU) on this host; yields the head's address and environment.

    A cluster that does not come up is started once more from scratch (new ports, new folder) and the first
    try's logs are kept for the failure message: on a loaded 2-core CI host a start has timed out once."""
    failures = []
    for _ in range(2):
        folder = Path(tempfile.mkdtemp(prefix="slray-", dir="/tmp"))  # short: Ray's socket paths fit 107 bytes
        token = folder / "token"
        token.write_text(os.urandom(32).hex())
        token.chmod(0o600)
        env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
               "PATH": f"{RAY.parent}{os.pathsep}{os.environ['PATH']}"}
        nodes: list[subprocess.Popen] = []
        try:
            address = _start_cluster(folder, env, nodes)
        except RuntimeError as error:
            failures.append(str(error))
            left = _stop_cluster(folder, nodes)
            assert not left, f"Ray processes of a failed test cluster still running: {left}"
            continue
        try:
            yield address, env
        finally:
            left = _stop_cluster(folder, nodes)
            assert not left, f"Ray processes of the test cluster still running: {left}"
        return
    pytest.fail("a two-node Ray cluster did not start twice:\n" + "\n".join(failures))


def _grade(folder: Path, out: Path, *flags: str, env: dict | None = None) -> tuple[int, dict[str, dict]]:
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "spark_labs.cli", "grade", str(folder), "--lab", "00",
                             "--profile", "tiny", "--solutions", str(ROOT / "solutions"),
                             "--out", str(out / "gradebook.csv"), *flags], env=env, timeout=900,
                            capture_output=True, text=True)
    assert (out / "gradebook.csv").exists(), result.stderr[-3000:]
    _, rows = read_gradebook(out / "gradebook.csv")
    return result.returncode, {row["student"]: row for row in rows[:-1]}


def test_cluster_gradebook_is_the_local_one(cluster, tmp_path):
    made = make_submissions(tmp_path / "all")
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("honest_buggy", "checkpoint_redefined"):
        shutil.copy(made[name], folder / f"{name}.ipynb")
    (folder / "broken.ipynb").write_text("{ not a notebook")  # an error row, graded on a node as well

    local_code, local = _grade(folder, tmp_path / "local", "--workers", "2")
    cluster_code, remote = _grade(folder, tmp_path / "cluster", "--cluster", cluster[0], env=cluster[1])

    assert cluster_code == local_code == 1  # the broken notebook is an error row both ways
    assert local["honest_buggy"]["status"] == "failed" and local["broken"]["status"] == "error"
    for student, row in local.items():
        assert {k: remote[student][k] for k in COMPARED} == {k: row[k] for k in COMPARED}, student
        checkpoints = [k for k in row if k.startswith("00.")]
        assert [remote[student][k] for k in checkpoints] == [row[k] for k in checkpoints], student
        assert remote[student]["submission"] == row["submission"]  # the original path, not the node's copy
    # Two submissions, two nodes of one CPU each: Ray put one on each.
    ran_on = {row["notes"].split("graded on Ray node ")[1].split()[0] for row in remote.values()
              if "graded on Ray node" in row["notes"]}
    assert len(ran_on) == 2, [row["notes"] for row in remote.values()]


def _kill_grading_workers(stop: threading.Event, killed: list[int], groups: set[Path]) -> None:
    """Kill every Ray worker that runs a grading task as soon as it shows up, with the sandbox it started: a
    worker killed alone leaves its sandbox running (the sandbox outlives its parent; see the docs)."""
    while not stop.is_set():
        for proc in psutil.process_iter(["cmdline"]):
            if not (proc.info["cmdline"] or [""])[0].startswith("ray::_grade_on_node") or proc.pid in killed:
                continue
            try:
                family = [proc, *proc.children(recursive=True)]
            except psutil.Error:
                continue
            for member in family:
                try:
                    lines = Path(f"/proc/{member.pid}/cgroup").read_text().splitlines()
                    groups.update(Path("/sys/fs/cgroup", line.split(":", 2)[2].lstrip("/")) for line in lines
                                  if "spark-labs-grade-" in line)
                    member.kill()
                except (OSError, psutil.Error):
                    pass
            killed.append(proc.pid)
        time.sleep(0.5)


def test_a_node_lost_twice_is_an_error_row_never_dropped(cluster, tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    make_hanging(folder)  # runs until stopped: its worker is sure to be killed mid-grading
    stop, killed, groups = threading.Event(), [], set()
    killer = threading.Thread(target=_kill_grading_workers, args=(stop, killed, groups), daemon=True)
    killer.start()
    try:
        code, rows = _grade(folder, tmp_path / "out", "--cluster", cluster[0], "--timeout", "120", env=cluster[1])
    finally:
        stop.set()
        killer.join()
        for group in groups:  # the killed sandboxes' cgroups, empty now (their owner never got to remove them)
            with contextlib.suppress(OSError):
                group.rmdir()
    assert code == 1
    assert rows["hangs"]["status"] == "error"
    assert "lost (2 tries)" in rows["hangs"]["reason"], rows["hangs"]["reason"]
    assert len(killed) == 2  # the first try and Ray's one retry


@pytest.mark.parametrize(("flags", "says"), [
    (["--cluster", "nowhere"], "is not a Ray address"),
    (["--cluster", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
    (["--cluster", "auto", "--workers", "2"], "--workers does not apply with --cluster"),
    (["--task-cpus", "2"], "--task-cpus needs --cluster"),
    (["--cluster", "127.0.0.1:6379", "--task-gpus", "-1"], "too small"),
])
def test_bad_cluster_flags_are_one_line_and_exit_2(tmp_path, flags, says):
    folder = tmp_path / "class"
    folder.mkdir()
    result = subprocess.run([sys.executable, "-m", "spark_labs.cli", "grade", str(folder), "--lab", "00",
                             "--solutions", str(ROOT / "solutions"), "--out", str(tmp_path / "g.csv"), *flags],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "RAY_AUTH_MODE": "token"})
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unauthenticated_cluster_is_refused(tmp_path, monkeypatch, capsys):
    """A submission reached Ray's client port from inside the wall and ran code outside it (measured on this
    host): without RAY_AUTH_MODE=token the grader refuses the cluster before anything runs."""
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    code = main([str(tmp_path), "--lab", "00", "--solutions", str(ROOT / "solutions"), "--out",
                 str(tmp_path / "g.csv"), "--cluster", "127.0.0.1:6379"])
    assert code == 2
    assert "RAY_AUTH_MODE" in capsys.readouterr().err


def test_grading_without_cluster_never_imports_ray(tmp_path):
    script = ("import sys; from spark_labs.grading.cli import main; "
              f"main([{str(tmp_path / 'missing.ipynb')!r}, '--lab', '00', '--solutions', {str(ROOT / 'solutions')!r}, "
              f"'--out', {str(tmp_path / 'g.csv')!r}, '--workers', '1']); print(json.dumps('ray' in sys.modules))")
    result = subprocess.run([sys.executable, "-c", "import json; " + script], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "false", result.stderr
