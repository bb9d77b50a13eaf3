"""Fill vLLM's KV cache on purpose and watch its scheduler react, from its own ``/metrics``.

One sweep level sends ``level`` requests together, each a prompt of known length that must decode a
forced number of tokens. While it runs a thread samples the engine's gauges (requests running and
waiting, KV usage) and its preemption counter, so the point where requests start to wait is read from
the engine, not inferred from latency alone. Latency is measured per level by the benchmark harness.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import pandas as pd

from ..bench.clients import BenchRequest, Target
from ..bench.live import while_running
from ..bench.load import Load, run_load
from ..bench.prompts import synthetic_prompt
from ..bench.server_metrics import Scrape
from .kv_capacity import KVCapacityError

GAUGES = {"running": "vllm:num_requests_running", "waiting": "vllm:num_requests_waiting",
          "kv_usage": "vllm:kv_cache_usage_perc"}
PREEMPTIONS = "vllm:num_preemptions"


@dataclass
class GaugeSampler:
    """Samples vLLM's scheduler gauges every ``interval_s`` in a thread until stopped."""

    metrics_url: str
    interval_s: float = 0.2
    rows: list[dict] = field(default_factory=list)
    label: object = None  # stamped on each row (the sweep level being run)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict | None:
        try:
            scrape = Scrape.parse(httpx.get(self.metrics_url, timeout=2).text)
        except httpx.HTTPError:
            return None  # a missed sample is a gap in the chart, not a failed run
        row = {"t_s": time.monotonic() - self._t0, "level": self.label,
               **{key: scrape.gauges.get(name) for key, name in GAUGES.items()},
               "preemptions_total": scrape.counters.get(PREEMPTIONS, 0.0)}
        self.rows.append(row)
        return row

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> GaugeSampler:
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def frame(self) -> pd.DataFrame:
        # a copy first: the sampling thread appends while the notebook's thread redraws the chart, and pandas
        # reading a list that grows under it fails now and then (IndexError)
        return pd.DataFrame(list(self.rows))


def pressure_requests(tokenizer, prompt_tokens: int, output_tokens: int, level: int) -> list[BenchRequest]:
    """``level`` requests of one size whose prompts share nothing, within a level or with any other level:
    prefix caching would otherwise let them share blocks, and the sweep would hold less KV than it asks."""
    return [BenchRequest(f"kv-{level}-{i}", synthetic_prompt(tokenizer, prompt_tokens, seed=1_000 * level + i),
                         output_tokens, workload=f"kv pressure x{level}", prompt_tokens=prompt_tokens)
            for i in range(level)]


MAX_WAVES = 4  # a level needing more than this many times the KV capacity only repeats the cliff, slowly


def check_levels(levels, tokens_per_request: int, max_model_len: int, max_streams: int = 64,
                 capacity_tokens: int | None = None) -> list[int]:
    """The sweep levels, refused before anything is sent when a request or a level cannot be served.

    ``capacity_tokens`` (the engine's KV capacity): a level whose requests need more than ``MAX_WAVES``
    times the cache runs in that many waves of preemption and recomputation — minutes per level on a CPU,
    a cell that looks hung — so it is refused with the limit and the fix."""
    levels = [int(level) for level in levels]
    if not levels or any(level < 1 for level in levels):
        raise KVCapacityError(f"levels={levels!r}: give concurrency levels as whole numbers ≥ 1, e.g. [1, 2, 4, 8]")
    if tokens_per_request > max_model_len:
        raise KVCapacityError(
            f"one request needs {tokens_per_request} tokens (prompt + output) but the engine serves at most "
            f"max_model_len={max_model_len}: vLLM would reject it. Lower the output tokens or the prompt")
    if max(levels) > max_streams:
        raise KVCapacityError(
            f"concurrency {max(levels)} is more than this sweep holds open ({max_streams} streams): every level "
            f"waits for its slowest request, so on this machine it would not finish in a lab's time. Keep levels "
            f"≤ {max_streams}")
    if capacity_tokens is not None and max(levels) * tokens_per_request > MAX_WAVES * capacity_tokens:
        most = MAX_WAVES * capacity_tokens // tokens_per_request
        raise KVCapacityError(
            f"concurrency {max(levels)} asks for {max(levels) * tokens_per_request:,} tokens of KV but the engine "
            f"holds {capacity_tokens:,}: it would serve them in more than {MAX_WAVES} waves of preemption, for "
            f"minutes. Keep levels ≤ {most} (the onset is far below), or start the engine with more KV")
    return sorted(set(levels))


def kv_pressure_sweep(target: Target, metrics_url: str, tokenizer, prompt_tokens: int, output_tokens: int,
                      levels, max_model_len: int, timeout_s: float = 300.0,
                      live=None, capacity_tokens: int | None = None,
                      interval_s: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run each level once; returns (one row per level, every gauge sample). ``live``: a callable given the
    samples so far, every second while a level runs and after it (the notebook redraws its chart with it).
    ``capacity_tokens``: the engine's KV capacity, to refuse levels it would take minutes to serve (see
    :func:`check_levels`); ``interval_s``: seconds between gauge samples (a level shorter than a few samples can
    miss its peak)."""
    levels = check_levels(levels, prompt_tokens + output_tokens, max_model_len, capacity_tokens=capacity_tokens)
    sampler = GaugeSampler(metrics_url, interval_s)
    rows = []
    for level in levels:
        sampler.label = level
        before = len(sampler.rows)
        with sampler:
            run = _while_redrawing(lambda level=level: run_load(
                target, pressure_requests(tokenizer, prompt_tokens, output_tokens, level),
                Load("concurrent", level, warmup=0, ramp_up=0), progress=False, timeout_s=timeout_s,
                server_metrics=False), sampler, live)
        samples = pd.DataFrame(sampler.rows[before:])
        summary = run.summary.row()
        rows.append({"concurrency": level, "kv_tokens_asked": level * (prompt_tokens + output_tokens),
                     "max_running": samples["running"].max(), "max_waiting": samples["waiting"].max(),
                     "max_kv_usage": samples["kv_usage"].max(),
                     "preemptions": samples["preemptions_total"].iloc[-1] - samples["preemptions_total"].iloc[0],
                     "failed": run.summary.failed, "e2e_p50_s": summary.get("e2e_p50"),
                     "e2e_p99_s": summary.get("e2e_p99"),
                     "output_tok_per_s": run.summary.completed * output_tokens / _wall_s(run.records)})
        if live is not None:
            live(sampler.frame())
    return pd.DataFrame(rows), sampler.frame()


def _while_redrawing(work, sampler: GaugeSampler, live, every_s: float = 1.0):
    """``work()`` while the live chart is redrawn every ``every_s`` (a chart redrawn only between levels stays
    empty for the whole first level)."""
    if live is None:
        return work()
    return while_running(work, lambda: live(sampler.frame()), every_s)


def _wall_s(records) -> float:
    """From the first request sent to the last answer."""
    return (max(r.end_ns for r in records) - min(r.sent_ns for r in records)) / 1e9


def measured_onset(levels: pd.DataFrame) -> int | None:
    """The lowest concurrency at which the engine had requests waiting, or preempted one (which sends it back
    to the queue, even between two samples of the gauge); None: none ever waited."""
    waited = levels[(levels["max_waiting"] > 0) | (levels["preemptions"] > 0)]
    return int(waited["concurrency"].min()) if not waited.empty else None
