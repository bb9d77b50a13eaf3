"""Watch a server's Prometheus ``/metrics`` while something else loads it: a time series and a chart that
updates in place in Jupyter (one display handle updated with a plain MIME bundle, so no widget extension
is needed and the notebook keeps one chart, not one per redraw).

Series are found by name suffix, so the same watcher reads the spark-labs gateway, a learner's own
gateway that follows the same names, or any server that does::

    watcher, result = watch_while(lambda: run_load(target, requests, load), gateway.metrics_url)
"""

from __future__ import annotations

import threading
import time

import httpx
import pandas as pd

from .server_metrics import Scrape

SUFFIXES = {"in_flight": "_requests_in_flight", "queued": "_queue_length", "requests": "_requests",
            "upstream_errors": "_upstream_errors", "rate_limited": "_rate_limited"}
TTFT_SUFFIX = "_time_to_first_token_seconds"


def _find(table: dict, suffix: str):
    for name, value in table.items():
        if name.endswith(suffix):
            return value
    return None


class MetricsWatcher:
    def __init__(self, metrics_url: str, interval_s: float = 0.5):
        self.url = metrics_url
        self.interval_s = interval_s
        self.rows: list[dict] = []
        self._previous: Scrape | None = None
        self._t0 = time.monotonic()

    def sample(self) -> dict | None:
        """Scrape once and append a row: gauges as read, counters as rates since the previous scrape."""
        try:
            scrape = Scrape.parse(httpx.get(self.url, timeout=2).text)
        except httpx.HTTPError:
            return None  # the server may be restarting; the chart shows a gap, not an error
        now = time.monotonic() - self._t0
        row = {"t_s": now, "in_flight": _find(scrape.gauges, SUFFIXES["in_flight"]),
               "queued": _find(scrape.gauges, SUFFIXES["queued"])}
        for key in ("requests", "upstream_errors", "rate_limited"):
            row[f"{key}_total"] = _find(scrape.counters, SUFFIXES[key]) or 0.0
        ttft = _find(scrape.histograms, TTFT_SUFFIX)
        row["ttft_mean_s"] = None
        if self._previous is not None and self.rows:
            dt = now - self.rows[-1]["t_s"]
            row["requests_per_s"] = (row["requests_total"] - self.rows[-1]["requests_total"]) / dt if dt else None
            before = _find(self._previous.histograms, TTFT_SUFFIX)
            if ttft is not None and before is not None and ttft.count > before.count:
                row["ttft_mean_s"] = (ttft.total - before.total) / (ttft.count - before.count)
        self._previous = scrape
        self.rows.append(row)
        return row

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def figure(self, title: str = "Gateway /metrics while under load"):
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        frame = self.frame()
        fig = make_subplots(rows=1, cols=3, subplot_titles=("requests in flight / queued", "requests per second",
                                                             "TTFT mean per interval (ms)"))
        if not frame.empty:
            fig.add_trace(go.Scatter(x=frame["t_s"], y=frame["in_flight"], name="in flight"), row=1, col=1)
            fig.add_trace(go.Scatter(x=frame["t_s"], y=frame["queued"], name="queued"), row=1, col=1)
            if "requests_per_s" in frame:
                fig.add_trace(go.Scatter(x=frame["t_s"], y=frame["requests_per_s"], name="req/s"), row=1, col=2)
            fig.add_trace(go.Scatter(x=frame["t_s"], y=frame["ttft_mean_s"] * 1e3, name="TTFT ms",
                                     connectgaps=False), row=1, col=3)
        fig.update_xaxes(title_text="seconds")
        fig.update_layout(height=330, title=title, showlegend=True)
        return fig


def _bundle(figure) -> dict:
    """The figure as a plain MIME bundle. Displaying the Figure object itself goes through plotly's own
    display hook, which ignores IPython's display id: every update would append a new chart."""
    import json

    spec = json.loads(figure.to_json())  # plotly's encoder turns numpy arrays into lists
    return {"application/vnd.plotly.v1+json": {"data": spec["data"], "layout": spec["layout"], "config": {}},
            "text/plain": f"<live chart: {figure.layout.title.text}>"}


def watch_while(work, metrics_url: str, interval_s: float = 0.5, live: bool = True):
    """Run ``work()`` in a thread; sample ``metrics_url`` every ``interval_s`` until it returns, redrawing
    one chart in place. Returns ``(watcher, work's result)``; re-raises what ``work`` raised."""
    watcher = MetricsWatcher(metrics_url, interval_s)
    handle = None
    if live:
        from IPython.display import display

        handle = display(_bundle(watcher.figure()), raw=True, display_id=True)

    def tick() -> None:
        watcher.sample()
        if handle is not None:
            handle.update(_bundle(watcher.figure()), raw=True)

    try:
        result = while_running(work, tick, interval_s)
    finally:
        tick()
    return watcher, result


def while_running(work, tick, every_s: float):
    """``work()`` in a thread while the caller's (the notebook's) thread calls ``tick()`` every ``every_s``
    seconds: a chart redrawn only after the work stays empty while it runs. Returns what ``work`` returned;
    re-raises what it raised."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while thread.is_alive():
        tick()
        thread.join(every_s)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")
