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
from ..engines import EngineSpec, resolve_engine
from ..engines import launch as launch_engine
from .kv_capacity import read_kv_capacity
from .prefix import run_prefix_workload


def logged_kv_gib(log_text: str, engine: str | EngineSpec) -> float | None:
    """The GiB of KV cache ``engine``'s start-up log reports (vLLM: ``Available KV cache memory: 54.68 GiB``),
    or None where the log has no such line."""
    pattern = resolve_engine(engine).kv_memory_log
    match = re.search(pattern, log_text) if pattern else None
    return float(match.group("gib")) if match else None


def prefix_settings(engines: Sequence[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Name -> (engine, extra flags): each of ``engines`` that can switch its prefix cache off, with the cache
    on (its default) and off, in the order given ("vLLM, prefix caching", "vLLM, no prefix caching", ...)."""
    settings = {}
    for spec in map(resolve_engine, engines):
        if spec.prefix_cache_off_args:
            settings[f"{spec.display_name}, {spec.prefix_cache_name}"] = (spec.name, ())
            settings[f"{spec.display_name}, no {spec.prefix_cache_name}"] = (spec.name, spec.prefix_cache_off_args)
    return settings


def capacity_at_fractions(lab, fractions: Sequence[float] = (0.9, 0.7), *, engine: str | None = None,
                          docker: bool = True, launch: Callable = launch_engine) -> pd.DataFrame:
    """One row per memory-fraction value (vLLM's ``--gpu-memory-utilization``): the KV memory the engine's
    log reports and the blocks, block size and tokens its ``/metrics`` reports (one block is its null block).
    ``engine``: by default the first of the lab's engines whose log reports its KV memory."""
    spec = resolve_engine(engine) if engine else next(
        spec for spec in map(resolve_engine, lab.engines) if spec.kv_memory_log and spec.memory_fraction_flag)
    rows = []
    for fraction in fractions:
        with launch(spec.name, lab.model, port="auto", lab=lab.lab, docker=docker,
                    extra_args=[spec.memory_fraction_flag, str(fraction)]) as handle:
            capacity = read_kv_capacity(handle)
            rows.append({"memory fraction": fraction,
                         f"KV GiB ({spec.display_name}'s log)": logged_kv_gib(handle.logs(2000), spec),
                         "blocks": capacity.num_blocks, "block size": capacity.block_size,
                         "tokens": capacity.tokens, "usable tokens": capacity.usable_tokens})
    return pd.DataFrame(rows)


def prefix_caches_compared(lab, requests: list[BenchRequest],
                           settings: Mapping[str, tuple[str, Sequence[str]]] | None = None, *,
                           docker: bool = True, launch: Callable = launch_engine) -> pd.DataFrame:
    """One row per setting (by default :func:`prefix_settings` of the lab's engines): ``requests`` sent one
    after another to a freshly started engine (a cold cache), with the prefix-cache counters the run moved,
    read under that engine's own series names, and the hit rate they give."""
    rows = {}
    for name, (engine_name, extra) in (settings or prefix_settings(lab.engines)).items():
        spec = resolve_engine(engine_name)
        with launch(spec.name, lab.model, port="auto", lab=lab.lab, docker=docker,
                    extra_args=list(extra)) as handle:
            target = Target.from_engine(handle, protocol="openai-completions")
            rows[name] = run_prefix_workload(target, handle.metrics_url, requests,
                                             counters=spec.prefix_cache_counters)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["hit_rate"] = table["hit_tokens"] / table["queried_tokens"].where(table["queried_tokens"] > 0)
    return table
