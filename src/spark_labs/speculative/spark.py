"""The speculative set-ups of a DGX Spark, as the commands a learner would type there.

Cited from NVIDIA's DGX Spark speculative-decoding playbook (dgx-spark-playbooks,
nvidia/speculative-decoding/README.md): TensorRT-LLM serves EAGLE-3 (gpt-oss-120b with NVIDIA's published
EAGLE-3 head) and draft-target (Llama-3.3-70B FP4 target, Llama-3.1-8B FP4 draft) through
``trtllm-serve --extra_llm_api_options``; the playbook suggests sweeping max_draft_len over 1, 2, 3, 4, 8.
The vLLM and SGLang lines use the same target/draft pairs with those engines' own speculative flags. On the
tiny profile the lab prints these and skips them visibly; it never runs or simulates them.
"""

from __future__ import annotations

import json
import shlex

EAGLE3_TARGET = "openai/gpt-oss-120b"
EAGLE3_HEAD = "nvidia/gpt-oss-120b-Eagle3-long-context"
DRAFT_TARGET = "nvidia/Llama-3.3-70B-Instruct-FP4"
DRAFT_MODEL = "nvidia/Llama-3.1-8B-Instruct-FP4"


def trtllm_yaml(decoding_type: str, draft_dir: str, max_draft_len: int) -> str:
    """The ``--extra_llm_api_options`` file of the playbook: speculative_config plus its KV-cache setting."""
    return (f"speculative_config:\n  decoding_type: {decoding_type}\n  max_draft_len: {max_draft_len}\n"
            f"  speculative_model_dir: {draft_dir}\nkv_cache_config:\n  free_gpu_memory_fraction: 0.9\n")


def spark_setups(k: int = 4) -> dict[str, str]:
    """Name → shell command for each Spark set-up, draft length ``k``."""
    vllm_eagle = json.dumps({"method": "eagle3", "model": EAGLE3_HEAD, "num_speculative_tokens": k})
    vllm_draft = json.dumps({"model": DRAFT_MODEL, "num_speculative_tokens": k})
    return {
        "vLLM EAGLE-3": f"vllm serve {EAGLE3_TARGET} --speculative-config {shlex.quote(vllm_eagle)}",
        "vLLM draft-target": f"vllm serve {DRAFT_TARGET} --speculative-config {shlex.quote(vllm_draft)}",
        "TensorRT-LLM Eagle": f"trtllm-serve {EAGLE3_TARGET} --backend pytorch --extra_llm_api_options eagle.yml"
                              f"  # eagle.yml:\n{trtllm_yaml('Eagle', EAGLE3_HEAD, k)}",
        "TensorRT-LLM DraftTarget": f"trtllm-serve {DRAFT_TARGET} --backend pytorch --extra_llm_api_options "
                                    f"draft.yml  # draft.yml:\n{trtllm_yaml('DraftTarget', DRAFT_MODEL, k)}",
        "SGLang EAGLE3": f"python3 -m sglang.launch_server --model-path {EAGLE3_TARGET} --speculative-algorithm EAGLE3 "
                         f"--speculative-draft-model-path {EAGLE3_HEAD} --speculative-num-steps {k} "
                         f"--speculative-eagle-topk 1 --speculative-num-draft-tokens {k + 1}",
    }
