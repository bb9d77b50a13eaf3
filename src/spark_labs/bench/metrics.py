"""Metric definitions, once: per-request numbers from a :class:`RequestRecord`, and distributions over a run.

Every metric the harness prints is defined in :data:`DEFINITIONS`, with the name the same quantity
has in ``vllm bench serve``, GuideLLM and AIPerf, so learners can line our numbers up with theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from .records import RequestRecord

NS = 1e9


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    unit: str
    definition: str
    vllm_bench: str
    guidellm: str
    aiperf: str


DEFINITIONS = (
    MetricDefinition("ttft", "s", "first content-bearing chunk − scheduled send time (includes client queue)",
                     "ttft_ms", "time_to_first_token_ms", "time_to_first_token"),
    MetricDefinition("ttft_reasoning", "s", "first reasoning chunk − scheduled send time (reasoning models: "
                     "when thinking starts; equals ttft then)", "—", "—", "—"),
    MetricDefinition("ttft_answer", "s", "first answer (non-reasoning) chunk − scheduled send time: what a "
                     "user of a reasoning model waits before the answer starts", "—", "—", "—"),
    MetricDefinition("reasoning_tokens", "tokens", "output tokens spent thinking (server count, else the "
                     "tokens the reasoning chunks carry); counted in output tokens too",
                     "—", "—", "reasoning_token_count"),
    MetricDefinition("tpot", "s", "(E2E − TTFT) / (output tokens − 1); undefined for one-token answers",
                     "tpot_ms", "inter_token_latency_ms", "inter_token_latency"),
    MetricDefinition("itl", "s", "each gap between content chunks, split evenly over the tokens the later "
                     "chunk carries (one sample per token)", "itl_ms (one sample per chunk, not split)",
                     "— (per-request mean only)", "— (per-request mean only)"),
    MetricDefinition("inter_chunk", "s", "gap between consecutive content-bearing chunks, whatever they carry",
                     "—", "—", "inter_chunk_latency"),
    MetricDefinition("e2e", "s", "last byte of the response − scheduled send time",
                     "e2el_ms", "request_latency", "request_latency"),
    MetricDefinition("queue", "s", "actual send − scheduled send: time the request waited in the client "
                     "(open-loop with a concurrency cap)", "—", "request queued time", "—"),
    MetricDefinition("prefill_tok_s", "tok/s", "prompt tokens / (first chunk − actual send)",
                     "—", "—", "prefill_throughput_per_user"),
    MetricDefinition("decode_tok_s", "tok/s", "(output tokens − 1) / (E2E − TTFT) = 1 / TPOT",
                     "—", "—", "output_token_throughput_per_user"),
    MetricDefinition("request_throughput", "req/s", "completed requests / run duration",
                     "request_throughput", "requests_per_second", "request_throughput"),
    MetricDefinition("output_throughput", "tok/s", "output tokens of completed requests / run duration",
                     "output_throughput", "output_tokens_per_second", "output_token_throughput"),
    MetricDefinition("goodput", "req/s", "completed requests meeting every SLO / run duration",
                     "request_goodput", "— (via constraints)", "goodput"),
)

# A percentile needs enough samples above it to mean anything: with n samples the p99 is an
# interpolation between the two largest values until n reaches ~100.
MIN_SAMPLES = {50: 2, 90: 10, 99: 100}


def output_token_count(record: RequestRecord) -> int | None:
    """The output length the metrics use: the server's count, else our tokenizer's, never fewer than the chunks.

    Re-tokenizing the finished text is not the inverse of generation: adjacent tokens can merge (llama.cpp's
    40 forced tokens re-tokenize to 39 now and then). Every content chunk came from at least one generated
    token, so the chunk count is a floor the client count must not fall under.
    """
    counts = record.output_tokens
    if counts.server is not None:
        return counts.server
    chunks = len(record.content_chunks)
    return max(counts.client, chunks) if counts.client is not None else (chunks or None)


def chunk_tokens(record: RequestRecord) -> list[int]:
    """How many tokens each content chunk carries.

    Servers that report per-chunk counts are believed. Otherwise, when the total (server usage, else
    our tokenizer) matches the chunk count, it is one token per chunk (vLLM, llama.cpp); when the total
    is larger, tokens are shared out in proportion to each chunk's text, at least one each.
    """
    chunks = record.content_chunks
    if not chunks:
        return []
    if all(c.tokens for c in chunks):
        return [int(c.tokens) for c in chunks]
    total = output_token_count(record)
    if total is None or total <= len(chunks):
        return [1] * len(chunks)
    weights = np.array([max(len(c.text), 1) for c in chunks], dtype=float)
    shares = total * weights / weights.sum()
    counts = np.maximum(np.floor(shares).astype(int), 1)
    # Largest-remainder rounding keeps the sum exact while every chunk keeps at least one token.
    order = np.argsort(-(shares - np.floor(shares)), kind="stable")
    i = 0
    while counts.sum() < total:
        counts[order[i % len(order)]] += 1
        i += 1
    while counts.sum() > total:
        counts[int(np.argmax(counts - shares))] -= 1
    return [int(c) for c in counts]


@dataclass
class RequestMetrics:
    ok: bool
    queue_s: float
    ttft_s: float | None
    e2e_s: float
    output_tokens: int
    prompt_tokens: int | None
    tpot_s: float | None
    itl_s: list[float]
    inter_chunk_s: list[float]
    prefill_tok_s: float | None
    decode_tok_s: float | None
    # Reasoning models only (None / 0 otherwise): thinking and answer timed and counted apart.
    ttft_reasoning_s: float | None = None
    ttft_answer_s: float | None = None
    reasoning_tokens: int = 0


def _reasoning_split(record: RequestRecord, chunks, counts: list[int]) -> tuple[float | None, float | None, int]:
    """TTFT to the first reasoning chunk, TTFT to the first answer chunk, and the reasoning token count
    (the server's, else the tokens the reasoning chunks carry)."""
    first = {kind: next((c.t_ns for c in chunks if c.reasoning is kind), None) for kind in (True, False)}
    since = {kind: (t - record.scheduled_ns) / NS if t is not None else None for kind, t in first.items()}
    thinking = sum(k for c, k in zip(chunks, counts) if c.reasoning)
    if record.reasoning_tokens is not None:
        thinking = record.reasoning_tokens
    return since[True], since[False], thinking


def request_metrics(record: RequestRecord) -> RequestMetrics:
    chunks = record.content_chunks
    counts = chunk_tokens(record)
    n = output_token_count(record) or sum(counts)
    scheduled = record.scheduled_ns
    ttft = (chunks[0].t_ns - scheduled) / NS if chunks else None
    e2e = (record.end_ns - scheduled) / NS
    tpot = (e2e - ttft) / (n - 1) if ttft is not None and n > 1 else None
    inter_chunk = [(b.t_ns - a.t_ns) / NS for a, b in pairwise(chunks)]
    itl = [gap / k for gap, k in zip(inter_chunk, counts[1:]) for _ in range(k)]
    prompt = record.prompt_tokens.best if record.prompt_tokens.best is not None else record.prompt_tokens.requested
    since_send = (chunks[0].t_ns - record.sent_ns) / NS if chunks else None
    prefill = prompt / since_send if prompt and since_send else None
    ttft_reasoning, ttft_answer, thinking = _reasoning_split(record, chunks, counts)
    return RequestMetrics(ok=record.ok, queue_s=(record.sent_ns - scheduled) / NS, ttft_s=ttft, e2e_s=e2e,
                          output_tokens=n, prompt_tokens=prompt, tpot_s=tpot, itl_s=itl,
                          inter_chunk_s=inter_chunk, prefill_tok_s=prefill,
                          decode_tok_s=1 / tpot if tpot else None, ttft_reasoning_s=ttft_reasoning,
                          ttft_answer_s=ttft_answer, reasoning_tokens=thinking)


@dataclass
class Distribution:
    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Distribution | None:
        if not values:
            return None
        a = np.asarray(values, dtype=float)
        p50, p90, p99 = np.percentile(a, [50, 90, 99])  # linear interpolation, as vllm bench does
        return cls(len(a), float(a.mean()), float(p50), float(p90), float(p99), float(a.min()), float(a.max()))

    def thin(self) -> list[str]:
        """Percentiles resting on too few samples to trust."""
        return [f"p{q}" for q, needed in MIN_SAMPLES.items() if self.count < needed]


@dataclass
class Summary:
    requests: int
    completed: int
    failed: int
    duration_s: float
    request_throughput: float
    output_throughput: float
    prompt_throughput: float
    goodput: float | None
    distributions: dict[str, Distribution]
    warnings: list[str] = field(default_factory=list)

    def row(self) -> dict:
        """Flat dict for a DataFrame row: p50/p90/p99 and sample count per metric."""
        out = {"requests": self.requests, "completed": self.completed, "failed": self.failed,
               "duration_s": self.duration_s, "request_throughput": self.request_throughput,
               "output_throughput": self.output_throughput, "prompt_throughput": self.prompt_throughput,
               "goodput": self.goodput}
        for name, d in self.distributions.items():
            for stat in ("mean", "p50", "p90", "p99"):
                out[f"{name}_{stat}"] = getattr(d, stat)
            out[f"{name}_n"] = d.count
        return out


def meets_slo(m: RequestMetrics, slo: dict[str, float]) -> bool:
    """``slo`` maps metric names (ttft_s, tpot_s, e2e_s) to the most a request may take."""
    for name, limit in slo.items():
        value = getattr(m, name)
        if value is None or value > limit:
            return False
    return m.ok


def summarize(records: list[RequestRecord], slo: dict[str, float] | None = None) -> Summary:
    """Aggregate a run. Failed requests count in ``failed`` and nowhere else: their partial latencies
    would flatter the engine (an early error is fast)."""
    if not records:
        raise ValueError("no requests to summarise: the run produced no records")
    per = [request_metrics(r) for r in records]
    good = [m for m in per if m.ok]
    start = min(r.scheduled_ns for r in records)
    end = max(r.end_ns for r in records)
    duration = max((end - start) / NS, 1e-9)
    samples = {
        "ttft": [m.ttft_s for m in good if m.ttft_s is not None],
        "tpot": [m.tpot_s for m in good if m.tpot_s is not None],
        "itl": [x for m in good for x in m.itl_s],
        "inter_chunk": [x for m in good for x in m.inter_chunk_s],
        "e2e": [m.e2e_s for m in good],
        "queue": [m.queue_s for m in good],
        "prefill_tok_s": [m.prefill_tok_s for m in good if m.prefill_tok_s],
        "decode_tok_s": [m.decode_tok_s for m in good if m.decode_tok_s],
        "output_tokens": [float(m.output_tokens) for m in good],
        "prompt_tokens": [float(m.prompt_tokens) for m in good if m.prompt_tokens],
        # The server's own per-request clock, where it reports one (vLLM per-request metrics, Ollama).
        "server_ttft": [r.server_timing["ttft_s"] for r in records if r.ok and "ttft_s" in r.server_timing],
        "server_tpot": [r.server_timing["tpot_s"] for r in records if r.ok and "tpot_s" in r.server_timing],
    }
    if any(m.ttft_reasoning_s is not None for m in good):  # a reasoning model thought: time and count it apart
        samples["ttft_reasoning"] = [m.ttft_reasoning_s for m in good if m.ttft_reasoning_s is not None]
        samples["ttft_answer"] = [m.ttft_answer_s for m in good if m.ttft_answer_s is not None]
        samples["reasoning_tokens"] = [float(m.reasoning_tokens) for m in good]
        samples["answer_tokens"] = [float(m.output_tokens - m.reasoning_tokens) for m in good]
    distributions = {k: d for k, v in samples.items() if (d := Distribution.of(v)) is not None}
    warnings = _warnings(records, per, distributions)
    return Summary(
        requests=len(records), completed=len(good), failed=len(records) - len(good), duration_s=duration,
        request_throughput=len(good) / duration,
        output_throughput=sum(m.output_tokens for m in good) / duration,
        prompt_throughput=sum(m.prompt_tokens or 0 for m in good) / duration,
        goodput=(sum(meets_slo(m, slo) for m in good) / duration) if slo else None,
        distributions=distributions, warnings=warnings)


def _warnings(records: list[RequestRecord], per: list[RequestMetrics], dists: dict[str, Distribution]) -> list[str]:
    out = []
    failed = [r for r in records if not r.ok]
    if failed:
        out.append(f"{len(failed)} of {len(records)} requests failed; first error: {failed[0].error}")
    thin = {name: dists[name] for name in ("ttft", "tpot", "e2e") if name in dists and dists[name].thin()}
    if thin:
        d = next(iter(thin.values()))
        out.append(f"{'/'.join(d.thin())} of {', '.join(thin)} rest on {d.count} samples: too few to trust "
                   f"(p90 wants ≥{MIN_SAMPLES[90]}, p99 ≥{MIN_SAMPLES[99]})")
    disagree = [(r, d) for r in records if (d := r.output_tokens.disagreement())]
    if disagree:
        out.append(f"token counts disagree on {len(disagree)} requests, e.g. {disagree[0][1]}")
    short = [(r, m) for r, m in zip(records, per) if r.ok and r.forced_length and r.output_tokens.requested
             and m.output_tokens < r.output_tokens.requested]
    if short:
        r, m = short[0]
        out.append(f"{len(short)} requests stopped short of the forced length "
                   f"(e.g. {m.output_tokens} of {r.output_tokens.requested} tokens): "
                   "the engine ignored ignore_eos/min_tokens, so per-token numbers cover fewer tokens")
    one_token = sum(1 for r, m in zip(records, per) if m.ok and m.output_tokens == 1 and r.output_tokens.requested)
    if one_token:
        out.append(f"{one_token} requests produced a single token: they have a TTFT but no TPOT")
    return out


def percentile_from_histogram(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style quantile from cumulative ``(upper_bound, count)`` buckets, interpolating linearly
    inside the bucket (what ``histogram_quantile`` does). Only as precise as the bucket edges."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower_bound
            if count == lower_count:
                return upper
            return lower_bound + (upper - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = upper, count
    return buckets[-1][0]
