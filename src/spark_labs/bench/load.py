"""Load generation: sequential, closed-loop fixed concurrency, and open-loop arrivals (Poisson or gamma).

Closed loops with fixed output lengths phase-lock: N streams started together prefill together, finish
together and restart together, so every TTFT includes a batched prefill of N. By default the streams'
first requests are therefore staggered over a ramp-up window (one request's E2E, measured by the warm-up),
which is the steady state a long-running service drifts into; ``ramp_up=0`` asks for the synchronised start.

Open loop is where most harnesses lie. A request scheduled for t=1.00 s that could only be sent at
t=1.30 s (because the concurrency cap was full, or the client was busy) has a user-visible latency
that starts at 1.00 s. We record the scheduled time, measure every latency from it (no coordinated
omission), and report the client-side queue time separately so it is visible rather than hidden.

Every run also watches the client itself: event-loop lag, CPU, and how late the dispatcher sent
requests. If the client fell behind, the run is marked invalid — its numbers describe the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psutil

from ..event_loop import run_sync
from .clients import BenchRequest, Target, make_pool, send
from .metrics import Summary, summarize
from .records import RequestRecord
from .server_metrics import ServerMetricsProbe

MODES = ("sequential", "concurrent", "poisson", "gamma")

# Thresholds past which the client, not the server, shaped the numbers.
# Sustained lag (p90) means the loop itself is saturated; occasional spikes (p99 only) mean the OS
# gave the engine our core for a moment — worth a note, not a verdict.
MAX_LOOP_LAG_P90_S = 0.010
NOTE_LOOP_LAG_P99_S = 0.010
MAX_CLIENT_CPU_PCT = 90.0
MAX_DISPATCH_LATE_P99_S = 0.010


@dataclass(frozen=True)
class Load:
    mode: str = "concurrent"
    concurrency: int = 1  # closed loop: requests kept in flight; open loop: optional cap (0 = none)
    rate: float | None = None  # open loop: mean requests per second
    gamma_shape: float = 1.0  # open loop "gamma": <1 burstier than Poisson, >1 smoother
    warmup: int = 1  # requests sent and thrown away before measuring
    seed: int = 0
    # Closed loop: seconds over which the streams' first requests are spread evenly. None = one request's
    # E2E as the warm-up measured it (0 when there is no warm-up to size it); 0 = all start together.
    ramp_up: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown load mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.mode in ("poisson", "gamma") and not (self.rate and self.rate > 0):
            raise ValueError(f"{self.mode} arrivals need rate > 0 requests per second")
        if self.ramp_up is not None and not self.ramp_up >= 0:
            raise ValueError(f"ramp_up={self.ramp_up!r}: give seconds >= 0 (0 starts every stream together), "
                             "or None for the default")
        if self.ramp_up and self.mode != "concurrent":
            raise ValueError(f"ramp_up staggers the streams of a closed loop (mode 'concurrent'); {self.mode} "
                             "load has " + ("one stream" if self.mode == "sequential" else
                                            "arrivals spread by its rate already") + ": leave ramp_up unset")

    @property
    def open_loop(self) -> bool:
        return self.mode in ("poisson", "gamma")

    @property
    def label(self) -> str:
        if self.mode == "sequential":
            return "sequential"
        if self.mode == "concurrent":
            # The default (auto ramp-up) keeps the plain label; an explicit start regime is named.
            if self.ramp_up == 0 and self.concurrency > 1:
                return f"concurrency {self.concurrency}, lockstep"
            if self.ramp_up:
                return f"concurrency {self.concurrency}, ramp-up {self.ramp_up:g} s"
            return f"concurrency {self.concurrency}"
        cap = f", cap {self.concurrency}" if self.concurrency else ""
        return f"{self.mode} {self.rate:g} req/s{cap}"

    def stream_offsets(self, window_s: float) -> list[float]:
        """Closed loop: seconds after the start at which each stream sends its first request, spread evenly
        over ``window_s`` (stream k at k/N of it), so the streams sit at different points of one cycle."""
        width = max(self.concurrency, 1)
        return [k * window_s / width for k in range(width)]

    def arrival_offsets(self, n: int) -> np.ndarray:
        """Seconds from the start at which each request is scheduled (open loop only)."""
        rng = np.random.default_rng(self.seed)
        shape = 1.0 if self.mode == "poisson" else self.gamma_shape
        # Gamma inter-arrivals with mean 1/rate; shape 1 is the exponential (Poisson process).
        gaps = rng.gamma(shape, 1.0 / (shape * self.rate), size=n)
        return np.cumsum(gaps) - gaps[0]


@dataclass
class ClientHealth:
    loop_lag_p50_s: float
    loop_lag_p90_s: float
    loop_lag_p99_s: float
    loop_lag_max_s: float
    client_cpu_pct: float  # of one core: the event loop is single-threaded
    dispatch_late_p99_s: float | None  # open loop without a cap: sent − scheduled
    mean_in_flight: float  # sampled while the run was going
    reasons: list[str] = field(default_factory=list)  # why the run is invalid
    notes: list[str] = field(default_factory=list)  # worth knowing, not invalidating

    @property
    def valid(self) -> bool:
        return not self.reasons


@dataclass
class RunResult:
    target: str
    workload: str
    load: Load
    records: list[RequestRecord]
    health: ClientHealth
    wall_s: float
    server: ServerMetricsProbe | None = None
    # How the closed loop's streams started: the window actually used (None: not a closed loop) and why.
    ramp_up_s: float | None = None
    ramp_up_source: str = ""
    _summary: Summary | None = field(default=None, repr=False)

    @property
    def regime(self) -> str:
        """Which regime the run measured, in words (kept in the report and its JSON)."""
        if self.load.open_loop:
            return "open loop"
        if self.load.mode == "sequential" or self.load.concurrency <= 1:
            return "one stream"
        if not self.ramp_up_s:
            return f"lockstep start ({self.ramp_up_source})" if self.ramp_up_source else "lockstep start"
        return f"ramp-up {self.ramp_up_s:.3g} s ({self.ramp_up_source})"

    @property
    def summary(self) -> Summary:
        if self._summary is None:
            self._summary = summarize(self.records)
        return self._summary

    def server_comparison(self) -> list[dict]:
        """Our numbers beside the server's own histograms for the same requests (empty if none)."""
        return self.server.compare(self.summary) if self.server else []

    def littles_law(self) -> dict[str, float]:
        """Mean in-flight sampled during the run vs throughput × mean latency (L = λW).

        They agree when the client kept the load it promised; a sampled L well below λW means the
        sampler missed work, well above means requests sat in the client. Printed with every sweep.
        """
        s = self.summary
        if "e2e" not in s.distributions:
            return {"sampled_in_flight": self.health.mean_in_flight, "throughput_x_latency": float("nan"),
                    "ratio": float("nan")}
        # Time in flight = latency minus the time the request waited in the client before being sent.
        in_flight_s = s.distributions["e2e"].mean - s.distributions["queue"].mean
        lam_w = s.request_throughput * in_flight_s
        return {"sampled_in_flight": self.health.mean_in_flight, "throughput_x_latency": lam_w,
                "ratio": self.health.mean_in_flight / lam_w if lam_w else float("nan")}


