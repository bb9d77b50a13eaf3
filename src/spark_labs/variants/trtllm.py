"""TensorRT-LLM's serving recipe as NVIDIA's DGX Spark playbook nvidia/trt-llm runs it (github.com/NVIDIA/
dgx-spark-playbooks, at the commit ``engines/registry.py`` cites; the flags are tabled in ``docs/engines.md``).

``trtllm-serve`` with the PyTorch backend reads its engine budget from an ``--extra_llm_api_options`` YAML
(KV-cache share of free GPU memory, CUDA-graph padding); there is no separate engine build on that path (no
Spark playbook uses ``trtllm-build``). The lab compares the lab model in bf16 with a published
NVFP4/FP8 checkpoint of it. Commands are built here and run by the launcher; nothing here runs them.
"""

from __future__ import annotations

from pathlib import Path

# The playbook's YAML values.
PLAYBOOK_OPTIONS = {"kv_cache_config": {"free_gpu_memory_fraction": 0.9}, "cuda_graph_config": {"enable_padding": True}}
# Published quantized checkpoints of the lab models (NVIDIA's Hugging Face organisation, named in the playbooks).
QUANTIZED_CHECKPOINTS = {"meta-llama/Llama-3.1-8B-Instruct": "nvidia/Llama-3.1-8B-Instruct-FP4"}


def write_extra_options(path: Path, free_gpu_memory_fraction: float = 0.9, enable_padding: bool = True) -> Path:
    """The ``--extra_llm_api_options`` YAML (written by hand: two keys do not need a YAML library)."""
    if not 0 < free_gpu_memory_fraction <= 1:
        raise ValueError(f"free_gpu_memory_fraction must be in (0, 1], got {free_gpu_memory_fraction}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("kv_cache_config:\n"
                    f"  free_gpu_memory_fraction: {free_gpu_memory_fraction}\n"
                    "cuda_graph_config:\n"
                    f"  enable_padding: {'true' if enable_padding else 'false'}\n")
    return path


def options_path() -> Path:
    """Where the YAML goes: inside the HF cache, the one host folder the launcher mounts into the container."""
    return Path.home() / ".cache" / "huggingface" / "spark-labs" / "trtllm-options.yml"


def serve_args(options: Path, docker: bool = True) -> list[str]:
    """Extra arguments for the launcher's trtllm command (it adds the model, port and --backend pytorch).

    In the container the HF cache is mounted at /root/.cache/huggingface, so the YAML's path is mapped there.
    """
    options = Path(options)
    if docker:
        hf_cache = Path.home() / ".cache" / "huggingface"
        options = Path("/root/.cache/huggingface") / options.relative_to(hf_cache)
    return ["--extra_llm_api_options", str(options)]


def checkpoints_for(hf_id: str) -> dict[str, str]:
    """bf16 and the published quantized checkpoint of the lab's model (when NVIDIA publishes one)."""
    pairs = {"bf16": hf_id}
    if hf_id in QUANTIZED_CHECKPOINTS:
        pairs["nvfp4"] = QUANTIZED_CHECKPOINTS[hf_id]
    return pairs
