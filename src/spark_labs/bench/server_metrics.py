"""The server's own view of a run: scrape Prometheus ``/metrics`` before and after, diff them.

vLLM (and SGLang, and our gateway) keep histograms of TTFT, per-request TPOT, inter-token latency and
end-to-end latency; which series an engine keeps is in the registry (``EngineSpec.histograms``). The
difference between two scrapes is exactly the run's requests, so the
server's mean (``_sum / _count``) is an exact cross-check of ours; its percentiles are only as fine as
its bucket edges, and we say which bucket they fall in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..engines.engine_spec import EngineSpec
from ..engines.registry import ENGINES
from .metrics import percentile_from_histogram


@dataclass
class Histogram:
    buckets: list[tuple[float, float]]  # cumulative (upper bound, count), summed over label sets
    total: float
    count: float

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        return percentile_from_histogram(self.buckets, q)

    def bucket_of(self, q: float) -> tuple[float, float]:
        """The (lower, upper] bucket edges the q-quantile lies in: the server's resolution there."""
        rank, lower = q * self.count, 0.0
        for upper, count in self.buckets:
            if count >= rank:
                return lower, upper
            lower = upper
        return lower, math.inf

    def __sub__(self, other: Histogram) -> Histogram:
        before = dict(other.buckets)
        return Histogram([(le, c - before.get(le, 0.0)) for le, c in self.buckets],
                         self.total - other.total, self.count - other.count)


@dataclass
class Scrape:
    histograms: dict[str, Histogram]
    counters: dict[str, float]
    gauges: dict[str, float] = None  # summed over label sets

    @classmethod
    def parse(cls, text: str) -> Scrape:
        histograms: dict[str, Histogram] = {}
        counters: dict[str, float] = {}
        gauges: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.type == "histogram":
                buckets: dict[float, float] = {}
                total = count = 0.0
                for sample in family.samples:
                    if sample.name.endswith("_bucket"):
                        le = float(sample.labels["le"])
                        buckets[le] = buckets.get(le, 0.0) + sample.value
                    elif sample.name.endswith("_sum"):
                        total += sample.value
                    elif sample.name.endswith("_count"):
                        count += sample.value
                histograms[family.name] = Histogram(sorted(buckets.items()), total, count)
            elif family.type == "counter":
                counters[family.name] = sum(s.value for s in family.samples if s.name.endswith("_total"))
            elif family.type == "gauge":
                gauges[family.name] = sum(s.value for s in family.samples)
        return cls(histograms, counters, gauges)

    def __sub__(self, other: Scrape) -> Scrape:
        return Scrape({k: h - other.histograms[k] for k, h in self.histograms.items() if k in other.histograms},
                      {k: v - other.counters.get(k, 0.0) for k, v in self.counters.items()})


def detect_flavour(scrape: Scrape) -> EngineSpec | None:
    """The registry engine whose TTFT histogram the scrape has (our gateway reads as the transformers
    engine: both are spark_labs.serve and keep the same series)."""
    for spec in ENGINES.values():
        if spec.histograms.get("ttft") in scrape.histograms:
            return spec
    return None


def histogram_names(scrape: Scrape) -> dict[str, str]:
    """Our metric name → the server's histogram for it, for the engine that produced ``scrape``."""
    spec = detect_flavour(scrape)
    return dict(spec.histograms) if spec else {}


@dataclass
class ServerMetricsProbe:
    """Scrape before and after a run; ``delta`` is what the run did, as the server saw it.
    (A dataclass of scrapes, so a report that holds it can cross to the grader as plain data.)"""

    url: str
    before: Scrape | None = None
    delta: Scrape | None = None

    async def _scrape(self) -> Scrape:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(self.url)
            response.raise_for_status()
            return Scrape.parse(response.text)

    async def start(self) -> None:
        self.before = await self._scrape()

    async def stop(self) -> None:
        after = await self._scrape()
        self.delta = after - self.before if self.before else None

    def compare(self, summary) -> list[dict]:
        """Rows of client-vs-server numbers for every metric both sides have (seconds)."""
        if self.delta is None or (spec := detect_flavour(self.delta)) is None:
            return []
        rows = []
        # The server's clock starts when the request reaches it; ours at the scheduled send time. Means
        # are additive, so subtracting our mean client-queue time puts both on the server's footing.
        queue = summary.distributions["queue"].mean if "queue" in summary.distributions else 0.0
        for ours, theirs in spec.histograms.items():
            h = self.delta.histograms.get(theirs)
            d = summary.distributions.get(ours)
            if h is None or d is None or not h.count:
                continue
            lo, hi = h.bucket_of(0.5)
            mean = d.mean - queue if ours in ("ttft", "e2e") else d.mean
            rows.append({"metric": ours, "server_metric": theirs, "client_n": d.count, "server_n": int(h.count),
                         "client_mean": mean, "server_mean": h.mean,
                         "mean_diff_pct": 100 * (mean - h.mean) / h.mean if h.mean else math.nan,
                         "client_p50": d.p50, "server_p50_interpolated": h.quantile(0.5),
                         "server_p50_bucket": f"({lo:g}, {hi:g}] s"})
        for ours, theirs in spec.counters.items():
            if theirs in self.delta.counters:
                rows.append({"metric": ours, "server_metric": theirs + "_total",
                             "server_count": self.delta.counters[theirs]})
        return rows
