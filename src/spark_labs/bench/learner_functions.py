"""Where a learner's own function plugs into a report: lab 01's TTFT/TPOT definition computes every measured
request, and its knee finder marks the latency–throughput figure. The harness's versions sit beside the
learner's, so a disagreement shows as a number, not as a silently different chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from .metrics import request_metrics

TtftTpot = Callable[[object], tuple[float, float]]
KneeFinder = Callable[[Sequence[int], Sequence[float]], "int | None"]


def ttft_tpot_table(report, ttft_tpot: TtftTpot) -> pd.DataFrame:
    """Per run: the median TTFT and TPOT of its completed requests by ``ttft_tpot`` and by the harness (ms).

    One-token answers have no TPOT (the harness says None); they are left out of the TPOT median.
    """
    rows = []
    for run in report.runs:
        done = [r for r in run.records if r.ok and r.content_chunks]
        if not done:
            continue
        yours = [ttft_tpot(r) for r in done]
        harness = [request_metrics(r) for r in done]
        with_tpot = [i for i, m in enumerate(harness) if m.tpot_s is not None]
        rows.append({
            "engine": run.target, "workload": run.workload, "load": run.load.label, "requests": len(done),
            "your TTFT p50 ms": pd.Series([y[0] for y in yours]).median() * 1e3,
            "harness TTFT p50 ms": pd.Series([m.ttft_s for m in harness]).median() * 1e3,
            "your TPOT p50 ms": pd.Series([yours[i][1] for i in with_tpot], dtype=float).median() * 1e3,
            "harness TPOT p50 ms": pd.Series([harness[i].tpot_s for i in with_tpot], dtype=float).median() * 1e3,
        })
    return pd.DataFrame(rows)


def sweeps(report, workload: str = "chat") -> dict[str, tuple[list[int], list[float]]]:
    """Per engine: the concurrency levels of its ``workload`` sweep and the output throughput at each."""
    frame = report.sweep_frame(workload) if report.runs else pd.DataFrame()
    return {engine: (list(rows["concurrency"]), list(rows["output_throughput"]))
            for engine, rows in (frame.groupby("engine") if not frame.empty else [])}


def mark_knees(figure, report, knee: KneeFinder, workload: str = "chat"):
    """Add a star at each engine's knee, as ``knee(concurrency, throughput)`` finds it, to the
    latency–throughput figure (TTFT and TPOT panels); return the figure."""
    import plotly.graph_objects as go

    frame = report.sweep_frame(workload)
    for engine, (levels, throughput) in sweeps(report, workload).items():
        at = knee(levels, throughput)
        if at is None:
            continue
        if at not in levels:
            raise ValueError(f"the knee finder returned {at!r} for {engine}, which is not one of its sweep's "
                             f"concurrency levels {levels}: return one of them, or None when there is no knee")
        row = frame[(frame["engine"] == engine) & (frame["concurrency"] == at)].iloc[0]
        for col, metric in ((1, "ttft_p50"), (2, "tpot_p50")):
            figure.add_trace(go.Scatter(x=[row["output_throughput"]], y=[row[metric] * 1e3], mode="markers",
                                        marker={"symbol": "star", "size": 16, "color": "black"},
                                        name=f"your knee · {engine} (c={at})", showlegend=col == 1),
                             row=1, col=col)
    return figure
