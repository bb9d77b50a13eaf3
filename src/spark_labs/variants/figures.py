"""Charts of lab 03's measurements: what each variant paid (size, perplexity) and what it bought (decode speed)."""

from __future__ import annotations

import pandas as pd


def variant_figure(table: pd.DataFrame, title: str = "Each variant: size, decode speed and quality"):
    """Decode tok/s and perplexity against size, one marker per variant, one colour per engine."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("decode tok/s (batch 1)", "perplexity (lower is better)"))
    engines = table["engine"] if "engine" in table.columns else pd.Series("", index=table.index)
    for engine, rows in table.groupby(engines, sort=False):
        for col, column in ((1, "decode_tok_s"), (2, "perplexity")):
            fig.add_trace(go.Scatter(x=rows["size_mb"], y=rows[column], mode="markers+text", text=list(rows.index),
                                     textposition="top center", name=engine, legendgroup=engine,
                                     showlegend=col == 1, marker={"size": 10, "color": _colour(engine)}),
                          row=1, col=col)
    fig.update_xaxes(title_text="MB (file for GGUF, weights in memory for transformers)")
    fig.update_layout(height=380, title=title)
    return fig


def compile_figure(decoders: pd.DataFrame, title: str = "Compiling the decode step: build time and speed"):
    """Build (compile) seconds beside decode tok/s for the eager and the compiled static-cache loop."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("build seconds (paid once)", "decode tok/s (every token)"))
    names = list(decoders.index)
    fig.add_trace(go.Bar(x=names, y=decoders["build_s"], showlegend=False), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=decoders["decode_tok_s"], showlegend=False), row=1, col=2)
    fig.update_layout(height=330, title=title)
    return fig


def _colour(engine: str) -> str:
    return {"llama.cpp server": "#1f77b4", "transformers in-process": "#d62728"}.get(engine, "#7f7f7f")
