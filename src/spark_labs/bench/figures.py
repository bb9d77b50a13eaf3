"""Plotly figures for a :class:`~spark_labs.bench.report.Report` — what people would rather see than read."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .lockstep import arrivals

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
    """Gantt of one run, one lane per stream: client queue (grey), waiting for the first token, decoding;
    a tick where each request was sent, a diamond where each stream started, and a dotted line wherever
    several requests were sent together — lockstep shows as ticks stacked on one vertical line."""
    return timelines(report, [run_index])


def timelines(report, run_indices, titles=None) -> go.Figure:
    """:func:`timeline` for several runs, stacked (e.g. the same load with a lockstep start and a ramp-up)."""
    runs = [report.runs[i] for i in run_indices]
    titles = titles or [_timeline_title(run) for run in runs]
    frame = report.requests_frame()
    fig = make_subplots(rows=len(runs), cols=1, subplot_titles=titles if len(runs) > 1 else None,
                        vertical_spacing=0.25 / len(runs))
    for row, (index, run) in enumerate(zip(run_indices, runs), start=1):
        rows = frame[frame["run"] == index % len(report.runs)].reset_index(drop=True)
        for trace in _timeline_traces(rows, showlegend=row == 1):
            fig.add_trace(trace, row=row, col=1)
        seen = arrivals(run.records)
        t0 = min(r.scheduled_ns for r in run.records)
        for group in seen.groups if seen else []:
            if len(group) > 1:
                fig.add_vline(x=(group[0].sent_ns - t0) / 1e9, line_dash="dot", line_color="#555555", row=row, col=1)
        fig.update_yaxes(title_text="stream" if rows["stream"].notna().all() else "request", autorange="reversed",
                         dtick=1, row=row, col=1)
        fig.update_xaxes(title_text="seconds since the run started", row=row, col=1)
    lanes = max(_lanes(run) for run in runs)
    fig.update_layout(barmode="overlay", height=len(runs) * max(250, 18 * lanes + 120),
                      title=titles[0] if len(runs) == 1 else "Request timelines",
                      legend={"orientation": "h", "y": -0.15 / len(runs)})
    return fig


def _lanes(run) -> int:
    """Lanes a run's timeline needs: its streams (closed loop) or its requests."""
    streams = {r.stream for r in run.records}
    return len(streams) if None not in streams else len(run.records)


def _timeline_title(run) -> str:
    seen = arrivals(run.records)
    verdict = ""
    if seen is not None:
        verdict = (f" · lockstep: {seen.group_size} sent at a time" if seen.lockstep else
                   " · arrivals staggered")
    return f"{run.target} · {run.workload} · {run.load.label} · {run.regime}{verdict}"


def _timeline_traces(rows, showlegend: bool) -> list:
    lane = rows["stream"] if rows["stream"].notna().all() else rows.index.to_series()
    traces = []
    segments = (("client queue", "scheduled_s", "sent_s", "#cccccc"),
                ("to first token", "sent_s", "first_token_s", "#EF553B"),
                ("decoding", "first_token_s", "end_s", "#636EFA"))
    for name, start, end, colour in segments:
        ok = rows[end].notna() & rows[start].notna()
        traces.append(go.Bar(y=lane[ok], x=(rows[end] - rows[start])[ok], base=rows[start][ok], orientation="h",
                             name=name, marker_color=colour, legendgroup=name, showlegend=showlegend))
    traces.append(go.Scatter(x=rows["sent_s"], y=lane, mode="markers", name="request sent", legendgroup="sent",
                             marker={"symbol": "line-ns-open", "size": 14, "color": "#222222"}, showlegend=showlegend))
    if not rows["stream"].notna().all():  # open loop: every request is its own lane, no streams to start
        return traces
    firsts = rows.assign(lane=lane).sort_values("sent_s").groupby("lane", as_index=False).first()
    traces.append(go.Scatter(x=firsts["sent_s"], y=firsts["lane"], mode="markers", name="stream start",
                             legendgroup="start", marker={"symbol": "diamond", "size": 10, "color": "#00CC96"},
                             showlegend=showlegend))
    return traces


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
