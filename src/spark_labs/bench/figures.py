"""Plotly figures for a :class:`~spark_labs.bench.report.Report` — what people would rather see than read."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3")


def _colour(report, engine: str) -> str:
    names = sorted(report.engines) or report.engine_names
    return PALETTE[names.index(engine) % len(PALETTE)] if engine in names else PALETTE[0]


def latency_throughput(report, workload: str = "chat") -> go.Figure:
    """Overlaid latency–throughput curves, one per engine, each point a concurrency level."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT p50 vs throughput", "TPOT p50 vs throughput"))
    for engine, rows in report.sweep_frame(workload).groupby("engine"):
        rows = rows.sort_values("concurrency")
        for col, metric in ((1, "ttft_p50"), (2, "tpot_p50")):
            if metric not in rows:
                continue
            fig.add_trace(go.Scatter(x=rows["output_throughput"], y=rows[metric] * 1e3, mode="lines+markers+text",
                                     text=[f"c={c}" for c in rows["concurrency"]], textposition="top center",
                                     name=engine, legendgroup=engine, showlegend=col == 1,
                                     line={"color": _colour(report, engine)}), row=1, col=col)
    fig.update_xaxes(title_text="output tokens/s")
    fig.update_yaxes(title_text="ms")
    fig.update_layout(height=420, title=f"Latency vs throughput ({workload}), one point per concurrency level")
    return fig


def cdfs(report, workload: str | None = None) -> go.Figure:
    """TTFT and TPOT empirical CDFs per engine (all runs of ``workload`` pooled)."""
    frame = report.requests_frame()
    frame = frame[frame["ok"]]
    if workload:
        frame = frame[frame["workload"] == workload]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("TTFT CDF", "TPOT CDF"))
    for engine, rows in frame.groupby("engine"):
        for col, metric in ((1, "ttft_s"), (2, "tpot_s")):
            values = np.sort(rows[metric].dropna().to_numpy() * 1e3)
            if len(values):
                fig.add_trace(go.Scatter(x=values, y=np.arange(1, len(values) + 1) / len(values), mode="lines",
                                         line={"shape": "hv", "color": _colour(report, engine)}, name=engine,
                                         legendgroup=engine, showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="ms", type="log")
    fig.update_yaxes(title_text="fraction of requests", range=[0, 1.02])
    fig.update_layout(height=380, title=f"Latency distributions{' — ' + workload if workload else ''}")
    return fig


def timeline(report, run_index: int = -1) -> go.Figure:
    """Gantt of one run: per request, client queue (grey), waiting for the first token, then decoding."""
    run = report.runs[run_index]
    frame = report.requests_frame()
    frame = frame[(frame["engine"] == run.target) & (frame["workload"] == run.workload) &
                  (frame["load"] == run.load.label)].reset_index(drop=True)
    fig = go.Figure()
    segments = (("client queue", "scheduled_s", "sent_s", "#cccccc"), ("to first token", "sent_s", "first_token_s", "#EF553B"),
                ("decoding", "first_token_s", "end_s", "#636EFA"))
    for name, start, end, colour in segments:
        ok = frame[end].notna() & frame[start].notna()
        fig.add_trace(go.Bar(y=frame.index[ok], x=(frame[end] - frame[start])[ok], base=frame[start][ok],
                             orientation="h", name=name, marker_color=colour))
    fig.update_layout(barmode="overlay", height=max(250, 18 * len(frame) + 120),
                      title=f"Request timeline — {run.target} · {run.workload} · {run.load.label}",
                      xaxis_title="seconds since the first scheduled request", yaxis_title="request")
    return fig


def roofline_bars(report) -> go.Figure:
    """Per run: measured per-sequence decode tok/s beside the memory-bandwidth roof at the same batch."""
    frame = report.frame()
    if "mbu" not in frame or frame["mbu"].isna().all():
        return go.Figure().update_layout(title="Roofline: no hardware spec or model shape in this report")
    frame = frame[frame["mbu"].notna()]
    label = frame["engine"] + " · " + frame["workload"] + " · " + frame["load"]
    fig = go.Figure([
        go.Bar(x=label, y=1 / frame["tpot_floor_s"], name="roof (bandwidth bound)", marker_color="#dddddd"),
        go.Bar(x=label, y=1 / frame["tpot_p50"], name="measured (1 / TPOT p50)", marker_color="#00CC96",
               text=[f"{m:.0%}" for m in frame["mbu"]], textposition="outside"),
    ])
    fig.update_layout(barmode="overlay", height=420, yaxis_title="decode tok/s per sequence",
                      title="Decode speed vs the memory-bandwidth roof (label: MBU)")
    return fig


def all_figures(report) -> dict[str, go.Figure]:
    figs = {"Latency vs throughput": latency_throughput(report), "Latency CDFs": cdfs(report),
            "Roofline": roofline_bars(report)}
    if report.runs:
        figs["Timeline of the last run"] = timeline(report)
    return figs
