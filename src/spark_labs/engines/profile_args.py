"""The spark profile's serving flags for each engine, added on top of its recipe in registry.py.

The registry knows how to start an engine; this module knows what the spark profile asks of it on a
DGX Spark: how long a context, how much of the unified memory, which reasoning parser. Values follow
NVIDIA's DGX Spark playbooks (reference: nvidia/vllm, nvidia/sglang, nvidia/trt-llm, nvidia/llama-cpp):
- vLLM: ``--max-model-len``, ``--gpu-memory-utilization`` (playbooks use 0.4-0.9; the nemotron playbook's
  tuning order lowers it toward 0.70 first, and the lab kernel shares the same memory), and
  ``--reasoning-parser qwen3`` for Qwen3, as the playbook's reasoning recipes do. No ``--enforce-eager``.
- SGLang: ``--mem-fraction-static 0.75`` is in its recipe already; here the context length and the
  reasoning parser.
- TensorRT-LLM: ``--max_batch_size 64`` as in the playbook's ``trtllm-serve`` line, and the context length.
- llama.cpp (native on a Spark, built with CUDA): every layer on the GPU and the profile's context.
The tiny profile adds nothing: its commands are the plain recipes the tests start for real.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import EngineNotInstalledError
from ..profiles import ModelRef, Profile, get_profile
from .engine_spec import EngineSpec
from .registry import ENGINES

GPU_MEMORY_FRACTION = "0.7"  # of unified memory: the OS, the lab kernel and page cache share the rest
TRTLLM_MAX_BATCH = "64"  # nvidia/trt-llm playbook's trtllm-serve line


def serving_args(engine: str | EngineSpec, model: ModelRef | str, profile: Profile, docker: bool) -> list[str]:
    """Flags the profile adds for ``engine`` serving ``model``, as ``--flag value`` pairs (none on tiny)."""
    if profile.name != "spark":
        return []
    name = engine.name if isinstance(engine, EngineSpec) else engine
    context = str(profile.sizes.max_model_len)
    parser = model.reasoning_parser if isinstance(model, ModelRef) else None
    if name == "vllm":
        return ["--max-model-len", context, "--gpu-memory-utilization", GPU_MEMORY_FRACTION,
                *(["--reasoning-parser", parser] if parser else [])]
    if name == "sglang":
        return ["--context-length", context, *(["--reasoning-parser", parser] if parser else [])]
    if name == "trtllm":
        return ["--max_batch_size", TRTLLM_MAX_BATCH, "--max_seq_len", context]
    if name == "llamacpp":
        # The container is llama.cpp's own C++ server; the native install is llama-cpp-python's server.
        return ["-c", context] if docker else ["--n_gpu_layers", "-1", "--n_ctx", context]
    return []


def merge_args(profile_args: Sequence[str], caller_args: Sequence[str]) -> list[str]:
    """The profile's ``--flag value`` pairs that the caller does not set, then the caller's arguments."""
    given = {arg for arg in caller_args if arg.startswith("-")}
    pairs = zip(profile_args[::2], profile_args[1::2], strict=True)
    return [*(word for flag, value in pairs if flag not in given for word in (flag, value)), *caller_args]


def _spec(key: str) -> EngineSpec:
    # The launcher's resolve_engine also takes aliases, but the launcher imports this module: keys only here.
    if key not in ENGINES:
        raise EngineNotInstalledError(f"Unknown engine {key!r}. Known engines: {', '.join(sorted(ENGINES))}.")
    return ENGINES[key]


def spark_command(engine: str | EngineSpec, model: ModelRef | str | None = None, *, lab: str | None = None,
                  port: int | None = None, eager: bool = False, docker: bool = True,
                  extra_args: Sequence[str] = ()) -> list[str]:
    """The command the spark profile runs for ``engine`` (container recipe unless ``docker=False``).

    ``eager=True`` adds vLLM's ``--enforce-eager`` (CUDA graphs off); other engines have no such switch.
    """
    spec = engine if isinstance(engine, EngineSpec) else _spec(engine)
    if eager and spec.name != "vllm":
        raise ValueError(f"eager=True switches off vLLM's CUDA graphs; {spec.display_name} has no such switch. "
                         "Drop eager= for this engine.")
    profile = get_profile("spark")
    model_ref = model if model is not None else profile.model_for(lab)
    args = merge_args(serving_args(spec, model_ref, profile, docker), extra_args)
    if docker:
        options = {"enforce_eager": eager} if spec.name == "vllm" else {}
        return spec.docker_command(model_ref, port=port, extra_args=args, **options)
    if eager and spec.name == "vllm":
        args = ["--enforce-eager", *args]
    return spec.local_command(model_ref, port=port or spec.default_port, extra_args=args)
