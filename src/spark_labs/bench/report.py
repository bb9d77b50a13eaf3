"""A benchmark report: the runs, what they were measured on, and every way to look at them —
DataFrames, JSON (per-request records included), plotly figures, offline HTML and Markdown."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .analysis import diagnose_run, diagnose_sweep, find_knee, use_case_table
from .load import ClientHealth, Load, RunResult
from .lockstep import arrivals
from .metrics import DEFINITIONS
from .records import RequestRecord
from .roofline import bounds, mbu


@dataclass
class EngineInfo:
    name: str
    display_name: str
    weight_dtype: str  # what the engine streams per decode step: "bfloat16", "q4_1", …
    ready_s: float | None = None
    url: str = ""


# The client-side distributions every run has when one request succeeded (metrics.summarize).
_LATENCY_COLUMNS = [f"{metric}_{stat}" for metric in ("ttft", "tpot", "itl", "inter_chunk", "e2e", "queue",
                                                      "prefill_tok_s", "decode_tok_s", "output_tokens", "prompt_tokens")
                    for stat in ("mean", "p50", "p90", "p99", "n")]


@dataclass
class Report:
    runs: list[RunResult] = field(default_factory=list)
    engines: dict[str, EngineInfo] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # profile, model, hardware spec, created, notes
    _frame: tuple | None = field(default=None, repr=False, compare=False)  # (what it was built from, frame)

    # ---------- tables ----------
    def frame(self) -> pd.DataFrame:
        """One row per run: load, summary percentiles with sample counts, client health, roofline.
        Built once per set of runs and engines (tables, diagnosis and figures all read it)."""
        key = (tuple(map(id, self.runs)), tuple(self.engines))
        if self._frame is None or self._frame[0] != key:
            self._frame = (key, self._build_frame())
        return self._frame[1].copy()

    def _build_frame(self) -> pd.DataFrame:
        rows = []
        for run in self.runs:
            s = run.summary
            row = {"engine": run.target, "workload": run.workload, "load": run.load.label, "mode": run.load.mode,
                   "concurrency": run.load.concurrency if run.load.mode != "sequential" else 1,
                   "rate": run.load.rate, **s.row(),
                   "client_valid": run.health.valid, "client_reasons": "; ".join(run.health.reasons),
                   "loop_lag_p99_ms": run.health.loop_lag_p99_s * 1e3, "client_cpu_pct": run.health.client_cpu_pct,
                   "mean_in_flight": run.health.mean_in_flight, "littles_ratio": run.littles_law()["ratio"],
                   "warnings": " | ".join(s.warnings + run.health.notes),
                   "regime": run.regime, "ramp_up_s": run.ramp_up_s}
            if seen := arrivals(run.records):  # lockstep or not, read from the send/first-token times
                row.update(seen.row())
            row.update(self._roofline(run, row))
            for cmp in run.server_comparison():
                if "server_mean" in cmp:
                    row[f"server_{cmp['metric']}_mean"] = cmp["server_mean"]
            rows.append(row)
        frame = pd.DataFrame(rows)
        # A run where no request succeeded has no latency samples: its columns are NaN, never missing (every
        # table, figure and diagnosis reads them; a wrong --model once ended in KeyError: 'ttft_p50').
        missing = [c for c in _LATENCY_COLUMNS if c not in frame.columns]
        return frame.reindex(columns=[*frame.columns, *missing]) if missing and rows else frame

    def _roofline(self, run: RunResult, row: dict) -> dict:
        info, shape, hw = self.engines.get(run.target), self.meta.get("shape"), self.meta.get("hardware_spec")
        if info is None or shape is None or hw is None or "tpot_mean" not in row:
            return {}
        batch = max(1, round(run.health.mean_in_flight)) if run.load.mode != "sequential" else 1
        prompt = int(row.get("prompt_tokens_mean") or 1)
        b = bounds(hw, shape, info.weight_dtype, batch, prompt, int(row.get("output_tokens_mean") or 1))
        return {"tpot_floor_s": b.tpot_floor_s, "ttft_floor_s": b.ttft_floor_s, "mbu": mbu(b, row["tpot_p50"]),
                "decode_roof_tok_s": b.decode_tok_s_roof, "max_sequences": b.max_sequences}

    def requests_frame(self) -> pd.DataFrame:
        """One row per request, with the per-request metrics."""
        from .metrics import request_metrics

        rows = []
        for index, run in enumerate(self.runs):
            t0 = min(r.scheduled_ns for r in run.records)
            for r in run.records:
                m = request_metrics(r)
                rows.append({"run": index, "engine": run.target, "workload": run.workload, "load": run.load.label,
                             "request_id": r.request_id, "stream": r.stream, "ok": r.ok, "error": r.error,
                             "scheduled_s": (r.scheduled_ns - t0) / 1e9, "sent_s": (r.sent_ns - t0) / 1e9,
                             "first_token_s": (r.content_chunks[0].t_ns - t0) / 1e9 if r.content_chunks else None,
                             "end_s": (r.end_ns - t0) / 1e9, "queue_s": m.queue_s, "ttft_s": m.ttft_s,
                             "tpot_s": m.tpot_s, "e2e_s": m.e2e_s, "output_tokens": m.output_tokens,
                             "output_tokens_server": r.output_tokens.server,
                             "output_tokens_client": r.output_tokens.client,
                             "prompt_tokens": m.prompt_tokens})
        return pd.DataFrame(rows)

    def sweep_frame(self, workload: str = "chat") -> pd.DataFrame:
        f = self.frame()
        return f[(f["workload"] == workload) & (f["mode"].isin(["concurrent", "sequential"]))]

    def knees(self, workload: str = "chat") -> dict[str, str]:
        out = {}
        for engine, rows in self.sweep_frame(workload).groupby("engine"):
            knee = find_knee(list(rows["concurrency"]), list(rows["output_throughput"]))
            out[engine] = knee.reason
        return out

    def diagnosis(self) -> list[str]:
        frame = self.frame()
        lines = []
        for engine, rows in self.sweep_frame().groupby("engine"):
            lines += diagnose_sweep(engine, rows)
        for _, row in frame.iterrows():
            lines += diagnose_run(row)
        return lines

    def use_cases(self) -> pd.DataFrame:
        return use_case_table(self.frame())

    @property
    def engine_names(self) -> list[str]:
        return sorted({run.target for run in self.runs if run.summary.completed})

    # ---------- figures ----------
    def figures(self) -> dict:
        from . import figures

        return figures.all_figures(self)

    # ---------- files ----------
    def to_json(self, path: str | Path | None = None) -> str:
        data = {"meta": {k: v for k, v in self.meta.items() if k not in ("shape", "hardware_spec")},
                "hardware_spec": asdict(self.meta["hardware_spec"]) if self.meta.get("hardware_spec") else None,
                "shape": asdict(self.meta["shape"]) if self.meta.get("shape") else None,
                "engines": {k: asdict(v) for k, v in self.engines.items()},
                "runs": [{"target": r.target, "workload": r.workload, "load": asdict(r.load), "wall_s": r.wall_s,
                          "regime": r.regime, "ramp_up_s": r.ramp_up_s, "ramp_up_source": r.ramp_up_source,
                          "health": asdict(r.health), "server_comparison": r.server_comparison(),
                          "records": [rec.to_dict() for rec in r.records]} for r in self.runs]}
        text = json.dumps(data, indent=1, default=str)
        if path:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> Report:
        """Re-load a saved report: every metric is recomputed from the saved per-request records."""
        from .. import sizing
        from ..hardware.datasheets import HardwareSpec

        text = str(source) if str(source).lstrip().startswith("{") else Path(source).read_text()
        data = json.loads(text)
        meta = dict(data["meta"])
        if data.get("hardware_spec"):
            meta["hardware_spec"] = HardwareSpec(**{**data["hardware_spec"],
                                                    "derived": tuple(data["hardware_spec"]["derived"])})
        if data.get("shape"):
            meta["shape"] = sizing.ModelShape(**data["shape"])
        runs = [RunResult(r["target"], r["workload"], Load(**r["load"]),
                          [RequestRecord.from_dict(x) for x in r["records"]], ClientHealth(**r["health"]), r["wall_s"],
                          ramp_up_s=r.get("ramp_up_s"), ramp_up_source=r.get("ramp_up_source", ""))
                for r in data["runs"]]
        return cls(runs, {k: EngineInfo(**v) for k, v in data["engines"].items()}, meta)

    def summary_table(self) -> pd.DataFrame:
        """The columns people read first, in human units."""
        f = self.frame()
        if f.empty:
            return f
        table = pd.DataFrame({
            "engine": f["engine"], "workload": f["workload"], "load": f["load"],
            "ok/total": f["completed"].astype(int).astype(str) + "/" + f["requests"].astype(int).astype(str),
            "TTFT p50 ms": f["ttft_p50"] * 1e3, "TTFT p99 ms": f["ttft_p99"] * 1e3,
            "TPOT p50 ms": f.get("tpot_p50", pd.Series(math.nan, index=f.index)) * 1e3,
            "E2E p50 s": f["e2e_p50"], "out tok/s": f["output_throughput"], "req/s": f["request_throughput"],
            "MBU": f.get("mbu", pd.Series(math.nan, index=f.index)), "valid": f["client_valid"]})
        return table.round(3)

    def to_markdown(self) -> str:
        lines = [f"# Benchmark report — {self.meta.get('title', 'spark-labs')}", "",
                 _meta_line(self.meta), "", "## Results", "", _md_table(self.summary_table()), ""]
        if (uc := self.use_cases()).shape[0]:
            lines += ["## Which engine for which use case (from these measurements)", "",
                      _md_table(uc.drop(columns=["best"])), ""]
        if diag := self.diagnosis():
            lines += ["## Diagnosis", ""] + [f"- {d}" for d in diag] + [""]
        if knees := self.knees():
            lines += ["## Concurrency knees", ""] + [f"- **{e}**: {k}" for e, k in knees.items()] + [""]
        warnings = [f"- {run.target} · {run.workload} · {run.load.label}: {w}" for run in self.runs
                    for w in run.summary.warnings + run.health.notes]
        if warnings:
            lines += ["## Warnings", ""] + warnings + [""]
        return "\n".join(lines)

    def to_html(self, path: str | Path | None = None) -> str:
        """One self-contained file: plotly.js is inlined, so it opens offline."""
        from plotly.offline import get_plotlyjs

        figs = "".join(f"<h3>{html.escape(name)}</h3>" + fig.to_html(full_html=False, include_plotlyjs=False)
                       for name, fig in self.figures().items())
        definitions = pd.DataFrame([asdict(d) for d in DEFINITIONS]).to_html(index=False, border=0)
        uc = self.use_cases()
        body = (f"<h1>Benchmark report — {html.escape(self.meta.get('title', 'spark-labs'))}</h1>"
                f"<p>{html.escape(_meta_line(self.meta))}</p><h2>Results</h2>"
                + self.summary_table().to_html(index=False, border=0, float_format=lambda x: f"{x:.3g}")
                + ("<h2>Which engine for which use case</h2>" + uc.drop(columns=["best"]).to_html(index=False, border=0)
                   if len(uc) else "")
                + "<h2>Diagnosis</h2><ul>" + "".join(f"<li>{html.escape(d)}</li>" for d in self.diagnosis())
                + "</ul><h2>Figures</h2>" + figs + "<h2>Metric definitions</h2>" + definitions)
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>spark-labs benchmark report</title>"
                f"<script>{get_plotlyjs()}</script><style>body{{font-family:system-ui,sans-serif;margin:2em;"
                f"max-width:1200px}}table{{border-collapse:collapse;font-size:13px}}td,th{{padding:3px 8px;"
                f"border-bottom:1px solid #ddd;text-align:right}}</style></head><body>{body}</body></html>")
        if path:
            Path(path).write_text(page, encoding="utf-8")
        return page


def _meta_line(meta: dict) -> str:
    hw = meta.get("hardware_spec")
    parts = [f"profile {meta.get('profile', '?')}", f"model {meta.get('model', '?')}",
             f"hardware {hw.name} ({hw.bandwidth_gbs:.0f} GB/s)" if hw else "",
             f"created {meta.get('created', dt.datetime.now().isoformat(timespec='seconds'))}"]
    return " · ".join(p for p in parts if p)


def _md_table(frame: pd.DataFrame) -> str:
    def cell(v) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])
