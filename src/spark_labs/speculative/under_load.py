"""When speculation stops paying: one engine with and without speculation, at rising concurrency.

At batch 1 a decode step leaves compute idle and verifying k + 1 tokens costs about as much as one, so
accepted drafts come almost free. As the batch grows, the other streams' tokens fill that compute and every
drafted token is real extra work; the speed-up shrinks and can turn into a slowdown.

Each side is one server, started once. For each concurrency the course harness
(:func:`spark_labs.bench.run_load`) sends the same greedy requests in a closed loop with its default ramp-up
(stream starts spread over one warm-up request's E2E; the regime is recorded per run). Requests decode
until end of sequence, so both sides generate the same tokens and their tok/s measure the same work; the
``same output`` column checks that. Where the engine keeps spec-decode counters, the speculative side's
acceptance per level is read from them (the level's warm-up request included).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..bench.clients import BenchRequest, Target
from ..bench.load import Load, RunResult, run_load
from ..bench.metrics import request_metrics
from .server_counters import ServerAcceptance
from .workloads import workload_prompt

SWEEP_CONCURRENCY = (1, 4, 16)


@dataclass
class LevelRun:
    workload: str
    concurrency: int
    result: RunResult
    acceptance: ServerAcceptance | None  # from the engine's counters; None without speculation or counters


def _check_levels(concurrencies: Sequence[int]) -> tuple[int, ...]:
    levels = tuple(concurrencies)
    if not levels or any(int(c) != c or c < 1 for c in levels):
        raise ValueError(f"concurrency levels must be whole numbers >= 1, e.g. 1,4,16; got {list(levels)}")
    return levels


def level_requests(workload: str, concurrency: int, max_tokens: int,
                   requests_per_stream: int = 2) -> list[BenchRequest]:
    """The workload's prompt, ``requests_per_stream`` times per stream, decoding until end of sequence."""
    if requests_per_stream < 1 or max_tokens < 2:
        raise ValueError("each stream needs at least one request of at least 2 tokens (requests_per_stream >= 1, "
                         "max_tokens >= 2)")
    prompt = workload_prompt(workload)
    return [BenchRequest(f"{workload}-c{concurrency}-{i}", prompt, max_tokens, workload, force_length=False)
            for i in range(concurrency * requests_per_stream)]


def measure_level(target: Target, workload: str, concurrency: int, max_tokens: int = 48,
                  requests_per_stream: int = 2, spec=None, progress=True) -> LevelRun:
    """One closed-loop run at ``concurrency``; ``spec`` (an EngineSpec with spec-decode counters) also reads
    the acceptance the server counted during it."""
    import httpx

    def scrape() -> ServerAcceptance:
        return ServerAcceptance.parse(httpx.get(target.metrics_url, timeout=30).text, spec)

    counted = spec is not None and bool(spec.spec_decode_counters) and target.metrics_url
    before = scrape() if counted else None
    result = run_load(target, level_requests(workload, concurrency, max_tokens, requests_per_stream),
                      Load("concurrent", concurrency), progress=progress)
    failed = [r.error for r in result.records if not r.ok]
    if failed:
        raise RuntimeError(f"{target.name}: {len(failed)} request(s) failed at concurrency {concurrency}: {failed[0]}")
    return LevelRun(workload, concurrency, result, scrape() - before if counted else None)


def side_summary(run: LevelRun) -> dict:
    """One side of a comparison: mean per-stream tok/s (1 / TPOT), TPOT, aggregate output tok/s, mean E2E
    and output tokens per request, and the answers."""
    per = [request_metrics(r) for r in run.result.records]
    tpots = [m.tpot_s for m in per if m.tpot_s]
    return {"per_stream_tok_s": float(np.mean([1 / t for t in tpots])) if tpots else float("nan"),
            "tpot_ms": float(np.mean(tpots)) * 1e3 if tpots else float("nan"),
            "aggregate_tok_s": run.result.summary.output_throughput,
            "e2e_s": float(np.mean([m.e2e_s for m in per])), "tokens": float(np.mean([m.output_tokens for m in per])),
            "texts": [r.answer_text for r in run.result.records]}


