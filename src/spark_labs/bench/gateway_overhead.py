"""``spark-labs bench gateway``: what the spark-labs gateway adds in front of an upstream.

Direct and through-the-gateway runs alternate (A B B A …) on the same upstream with the same workload, so
slow drift on a noisy machine hits both sides equally; the gateway runs as its own process, as deployed.
Printed: p50 TTFT added (median over rounds of gateway p50 − direct p50) and the throughput ratio, for
a closed loop (all streams start together: the gateway's worst case, every request queues behind the
others in its event loop) and for steady Poisson arrivals that keep the same number in flight on average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clients import BenchRequest, Target
from .load import Load, run_load
from .local_server import LocalServer


class GatewayProcess(LocalServer):
    """``python -m spark_labs.serve --backend proxy --upstream URL`` on a free port, as deployed."""

    def __init__(self, upstream_url: str, extra_args: tuple[str, ...] = (), timeout: float = 60.0):
        super().__init__("gateway", "spark_labs.serve",
                         ["--backend", "proxy", "--upstream", upstream_url, "--log-level", "warning",
                          "--max-in-flight", "256", *extra_args], "/ready", timeout)


@dataclass
class GatewayOverhead:
    upstream: str
    load: str
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
                    rounds: int = 3, progress=False, load: Load | None = None) -> GatewayOverhead:
    """``load`` defaults to a closed loop at ``concurrency``; pass an open-loop Load for steady arrivals."""
    requests = [BenchRequest(f"g{i}", f"Request {i}: explain batching in one paragraph.", max_tokens, "gateway")
                for i in range(num_requests)]
    load = load or Load("concurrent", concurrency)
    ttft = {"direct": [], "gateway": []}
    e2e = []
    tokens = {"direct": 0.0, "gateway": 0.0}
    wall = {"direct": 0.0, "gateway": 0.0}
    errors = 0
    with GatewayProcess(upstream.url) as gateway:
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
    return GatewayOverhead(upstream.name, load.label, concurrency, rounds, float(np.median(ttft["direct"])),
                           float(np.median(ttft["gateway"])), added, direct_rate, gateway_rate,
                           gateway_rate / direct_rate, errors, float(np.mean(e2e)))
