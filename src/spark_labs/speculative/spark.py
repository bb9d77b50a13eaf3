"""The speculative set-ups of a DGX Spark, as the commands a learner would type there.

Cited from NVIDIA's DGX Spark speculative-decoding playbook (dgx-spark-playbooks,
nvidia/speculative-decoding/README.md): TensorRT-LLM serves EAGLE-3 (gpt-oss-120b with NVIDIA's published
EAGLE-3 head) and draft-target (Llama-3.3-70B FP4 target, Llama-3.1-8B FP4 draft) through
``trtllm-serve --extra_llm_api_options``; the playbook suggests sweeping max_draft_len over 1, 2, 3, 4, 8.
The vLLM and SGLang lines use the same target/draft pairs with those engines' own speculative flags. On the
spark profile :func:`run_spark_setup` starts each set-up's container through the launcher, the target alone
and then with its draft, and measures both on the same prompts (:func:`~.under_load.run_sweep`); on the tiny
profile the lab prints the commands and skips them visibly; it never runs or simulates them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pandas as pd

from ..engines.registry import trtllm_yaml

EAGLE3_TARGET = "openai/gpt-oss-120b"
EAGLE3_HEAD = "nvidia/gpt-oss-120b-Eagle3-long-context"
DRAFT_TARGET = "nvidia/Llama-3.3-70B-Instruct-FP4"
DRAFT_MODEL = "nvidia/Llama-3.1-8B-Instruct-FP4"


@dataclass(frozen=True)
class SparkSetup:
    engine: str   # registry key
    method: str   # "eagle3" or "draft" (EngineSpec.speculative_args)
    target: str   # HF id the engine serves
    draft: str    # HF id of the EAGLE-3 head or draft model trained for that target


SETUPS = {
    "vLLM EAGLE-3": SparkSetup("vllm", "eagle3", EAGLE3_TARGET, EAGLE3_HEAD),
    "vLLM draft-target": SparkSetup("vllm", "draft", DRAFT_TARGET, DRAFT_MODEL),
    "TensorRT-LLM Eagle": SparkSetup("trtllm", "eagle3", EAGLE3_TARGET, EAGLE3_HEAD),
    "TensorRT-LLM DraftTarget": SparkSetup("trtllm", "draft", DRAFT_TARGET, DRAFT_MODEL),
    "SGLang EAGLE3": SparkSetup("sglang", "eagle3", EAGLE3_TARGET, EAGLE3_HEAD),
}


def spark_setups(k: int = 4) -> dict[str, str]:
    """Name → the shell command a learner would type on a Spark for each set-up, draft length ``k``: the
    engine's own speculative flags (:meth:`~spark_labs.engines.EngineSpec.speculative_args`), or for
    TensorRT-LLM the options file written out beside the command."""
    from ..engines.registry import ENGINES, TRTLLM_DECODING

    commands = {}
    for name, setup in SETUPS.items():
        if setup.engine == "trtllm":
            file = f"{'eagle' if setup.method == 'eagle3' else 'draft'}.yml"
            commands[name] = (f"trtllm-serve {setup.target} --backend pytorch --extra_llm_api_options {file}  "
                              f"# {file}:\n{trtllm_yaml(TRTLLM_DECODING[setup.method], setup.draft, k)}")
            continue
        flags = shlex.join(ENGINES[setup.engine].speculative_args(setup.method, k, setup.draft))
        serve = {"vllm": "vllm serve", "sglang": "python3 -m sglang.launch_server --model-path"}[setup.engine]
        commands[name] = f"{serve} {setup.target} {flags}"
    return commands




def run_spark_setup(plan, name: str, k: int = 4, workloads=("code-edit", "open-chat"), concurrencies=(1, 4),
                    max_tokens: int = 128, timeout: float = 3600, launch=None, **options) -> pd.DataFrame:
    """Set-up ``name`` of :data:`SETUPS` measured on a Spark: its container with speculation, then the target
    alone, the same prompts at each concurrency; the speed-up table with α where the engine counts acceptance
    (vLLM). ``timeout`` covers the first start's download of the target inside the container."""
    from .under_load import run_sweep

    setup = SETUPS[name]
    table, _, _ = run_sweep(plan, setup.engine, k, workloads, concurrencies, max_tokens, timeout=timeout,
                            method=setup.method, model=setup.target, draft=setup.draft, docker=True,
                            launch=launch, **options)
    return table.assign(setup=name)
