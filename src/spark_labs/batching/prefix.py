"""Automatic prefix caching, measured: requests that share a long system prompt, with the engine's own
prefix-cache counters read before and after.

vLLM counts, in tokens, how much of each new prompt it looked up in its cache (``prefix_cache_queries``)
and how much it found there (``prefix_cache_hits``); SGLang counts the prompt tokens it processed and
how many of them came from its radix cache. The hit rate of a run is the ratio of the two counters'
increases over the run. Prompts are sized with the model's tokenizer and sent to the
completions route, so the shared part is exactly ``shared_tokens`` long and no chat template moves it.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pandas as pd

from ..bench.clients import BenchRequest, Target
from ..bench.load import Load, run_load
from ..bench.metrics import request_metrics
from ..bench.prompts import synthetic_prompt
from ..bench.server_metrics import Scrape
from ..engines import ENGINES


def prefix_counters(metrics_url: str, counters: Mapping[str, str] | None = None) -> dict[str, float]:
    """The engine's prefix-cache counters now, in tokens. ``counters``: the engine's series for "queries" and
    "hits" (:attr:`~spark_labs.engines.EngineSpec.prefix_cache_counters`); by default those of the first
    registered engine whose "queries" series is on the page. Zeros when none is (nothing counted yet)."""
    scrape = Scrape.parse(httpx.get(metrics_url, timeout=10).text)
    if counters is None:
        known = [spec.prefix_cache_counters for spec in ENGINES.values() if spec.prefix_cache_counters]
        counters = next((names for names in known if names["queries"] in scrape.counters), known[0])
    return {key: scrape.counters.get(counters[key], 0.0) for key in ("queries", "hits")}


def shared_prefix_requests(tokenizer, shared_tokens: int, question_tokens: int, n: int, output_tokens: int,
                           seed: int = 0) -> list[BenchRequest]:
    """``n`` prompts that start with the same ``shared_tokens`` and end with a different question each.

    ``seed`` picks the shared text: a new seed is a prefix the engine has never seen (a cold cache)."""
    shared = synthetic_prompt(tokenizer, shared_tokens, seed=10_000 + seed)
    return [BenchRequest(f"prefix-{seed}-{i}", shared + " " + synthetic_prompt(tokenizer, question_tokens, seed=i + 1),
                         output_tokens, workload=f"shared {shared_tokens}-token prefix", force_length=True)
            for i in range(n)]


def run_prefix_workload(target: Target, metrics_url: str, requests: list[BenchRequest],
                        counters: Mapping[str, str] | None = None) -> dict:
    """Send the requests one after another (TTFT is then the prefill alone, not a queue) and return the
    TTFT distribution with the counter increases the run caused (``counters``: as for
    :func:`prefix_counters`)."""
    before = prefix_counters(metrics_url, counters)
    run = run_load(target, requests, Load("sequential", warmup=0), progress=False, server_metrics=False)
    after = prefix_counters(metrics_url, counters)
    row = run.summary.row()
    return {"requests": run.summary.completed, "failed": run.summary.failed,
            "ttft_p50_ms": row["ttft_p50"] * 1e3, "ttft_first_ms": _first_ttft_ms(run),
            "queried_tokens": after["queries"] - before["queries"], "hit_tokens": after["hits"] - before["hits"]}


def _first_ttft_ms(run) -> float | None:
    """The first request's TTFT: with a cold cache it pays for the whole shared prefix."""
    first = request_metrics(min(run.records, key=lambda r: r.sent_ns))
    return first.ttft_s * 1e3 if first.ttft_s is not None else None


def comparison(rows: dict[str, dict]) -> pd.DataFrame:
    """One row per setting ("prefix caching on" / "off")."""
    return pd.DataFrame.from_dict(rows, orient="index")
