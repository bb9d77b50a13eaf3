"""Lab 02 §6 on a DGX Spark: the KV capacity vLLM allocates at two memory fractions, and SGLang's radix cache
against vLLM's prefix cache on one shared-prefix workload.

Each engine is started through the launcher (``docker=True``: its playbook container on a Spark), measured,
and stopped before the next starts, since one GPU serves one of them at a time. What is read comes from the
engines themselves: vLLM's block count from ``/metrics`` and the KV memory its start-up log reports, each
engine's own prefix-cache counters (:attr:`~spark_labs.engines.EngineSpec.prefix_cache_counters`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from ..bench.clients import BenchRequest, Target
from ..engines import launch as launch_engine
from ..engines import resolve_engine
from .kv_capacity import read_kv_capacity
from .prefix import run_prefix_workload

_KV_MEMORY_LINE = re.compile(r"Available KV cache memory: (?P<gib>[\d.]+) GiB")

# name -> (engine, extra flags): each engine with its prefix cache on (its default) and off
PREFIX_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "vLLM, prefix caching": ("vllm", ()),
    "vLLM, no prefix caching": ("vllm", ("--no-enable-prefix-caching",)),
    "SGLang, radix cache": ("sglang", ()),
    "SGLang, no radix cache": ("sglang", ("--disable-radix-cache",)),
}


def logged_kv_gib(log_text: str) -> float | None:
    """The GiB of KV cache vLLM's start-up log reports (``Available KV cache memory: 54.68 GiB``), or None."""
    match = _KV_MEMORY_LINE.search(log_text)
    return float(match.group("gib")) if match else None


def capacity_at_fractions(lab, fractions: Sequence[float] = (0.9, 0.7), *, docker: bool = True,
                          launch: Callable = launch_engine) -> pd.DataFrame:
    """One row per ``--gpu-memory-utilization`` value: the KV memory vLLM's log reports and the blocks,
    block size and tokens its ``/metrics`` reports (one block is its null block)."""
    flag = resolve_engine("vllm").memory_fraction_flag
    rows = []
    for fraction in fractions:
        with launch("vllm", lab.model, port="auto", lab=lab.lab, docker=docker,
                    extra_args=[flag, str(fraction)]) as engine:
            capacity = read_kv_capacity(engine)
            rows.append({"memory fraction": fraction, "KV GiB (vLLM's log)": logged_kv_gib(engine.logs(2000)),
                         "blocks": capacity.num_blocks, "block size": capacity.block_size,
                         "tokens": capacity.tokens, "usable tokens": capacity.usable_tokens})
    return pd.DataFrame(rows)


def prefix_caches_compared(lab, requests: list[BenchRequest],
                           settings: Mapping[str, tuple[str, Sequence[str]]] = PREFIX_SETTINGS, *,
                           docker: bool = True, launch: Callable = launch_engine) -> pd.DataFrame:
    """One row per setting: ``requests`` sent one after another to a freshly started engine (a cold cache),
    with the prefix-cache counters the run moved and the hit rate they give."""
    rows = {}
    for name, (engine_name, extra) in settings.items():
        with launch(engine_name, lab.model, port="auto", lab=lab.lab, docker=docker,
                    extra_args=list(extra)) as engine:
            target = Target.from_engine(engine, protocol="openai-completions")
            rows[name] = run_prefix_workload(target, engine.metrics_url, requests,
                                             counters=engine.spec.prefix_cache_counters)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["hit_rate"] = table["hit_tokens"] / table["queried_tokens"].where(table["queried_tokens"] > 0)
    return table