class _Watch:
    """Samples event-loop lag and in-flight requests every ``interval`` seconds while a run goes."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.lags: list[float] = []
        self.in_flight_samples: list[int] = []
        self.in_flight = 0

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, time.perf_counter() - before - self.interval))
            self.in_flight_samples.append(self.in_flight)


async def run_load_async(target: Target, requests: Sequence[BenchRequest], load: Load,
                         on_done: Callable[[RequestRecord], None] | None = None,
                         timeout_s: float = 600.0, server_metrics: bool = True) -> RunResult:
    """Warm up, then send ``requests`` under ``load``. With ``server_metrics`` and a target that has a
    Prometheus endpoint, the server's histograms are scraped around the measured part (not the warm-up)."""
    if not requests:
        raise ValueError("no requests to send")
    width = max(load.concurrency, 1) if load.mode != "sequential" else 1
    client = make_pool(target, width if not load.open_loop or load.concurrency else len(requests))
    try:
        await client.preconnect(min(width if not load.open_loop else len(requests), 256))
        warm_e2e_s = None
        for i in range(load.warmup):  # warm connections, caches, lazy engine initialisation
            warm = requests[i % len(requests)]
            record = await send(client, target, BenchRequest(f"warmup-{i}", "warm-up " + warm.prompt,
                                                             warm.max_tokens, "warmup", warm.force_length),
                                timeout_s=timeout_s)
            if record.ok:
                warm_e2e_s = (record.end_ns - record.sent_ns) / 1e9
        ramp_s, ramp_source = _ramp_up(load, warm_e2e_s)
        probe = ServerMetricsProbe(target.metrics_url) if server_metrics and target.metrics_url else None
        if probe:
            await probe.start()
        watch = _Watch()
        watcher = asyncio.create_task(watch.run())
        process = psutil.Process()
        cpu_before = sum(process.cpu_times()[:2])
        start_wall = time.perf_counter()
        try:
            if load.open_loop:
                records = await _open_loop(client, target, requests, load, watch, on_done, timeout_s)
            else:
                records = await _closed_loop(client, target, requests, _offsets(load, ramp_s, len(requests)), watch,
                                             on_done, timeout_s)
        finally:
            watcher.cancel()
        wall = time.perf_counter() - start_wall
        cpu_pct = 100 * (sum(process.cpu_times()[:2]) - cpu_before) / max(wall, 1e-9)
        if probe:
            await probe.stop()
    finally:
        await client.close()
    health = _health(watch, cpu_pct, records, load)
    closed = load.mode == "concurrent"
    return RunResult(target.name, requests[0].workload, load, records, health, wall, server=probe,
                     ramp_up_s=ramp_s if closed else None, ramp_up_source=ramp_source if closed else "")


