"""``spark-labs bench gateway``: what the spark-labs gateway adds in front of an upstream.

Direct and through-the-gateway runs alternate (A B B A …) on the same upstream with the same workload, so
slow drift on a noisy machine hits both sides equally; the gateway runs as its own process, as deployed.
Printed: p50 TTFT added (median over rounds of gateway p50 − direct p50) and the throughput ratio, for
a closed loop (all streams start together: the gateway's worst case, every request queues behind the
others in its event loop) and for steady Poisson arrivals that keep the same number in flight on average.

Where the gateway runs matters as much as what it does. ``placement="shared"`` lets the OS put the client,
the upstream and the gateway on any core: on a 2-core machine every socket write then wakes a process
that takes the gateway's core away mid-request (a 10 µs write measured 200 µs), so the number includes
CPU contention the gateway would not meet in deployment. ``placement="own-core"`` pins the gateway to
one core and the client and a single-threaded upstream (the calibration server) to the others, in both
arms, as on a server where the gateway has a core of its own (a DGX Spark has 20). It is not offered for
an engine upstream on a small machine: the engine's worker threads are sized for every core.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import psutil

from ..clients import BenchRequest, Target
from ..load import Load, run_load
from .local_server import LocalServer


class GatewayProcess(LocalServer):
    """``python -m spark_labs.serve --backend proxy --upstream URL`` on a free port, as deployed, but without
    the per-address connection cap: the benchmark is one client address that opens up to 256 connections
    ahead of a run (``Pool.preconnect``), and at 128 the cap answered half of them with 503 (127 failed
    requests per run at concurrency 64 with steady arrivals)."""

    def __init__(self, upstream_url: str, extra_args: tuple[str, ...] = (), timeout: float = 60.0):
        super().__init__("gateway", "spark_labs.serve",
                         ["--backend", "proxy", "--upstream", upstream_url, "--log-level", "warning",
                          "--max-in-flight", "256", "--max-connections-per-client", "0", *extra_args], "/ready",
                         timeout)


PLACEMENTS = ("own-core", "shared")


def can_pin() -> str | None:
    """Why ``own-core`` placement is impossible here, or None."""
    if not hasattr(os, "sched_setaffinity"):
        return "this OS cannot pin processes to cores (Linux only)"
    if len(os.sched_getaffinity(0)) < 2:
        return "fewer than 2 cores are available to this process"
    return None


def _pin(pid: int, cores: set[int]) -> None:
    """Every thread of the process (Linux affinity is per thread; vLLM's worker threads included)."""
    for thread in psutil.Process(pid).threads():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(thread.id, cores)


@contextlib.contextmanager
def own_core(gateway_pid: int | tuple[int, ...], upstream_pids: tuple[int, ...] = ()):
    """Pin the gateway (or several, taking turns) to the last core and this process and the upstream (with its
    children) to the rest; put every affinity back afterwards."""
    gateways = (gateway_pid,) if isinstance(gateway_pid, int) else gateway_pid
    cores = sorted(os.sched_getaffinity(0))
    pids = [os.getpid()]
    for pid in upstream_pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            pids += [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    before: dict[int, set[int]] = {}
    try:
        for pid in [*pids, *gateways]:
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                before[pid] = os.sched_getaffinity(pid)
                _pin(pid, {cores[-1]} if pid in gateways else set(cores[:-1]))
        yield
    finally:
        for pid, cores_before in before.items():
            with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
                _pin(pid, cores_before)


@dataclass
class GatewayOverhead:
    upstream: str
    load: str
    placement: str
    concurrency: int
    rounds: int
    direct_ttft_p50_ms: float
    gateway_ttft_p50_ms: float
    added_ttft_p50_ms: float  # median over rounds of (gateway − direct)
    direct_tok_s: float
    gateway_tok_s: float
    throughput_ratio: float  # gateway / direct
    errors: int
    direct_e2e_mean_s: float


def measure_gateway(upstream: Target, concurrency: int = 16, num_requests: int = 64, max_tokens: int = 32,
                    rounds: int = 3, progress=False, load: Load | None = None, placement: str = "shared",
                    upstream_pids: tuple[int, ...] = ()) -> GatewayOverhead:
    """``load`` defaults to a closed loop at ``concurrency`` with every stream starting together; pass an
    open-loop Load for steady arrivals.
    ``upstream_pids``: the upstream's processes, pinned away from the gateway's core under ``own-core``."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, not {placement!r}")
    if placement == "own-core" and (why := can_pin()):
        raise RuntimeError(f"own-core placement is not possible: {why}; use placement='shared'")
    requests = [BenchRequest(f"g{i}", f"Request {i}: explain batching in one paragraph.", max_tokens, "gateway")
                for i in range(num_requests)]
    # All streams start together (the gateway's worst case, as docs/gateway.md reports it) — and a fixed start,
    # unlike the default ramp-up sized by each side's own warm-up, gives both sides of the A/B the same load.
    load = load or Load("concurrent", concurrency, ramp_up=0)
    ttft = {"direct": [], "gateway": []}
    e2e = []
    tokens = {"direct": 0.0, "gateway": 0.0}
    wall = {"direct": 0.0, "gateway": 0.0}
    errors = 0
    with contextlib.ExitStack() as stack:
        gateway = stack.enter_context(GatewayProcess(upstream.url))
        if placement == "own-core":
            stack.enter_context(own_core(gateway.pid, upstream_pids))
        through = Target("gateway", gateway.url, upstream.model, upstream.protocol)
        for i in range(rounds):
            order = (("direct", upstream), ("gateway", through))
            for side, target in order if i % 2 == 0 else order[::-1]:
                result = run_load(target, requests, load, progress=progress, server_metrics=False)
                s = result.summary
                errors += s.failed
                ttft[side].append(s.distributions["ttft"].p50 * 1e3)
                if side == "direct":
                    e2e.append(s.distributions["e2e"].mean)
                tokens[side] += s.output_throughput * s.duration_s
                wall[side] += s.duration_s
    direct_rate, gateway_rate = tokens["direct"] / wall["direct"], tokens["gateway"] / wall["gateway"]
    added = float(np.median(np.subtract(ttft["gateway"], ttft["direct"])))
    return GatewayOverhead(upstream.name, load.label, placement, concurrency, rounds, float(np.median(ttft["direct"])),
                           float(np.median(ttft["gateway"])), added, direct_rate, gateway_rate,
                           gateway_rate / direct_rate, errors, float(np.mean(e2e)))
