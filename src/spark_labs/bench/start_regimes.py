"""The same closed loop measured twice on one engine: every stream started together (lockstep) and
streams staggered by a ramp-up (the default), side by side — so a lab shows in two lines that "TTFT at
concurrency N" depends on which regime was measured."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from .clients import Target
from .experiments import measure
from .figures import timelines
from .load import Load
from .prompts import Workload
from .report import Report

# (name in the table, Load.ramp_up): 0 starts every stream together, None is the default ramp-up.
REGIMES = (("lockstep start", 0.0), ("ramp-up", None))


def compare_start_regimes(engine, concurrency: int = 4, requests_per_stream: int = 4, max_tokens: int = 32,
                          tokenizer=None, report: Report | None = None,
                          progress=True) -> tuple[pd.DataFrame, go.Figure]:
    """Run one fixed-length closed loop twice on ``engine`` — lockstep start, then the default ramp-up —
    and return a tidy table (one row per regime) and the two request timelines stacked.

    ``engine`` is a running :class:`~spark_labs.engines.EngineHandle` (or a :class:`Target`). Both runs are
    appended to ``report`` when one is given, so its diagnosis lines name the regime too. Usage::

        from spark_labs.bench import compare_start_regimes
        table, fig = compare_start_regimes(engine, concurrency=4)
        table
        fig

    On the command line: ``spark-labs bench regimes --engine llamacpp --concurrency 4``.
    """
    if concurrency < 2:
        raise ValueError(f"concurrency={concurrency}: lockstep needs at least 2 streams to start together; "
                         "use concurrency=4, for example")
    if requests_per_stream < 1 or max_tokens < 2:
        raise ValueError("each stream needs at least one request of at least 2 tokens (requests_per_stream >= 1, "
                         "max_tokens >= 2), or there is no decode step to compare")
    target = engine if isinstance(engine, Target) else Target.from_engine(engine)
    report = report if report is not None else Report(meta={"title": "lockstep start vs ramp-up"})
    # Fixed output lengths (forced) are what makes a closed loop phase-lock: every request takes as long.
    workload = Workload("start-regimes", "short_chat", concurrency * requests_per_stream, max_tokens)
    first = len(report.runs)
    for _, ramp_up in REGIMES:
        measure(report, target, workload, Load("concurrent", concurrency, ramp_up=ramp_up), tokenizer, progress)
    rows = report.frame().iloc[first:first + len(REGIMES)]
    table = pd.DataFrame({
        "start": [name for name, _ in REGIMES],
        "regime": rows["regime"].to_list(),
        "concurrency": concurrency,
        "requests": rows["completed"].astype(int).to_list(),
        "TTFT p50 ms": (rows["ttft_p50"] * 1e3).to_list(),
        "TTFT p90 ms": (rows["ttft_p90"] * 1e3).to_list(),
        "TPOT p50 ms": (rows["tpot_p50"] * 1e3).to_list(),
        "out tok/s": rows["output_throughput"].to_list(),
        # Read from the records' send/first-token times, not from the setting above.
        "sent together": rows.get("arrival_group", pd.Series(1, index=rows.index)).to_list(),
        "lockstep detected": rows.get("lockstep", pd.Series(False, index=rows.index)).fillna(False).to_list(),
    })
    titles = [f"{name}: TTFT p50 {ttft:.0f} ms · {regime}" for name, ttft, regime
              in zip(table["start"], table["TTFT p50 ms"], table["regime"])]
    return table, timelines(report, list(range(first, first + len(REGIMES))), titles)