def _ramp_up(load: Load, warm_e2e_s: float | None) -> tuple[float, str]:
    """The ramp-up window to use, and where it came from (recorded with the run)."""
    if load.mode != "concurrent" or load.concurrency <= 1:
        return 0.0, ""
    if load.ramp_up is not None:
        return load.ramp_up, "asked"
    if warm_e2e_s is None:
        return 0.0, "no warm-up request to size the ramp-up"
    # One request's E2E is one cycle of a stream: N starts spread over it sit at N different points of the cycle.
    return warm_e2e_s, "one warm-up request's E2E"


def _offsets(load: Load, ramp_s: float, n_requests: int) -> list[float]:
    """One start offset per stream; never more streams than requests (an idle stream would only sleep)."""
    return load.stream_offsets(ramp_s)[:n_requests] if load.mode == "concurrent" else [0.0]


async def _closed_loop(client, target, requests, offsets_s, watch, on_done, timeout_s) -> list[RequestRecord]:
    queue = list(enumerate(requests))
    results: list[RequestRecord | None] = [None] * len(requests)
    t0 = time.perf_counter_ns()

    async def stream(index: int, offset_s: float) -> None:
        # Absolute start deadline (no drift from sleeping in a loop); no sleep at all for a lockstep start.
        if offset_s > 0:
            await asyncio.sleep(max(0.0, (t0 + offset_s * 1e9 - time.perf_counter_ns()) / 1e9))
        while queue:
            i, request = queue.pop(0)
            watch.in_flight += 1
            record = await send(client, target, request, timeout_s=timeout_s)
            watch.in_flight -= 1
            record.stream = index
            results[i] = record
            if on_done:
                on_done(record)

    await asyncio.gather(*(stream(k, offset) for k, offset in enumerate(offsets_s)))
    return [r for r in results if r is not None]