def speedup_table(baseline: Sequence[LevelRun], speculative: Sequence[LevelRun]) -> pd.DataFrame:
    """One row per (workload, concurrency): both sides' tok/s per stream and in aggregate, TPOT, the
    speed-ups (speculative ÷ baseline), acceptance, the share of identical answers and the regime."""
    base = {(r.workload, r.concurrency): r for r in baseline}
    rows = []
    for run in speculative:
        key = (run.workload, run.concurrency)
        if key not in base:
            raise ValueError(f"no baseline run for {run.workload} at concurrency {run.concurrency}")
        b, s = side_summary(base[key]), side_summary(run)
        acc = run.acceptance
        rows.append({
            "workload": run.workload, "concurrency": run.concurrency, "requests": len(run.result.records),
            "baseline tok/s per stream": b["per_stream_tok_s"], "spec tok/s per stream": s["per_stream_tok_s"],
            "baseline tok/s aggregate": b["aggregate_tok_s"], "spec tok/s aggregate": s["aggregate_tok_s"],
            "baseline TPOT ms": b["tpot_ms"], "spec TPOT ms": s["tpot_ms"],
            "speedup": s["aggregate_tok_s"] / b["aggregate_tok_s"] if b["aggregate_tok_s"] else float("nan"),
            "speedup per stream": s["per_stream_tok_s"] / b["per_stream_tok_s"],
            "alpha": acc.alpha if acc else float("nan"),
            "tokens per step": acc.tokens_per_step if acc else float("nan"),
            "same output": sum(t in set(b["texts"]) for t in s["texts"]) / len(s["texts"]),
            "regime": f"baseline: {base[key].result.regime}; spec: {run.result.regime}",
        })
    return pd.DataFrame(rows)


def crossover(table: pd.DataFrame, workload: str | None = None, column: str = "speedup") -> int | None:
    """The lowest concurrency at which speculation was slower than the baseline (speed-up < 1), or None."""
    rows = table if workload is None else table[table["workload"] == workload]
    losing = rows.loc[rows[column] < 1.0, "concurrency"]
    return int(losing.min()) if len(losing) else None


def speedup_figure(table: pd.DataFrame, marks: dict[str, int | None] | None = None):
    """Speed-up against concurrency, one line per workload, with 1.0 (break-even) dotted; ``marks`` maps a
    workload to a crossover concurrency to circle (None: it never lost)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for workload, rows in table.groupby("workload", sort=False):
        fig.add_scatter(x=rows["concurrency"], y=rows["speedup"], mode="lines+markers", name=f"{workload}: aggregate",
                        hovertext=rows["regime"])
        fig.add_scatter(x=rows["concurrency"], y=rows["speedup per stream"], mode="lines+markers",
                        line_dash="dash", name=f"{workload}: per stream")
        at = (marks or {}).get(workload)
        if at is not None:
            y = float(rows.loc[rows["concurrency"] == at, "speedup"].iloc[0])
            fig.add_scatter(x=[at], y=[y], mode="markers", marker={"size": 18, "symbol": "circle-open"},
                            name=f"{workload}: crossover at {at}")
    fig.add_hline(y=1, line_dash="dot", annotation_text="break-even")
    fig.update_layout(title="Speculative ÷ plain decoding, same server and prompts", xaxis_title="concurrency",
                      yaxis_title="speed-up", xaxis_type="log", height=400)
    return fig


def run_sweep(plan, engine: str | None = None, k: int = 4, workloads: Sequence[str] = ("code-edit",),
              concurrencies: Sequence[int] = SWEEP_CONCURRENCY, max_tokens: int = 48, requests_per_stream: int = 2,
              speculative_engine=None, progress=True, timeout: float = 420,
              log: Callable[[str], None] = print, *, method: str = "ngram", model: str | None = None,
              draft: str | None = None, docker: bool = False,
              launch: Callable | None = None) -> tuple[pd.DataFrame, list[LevelRun], list[LevelRun]]:
    """Start ``engine`` with speculation (``method``: n-gram prompt lookup, or a ``draft`` model / EAGLE-3 head
    for ``model``), or use ``speculative_engine``, already running with it; sweep the levels, stop it; then the
    same without speculation. Returns the speed-up table and both sides' runs. ``engine`` defaults to the first
    engine whose server counts acceptance (vLLM); an engine without such counters gets no α column values.
    ``docker``: start the engine's container (the spark profile)."""
    from ..engines import engine_args, resolve_engine
    from ..engines import launch as launch_engine
    from .modes import UNDER_LOAD, engines_measured_by

    launch = launch or launch_engine
    levels = _check_levels(concurrencies)
    engine = engine or engines_measured_by(UNDER_LOAD)[0]
    spec = resolve_engine(engine)
    flags = engine_args(engine, plan.sizes.max_model_len, plan.profile.device)
    speculative_flags = spec.speculative_args(method, k, draft)  # refuses an engine without it before any start
    sides: dict[str, list[LevelRun]] = {}
    for side in ("speculative", "baseline"):
        handle = speculative_engine if side == "speculative" and speculative_engine is not None else launch(
            engine, model or plan.model, port="auto", lab=plan.lab, timeout=timeout, progress=progress is True,
            docker=docker, extra_args=flags + (speculative_flags if side == "speculative" else []))
        try:
            log(f"{spec.display_name} {f'with {method} speculation, k = {k}' if side == 'speculative' else 'plain'}"
                f" ready at {handle.url}")
            target = Target.from_engine(handle)
            sides[side] = [measure_level(target, w, c, max_tokens, requests_per_stream,
                                         spec if side == "speculative" else None, progress)
                           for w in workloads for c in levels]
        finally:
            handle.stop()
    return speedup_table(sides["baseline"], sides["speculative"]), sides["baseline"], sides["speculative"]
