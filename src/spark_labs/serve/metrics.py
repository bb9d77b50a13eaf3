"""Prometheus metrics, one registry per app so several gateways (tests, notebooks) never share counters."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

PREFIX = "spark_labs"


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(f"{PREFIX}_requests_total", "Requests by route and HTTP status",
                                ["route", "status"], registry=r)
        self.in_flight = Gauge(f"{PREFIX}_requests_in_flight", "Generations being served now", registry=r)
        self.queued = Gauge(f"{PREFIX}_queue_length", "Requests waiting for a generation slot", registry=r)
        # Buckets reach down to 1 ms: the gateway's own overhead is measured in milliseconds.
        self.ttft = Histogram(f"{PREFIX}_time_to_first_token_seconds", "Time to first token", ["route"],
                              registry=r, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                   2.5, 5, 10, 30))
        self.e2e = Histogram(f"{PREFIX}_e2e_request_latency_seconds", "Whole request latency", ["route"],
                             registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                                                  60, 120))
        self.prompt_tokens = Counter(f"{PREFIX}_prompt_tokens_total", "Prompt tokens", registry=r)
        self.completion_tokens = Counter(f"{PREFIX}_completion_tokens_total", "Completion tokens", registry=r)
        self.upstream_errors = Counter(f"{PREFIX}_upstream_errors_total", "Upstream failures by upstream and kind",
                                       ["upstream", "kind"], registry=r)
        self.rate_limited = Counter(f"{PREFIX}_rate_limited_total", "Requests refused by a key's rate limit",
                                    registry=r)
        self.rejected = Counter(f"{PREFIX}_rejected_total", "Requests refused before generation, by reason",
                                ["reason"], registry=r)
        self.upstream_healthy = Gauge(f"{PREFIX}_upstream_healthy", "1 when an upstream can take traffic",
                                      ["upstream"], registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
