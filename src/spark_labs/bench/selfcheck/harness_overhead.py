"""``spark-labs bench overhead``: what the harness itself adds, measured against the calibration server.

Two numbers per run:
- *added TTFT*: measured TTFT − the server's configured TTFT (everything between "the harness decided
  to send" and "the harness stamped the first token": client send path, loopback, server parse,
  server timer slack, client read path);
- *delivery lag*: client stamp − the server's own write stamp carried in each chunk (the client's
  read path alone, plus the kernel's loopback).
A stream-count sweep then finds the chunk rate at which the client falls behind. ``client`` picks the
HTTP library the harness sends with (``http11``, the one it always uses, or ``httpx`` / ``aiohttp`` for
comparison), so the reason for ``spark_labs.http_client`` is a measurement anyone can repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..clients import BenchRequest, Target
from ..load import Load, RunResult, run_load
from .local_server import LocalServer


@dataclass
class OverheadResult:
    streams: int
    arrivals: str
    chunks_per_s: float
    harness_ttft_p50_ms: float  # client send path + client read path of the first token
    harness_ttft_p99_ms: float
    send_path_p50_ms: float  # client "send" → server has the whole request
    delivery_lag_p50_ms: float  # server wrote a chunk → client stamped it (every chunk)
    delivery_lag_p99_ms: float
    server_slack_p50_ms: float  # the calibration server's own lateness vs its deadline (not the harness)
    measured_minus_configured_ttft_p50_ms: float  # all of the above together
    loop_lag_p99_ms: float
    client_cpu_pct: float
    valid: bool
    reasons: list[str]
    client: str = "http11"  # the HTTP library the harness sent with


class CalibrationServer(LocalServer):
    """The calibration server in its own process (so its CPU is not the client's event loop)."""

    def __init__(self, ttft_ms: float = 50.0, tpot_ms: float = 20.0):
        self.ttft_ms, self.tpot_ms = ttft_ms, tpot_ms
        super().__init__("calibration server", "spark_labs.bench.selfcheck.calibration",
                         ["--ttft-ms", str(ttft_ms), "--tpot-ms", str(tpot_ms)], "/health", timeout=15)

    def target(self, client: str = "http11") -> Target:
        return Target("calibration", self.url, "calibration", client=client)


def _stamps(chunk) -> tuple[int, int, int]:
    received, deadline, written = chunk.text.split(":")
    return int(received), int(deadline), int(written)


def analyse(result: RunResult, ttft_ms: float, streams: int, arrivals: str) -> OverheadResult:
    ok = [r for r in result.records if r.ok]
    firsts = [(r, r.content_chunks[0], _stamps(r.content_chunks[0])) for r in ok]
    send_path = np.asarray([(st[0] - r.sent_ns) / 1e6 for r, c, st in firsts])
    first_delivery = np.asarray([(c.t_ns - st[2]) / 1e6 for r, c, st in firsts])
    slack = np.asarray([(st[2] - st[1]) / 1e6 for r, c, st in firsts])
    measured = np.asarray([(c.t_ns - r.sent_ns) / 1e6 - ttft_ms for r, c, st in firsts])
    lags = np.asarray([(c.t_ns - _stamps(c)[2]) / 1e6 for r in ok for c in r.content_chunks])
    harness = send_path + first_delivery
    chunks = sum(len(r.content_chunks) for r in result.records)
    h, failed = result.health, len(result.records) - len(ok)
    p = np.percentile
    return OverheadResult(
        streams=streams, arrivals=arrivals, chunks_per_s=chunks / result.wall_s,
        harness_ttft_p50_ms=float(p(harness, 50)), harness_ttft_p99_ms=float(p(harness, 99)),
        send_path_p50_ms=float(p(send_path, 50)),
        delivery_lag_p50_ms=float(p(lags, 50)), delivery_lag_p99_ms=float(p(lags, 99)),
        server_slack_p50_ms=float(p(slack, 50)), measured_minus_configured_ttft_p50_ms=float(p(measured, 50)),
        loop_lag_p99_ms=h.loop_lag_p99_s * 1e3, client_cpu_pct=h.client_cpu_pct,
        valid=h.valid and failed == 0, reasons=h.reasons + ([f"{failed} requests failed"] if failed else []))


def measure(server: CalibrationServer, streams: int, tokens: int = 64, rounds: int = 3,
            arrivals: str = "steady", client: str = "http11") -> OverheadResult:
    """About ``streams`` concurrent streams of ``tokens`` chunks each, ``streams × rounds`` requests.

    ``steady``: Poisson arrivals at the rate that keeps ``streams`` requests in flight on average
    (Little's law), like a real service. ``burst``: a closed loop in which all streams start at the
    same instant and stay in lock-step — the harness's worst case, since every send queues behind
    the others in one event loop.
    """
    requests = [BenchRequest(f"cal-{i}", "x", tokens, "calibration", force_length=False)
                for i in range(streams * rounds)]
    if arrivals == "burst":
        load = Load("concurrent", streams, warmup=0, ramp_up=0)  # lockstep on purpose: the worst case
    else:
        service_s = (server.ttft_ms + (tokens - 1) * server.tpot_ms) / 1e3
        load = Load("poisson", 0, rate=streams / service_s, warmup=0)
    result = run_load(server.target(client), requests, load, progress=False, server_metrics=False)
    return replace(analyse(result, server.ttft_ms, streams, arrivals), client=client)


def sweep(streams: tuple[int, ...] = (1, 16, 64, 128, 256, 512), ttft_ms: float = 50.0, tpot_ms: float = 20.0,
          tokens: int = 64, arrivals: str = "steady", on_result=None, client: str = "http11") -> list[OverheadResult]:
    """Raise the stream count until the client falls behind (or the list ends)."""
    results = []
    with CalibrationServer(ttft_ms, tpot_ms) as server:
        measure(server, 4, tokens=4, rounds=1, client=client)  # warm imports and the server
        for n in streams:
            result = measure(server, n, tokens, arrivals=arrivals, client=client)
            results.append(result)
            if on_result:
                on_result(result)
            if not result.valid or result.delivery_lag_p50_ms > 1.0:
                break
    return results


def sustained_chunks_per_s(results: list[OverheadResult]) -> float | None:
    """The highest chunk rate at which the client kept up (valid run, delivery lag p50 ≤ 1 ms)."""
    kept_up = [r.chunks_per_s for r in results if r.valid and r.delivery_lag_p50_ms <= 1.0]
    return max(kept_up) if kept_up else None