async def _open_loop(client, target, requests, load, watch, on_done, timeout_s) -> list[RequestRecord]:
    cap = asyncio.Semaphore(load.concurrency) if load.concurrency else None
    offsets = load.arrival_offsets(len(requests))
    t0 = time.perf_counter_ns() + 5_000_000  # 5 ms to get every task scheduled

    async def one(request: BenchRequest, offset_s: float) -> RequestRecord:
        scheduled = t0 + int(offset_s * 1e9)
        await asyncio.sleep(max(0.0, (scheduled - time.perf_counter_ns()) / 1e9))
        if cap:
            await cap.acquire()
        try:
            watch.in_flight += 1
            record = await send(client, target, request, scheduled_ns=scheduled, timeout_s=timeout_s)
        finally:
            watch.in_flight -= 1
            if cap:
                cap.release()
        if on_done:
            on_done(record)
        return record

    return list(await asyncio.gather(*(one(r, o) for r, o in zip(requests, offsets))))


def _health(watch: _Watch, cpu_pct: float, records: list[RequestRecord], load: Load) -> ClientHealth:
    lags = np.asarray(watch.lags or [0.0])
    late = None
    if load.open_loop and not load.concurrency:
        late = float(np.percentile([(r.sent_ns - r.scheduled_ns) / 1e9 for r in records], 99))
    health = ClientHealth(loop_lag_p50_s=float(np.percentile(lags, 50)), loop_lag_p90_s=float(np.percentile(lags, 90)),
                          loop_lag_p99_s=float(np.percentile(lags, 99)),
                          loop_lag_max_s=float(lags.max()), client_cpu_pct=cpu_pct, dispatch_late_p99_s=late,
                          mean_in_flight=float(np.mean(watch.in_flight_samples)) if watch.in_flight_samples else 0.0)
    if health.loop_lag_p90_s > MAX_LOOP_LAG_P90_S:
        health.reasons.append(f"event-loop lag p90 {health.loop_lag_p90_s * 1e3:.1f} ms > "
                              f"{MAX_LOOP_LAG_P90_S * 1e3:.0f} ms: the client's loop was saturated, "
                              "timestamps are late")
    elif health.loop_lag_p99_s > NOTE_LOOP_LAG_P99_S:
        health.notes.append(f"event-loop lag spiked to {health.loop_lag_p99_s * 1e3:.0f} ms (p99): the engine and "
                            "the client share CPU cores here, so a few timestamps may be late by that much")
    if cpu_pct > MAX_CLIENT_CPU_PCT:
        health.reasons.append(f"client used {cpu_pct:.0f}% of a core: it cannot keep up with the stream")
    if late is not None and late > MAX_DISPATCH_LATE_P99_S:
        health.reasons.append(f"requests left {late * 1e3:.1f} ms (p99) after their scheduled time: "
                              "the arrival process was not the one asked for")
    return health


def run_load(target: Target, requests: Sequence[BenchRequest], load: Load = Load(),
             progress=True, timeout_s: float = 600.0, server_metrics: bool = True) -> RunResult:
    """Blocking front door: run one load against one target.

    ``progress``: True for a tqdm bar (notebooks), False for none, a ``rich.progress.Progress`` to add a
    task to (the CLI), or a callable called with each finished record.
    """
    description = f"{target.name} · {requests[0].workload if requests else ''} · {load.label}"
    bar = None
    if progress is True:
        from ..progress import progress_bar

        bar = progress_bar(total=len(requests), desc=description, unit="req", leave=False)
        on_done = lambda record: bar.update(1)
    elif hasattr(progress, "add_task"):
        task = progress.add_task(description, total=len(requests))
        on_done = lambda record: progress.advance(task)
    else:
        on_done = progress or None
    try:
        return run_sync(lambda: run_load_async(target, requests, load, on_done, timeout_s, server_metrics))
    finally:
        if bar is not None:
            bar.close()
