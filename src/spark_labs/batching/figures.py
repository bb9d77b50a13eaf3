"""Charts of lab 02's measurements: the scheduler's gauges over a KV-pressure sweep, and latency per level."""

from __future__ import annotations

import math

import pandas as pd


def pressure_figure(samples: pd.DataFrame, title: str = "vLLM /metrics during the KV-pressure sweep"):
    """Requests running and waiting, KV-cache usage and preemptions over time, one colour band per level."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("requests running / waiting", "KV cache usage (%)",
                                                         "preemptions (cumulative)"))
    if not samples.empty:
        t = samples["t_s"]
        fig.add_trace(go.Scatter(x=t, y=samples["running"], name="running", mode="lines"), row=1, col=1)
        fig.add_trace(go.Scatter(x=t, y=samples["waiting"], name="waiting", mode="lines"), row=1, col=1)
        fig.add_trace(go.Scatter(x=t, y=samples["kv_usage"] * 100, name="KV usage %", mode="lines"), row=1, col=2)
        fig.add_trace(go.Scatter(x=t, y=samples["preemptions_total"] - samples["preemptions_total"].iloc[0],
                                 name="preemptions", mode="lines"), row=1, col=3)
        for level, part in samples.groupby("level", sort=False):  # where each level started
            fig.add_vline(x=part["t_s"].iloc[0], line_dash="dot", line_color="grey", annotation_text=f"×{level}")
    fig.update_xaxes(title_text="seconds")
    fig.update_layout(height=330, title=title)
    return fig


def cliff_figure(levels: pd.DataFrame, predicted_onset: int | None = None):
    """E2E latency per concurrency level, with the level where requests were predicted to start waiting."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=levels["concurrency"], y=levels["e2e_p50_s"], name="E2E p50", mode="lines+markers"))
    fig.add_trace(go.Scatter(x=levels["concurrency"], y=levels["e2e_p99_s"], name="E2E p99", mode="lines+markers"))
    if predicted_onset is not None:
        # shapes on a log axis take log10 of the value: x=4 would be drawn at 10⁴
        fig.add_vline(x=math.log10(predicted_onset), line_dash="dash", annotation_text="your predicted onset")
    fig.update_xaxes(title_text="requests sent together", type="log")
    fig.update_yaxes(title_text="seconds")
    fig.update_layout(height=330, title="Latency as the KV cache runs out")
    return fig


def live_pressure_chart():
    """One chart in the notebook that redraws in place: returns the callable the sweep calls with its
    samples after each level. (Displaying the Figure itself would append a new chart per redraw.)"""
    from IPython.display import display

    from ..bench.live import _bundle

    handle = display(_bundle(pressure_figure(pd.DataFrame())), raw=True, display_id=True)
    return lambda samples: handle.update(_bundle(pressure_figure(samples)), raw=True)


def timeline_figure(timelines: dict[str, pd.DataFrame]):
    """One panel per schedule: each request a bar in its slot, solid while it produces its own tokens and
    pale while it holds the slot without producing anything (static batching's staircase)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=len(timelines), cols=1, shared_xaxes=True, subplot_titles=list(timelines),
                        vertical_spacing=0.12)
    for row, timeline in enumerate(timelines.values(), start=1):
        slot = timeline["slot"].astype(str).radd("slot ")
        fig.add_trace(go.Bar(y=slot, x=timeline["useful_end_s"] - timeline["start_s"], base=timeline["start_s"],
                             orientation="h", text=timeline["request"].astype(str), textposition="inside",
                             marker_color="#1f77b4", marker_line_color="white", marker_line_width=1,
                             name="producing its tokens", showlegend=row == 1), row=row, col=1)
        fig.add_trace(go.Bar(y=slot, x=timeline["end_s"] - timeline["useful_end_s"], base=timeline["useful_end_s"],
                             orientation="h", marker_color="#ffbb78", name="done, holding its slot",
                             showlegend=row == 1), row=row, col=1)
    fig.update_layout(barmode="overlay", height=180 + 110 * len(timelines),
                      title="Who holds which slot: the same 16 requests, static vs continuous batching")
    fig.update_xaxes(title_text="seconds since the workload arrived", row=len(timelines), col=1)
    return fig


def knob_figure(levels: dict[str, pd.DataFrame], knees: dict[str, int | None]):
    """Output throughput and the deepest queue per concurrency, one line per server, each knee marked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("output tokens/s", "requests waiting (max sampled)"))
    for (name, table), color in zip(levels.items(), ("#1f77b4", "#d62728")):
        for col, y in ((1, "output_tok_per_s"), (2, "max_waiting")):
            fig.add_trace(go.Scatter(x=table["concurrency"], y=table[y], name=name, mode="lines+markers",
                                     line_color=color, showlegend=col == 1), row=1, col=col)
        if knees.get(name) is not None:
            # a shape on a log axis takes log10 of the value (x=8 alone would stretch the axis to 10⁸)
            fig.add_vline(x=math.log10(knees[name]), line_dash="dash", line_color=color,
                          annotation_text=f"knee: {name}")
    fig.update_xaxes(title_text="requests sent together", type="log")
    fig.update_layout(height=340, title="--max-num-seqs: past the knob, requests queue instead of running")
    return fig
