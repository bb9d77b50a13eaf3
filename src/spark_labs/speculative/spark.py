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
from pathlib import Path

import pandas as pd

from ..engines import EngineSpec, resolve_engine
from ..engines.profile_args import spark_command
from ..profiles import get_profile

EAGLE3_TARGET = "openai/gpt-oss-120b"
EAGLE3_HEAD = "nvidia/gpt-oss-120b-Eagle3-long-context"
DRAFT_TARGET = "nvidia/Llama-3.3-70B-Instruct-FP4"
DRAFT_MODEL = "nvidia/Llama-3.1-8B-Instruct-FP4"
# method (EngineSpec.speculative_args) -> its name in the lab, the target, and the draft trained for it
METHODS = {"eagle3": ("EAGLE-3", EAGLE3_TARGET, EAGLE3_HEAD), "draft": ("draft-target", DRAFT_TARGET, DRAFT_MODEL)}


@dataclass(frozen=True)
class SparkSetup:
    engine: str   # registry key
    method: str   # "eagle3" or "draft" (EngineSpec.speculative_args)
    target: str   # HF id the engine serves
    draft: str    # HF id of the EAGLE-3 head or draft model trained for that target


def setups_for(engines) -> dict[str, SparkSetup]:
    """Every pairing of one of ``engines`` with a method of :data:`METHODS` it can start, engine by engine:
    "vLLM EAGLE-3", "vLLM draft-target", ..."""
    return {f"{spec.short_name} {label}": SparkSetup(spec.name, method, target, draft)
            for spec in map(resolve_engine, engines) for method, (label, target, draft) in METHODS.items()
            if method in spec.speculative_methods}


SETUPS = setups_for(get_profile("spark").engines)


def _in_container(spec: EngineSpec, argv: list[str]) -> str:
    """What runs inside the engine's container (the words after its image), with any options file the
    command reads shown by name and printed below it."""
    words, files = [], []
    for word in argv[argv.index(spec.docker_image) + 1:]:
        path = Path(word)
        if path.is_absolute() and path.is_file():
            files.append(path)
            word = path.name
        words.append(word)
    return shlex.join(words) + "".join(f"\n# {path.name}:\n{path.read_text()}" for path in files)


def spark_setups(k: int = 4) -> dict[str, str]:
    """Name → what the set-up's container runs on a Spark, draft length ``k``: the spark profile's serving
    flags and the engine's own speculative flags (:meth:`~spark_labs.engines.EngineSpec.speculative_args`),
    as :func:`run_spark_setup` starts it (there on a free port)."""
    commands = {}
    for name, setup in SETUPS.items():
        spec = resolve_engine(setup.engine)
        argv = spark_command(spec, setup.target, extra_args=spec.speculative_args(setup.method, k, setup.draft))
        commands[name] = _in_container(spec, argv)
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
