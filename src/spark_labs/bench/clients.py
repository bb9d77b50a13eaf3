"""Streaming clients: send one request, stamp every chunk's arrival, and leave a :class:`RequestRecord`.

Four streaming protocols share one loop — only how a body is built and how one line of the response
is read differ — plus plain non-streaming HTTP for routes that answer in one piece. Nothing here
tokenizes or computes metrics: the hot path only reads bytes and stamps the clock, so the harness
stays out of the way of what it measures (see ``spark-labs bench overhead``).

Requests travel over :mod:`spark_labs.http_client`, a small asyncio HTTP/1.1 client, because general-purpose
clients add more between "send" and the first token; ``spark-labs bench overhead --client httpx|aiohttp``
measures how much on the machine at hand (docs/bench.md records what it printed here).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..event_loop import run_sync
from ..http_client import HTTPError, Pool
from .records import Chunk, RequestRecord
from .transports import CLIENTS, make_client

PROTOCOLS = ("openai-chat", "openai-completions", "ollama-chat", "ollama-generate", "http")


@dataclass(frozen=True)
class Target:
    """Where requests go. ``url`` is the server root (``http://host:port``), without ``/v1``."""

    name: str
    url: str
    model: str
    protocol: str = "openai-chat"
    api_key: str | None = None
    metrics_url: str | None = None  # Prometheus endpoint, for the server-side cross-check
    engine: str | None = None  # registry key of the engine behind ``url``, when known
    client: str = "http11"  # HTTP client library the harness reaches it with (see bench.transports)
    # Body fields every chat request carries, from the profile's model: Qwen3 on the spark profile gets
    # {"chat_template_kwargs": {"enable_thinking": False}} where a lab is not about thinking.
    chat_extras: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.client not in CLIENTS:
            raise ValueError(f"unknown HTTP client {self.client!r}; choose one of {', '.join(CLIENTS)}")

    @classmethod
    def from_engine(cls, engine: Any, protocol: str | None = None, name: str | None = None) -> Target:
        """From a :class:`~spark_labs.engines.EngineHandle` (or anything with url/served_name/spec)."""
        default = f"{engine.spec.protocol}-chat"  # openai-chat or ollama-chat
        return cls(name=name or engine.spec.name, url=engine.url, model=engine.served_name,
                   protocol=protocol or default, metrics_url=engine.metrics_url, engine=engine.spec.name,
                   chat_extras=dict(getattr(engine, "chat_extras", None) or {}))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass
class BenchRequest:
    request_id: str
    prompt: str
    max_tokens: int
    workload: str = "default"
    force_length: bool = True  # ask the engine to ignore EOS so every request decodes max_tokens
    prompt_tokens: int | None = None  # known length of a synthetic prompt
    # For protocol "http": the route, and the JSON body to POST as-is (None: a GET).
    path: str = ""
    body: dict[str, Any] | None = field(default=None)


def build_body(target: Target, request: BenchRequest) -> tuple[str, dict]:
    """The route and JSON body for one request in ``target``'s protocol."""
    p = target.protocol
    if p == "http":
        return request.path, dict(request.body or {})
    if p.startswith("openai"):
        body: dict[str, Any] = {"model": target.model, "max_tokens": request.max_tokens, "temperature": 0.0,
                                "stream": True, "stream_options": {"include_usage": True}}
        if request.force_length:
            # vLLM and SGLang honour ignore_eos; llama.cpp's server honours min_tokens. Unknown fields are ignored.
            body.update(ignore_eos=True, min_tokens=request.max_tokens)
        if p == "openai-chat":
            return "/v1/chat/completions", {**body, **target.chat_extras,
                                            "messages": [{"role": "user", "content": request.prompt}]}
        return "/v1/completions", {**body, "prompt": request.prompt}
    body = {"model": target.model, "stream": True,
            "options": {"num_predict": request.max_tokens, "temperature": 0.0}}
    if p == "ollama-chat":
        return "/api/chat", {**body, "messages": [{"role": "user", "content": request.prompt}]}
    return "/api/generate", {**body, "prompt": request.prompt}


def _read_openai(line: str, record: RequestRecord, t_ns: int) -> bool:
    """One SSE line. Returns True at the end of the stream."""
    if not line.startswith("data:"):
        return False
    data = line[5:].strip()
    if data == "[DONE]":
        return True
    event = json.loads(data)
    if "error" in event:
        error = event["error"]
        record.error = f"error event mid-stream: {error.get('message', error) if isinstance(error, dict) else error}"
        return True
    if usage := event.get("usage"):
        record.output_tokens.server = usage.get("completion_tokens")
        record.prompt_tokens.server = usage.get("prompt_tokens")
        record.reasoning_tokens = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if metrics := event.get("metrics"):  # vLLM with --enable-per-request-metrics: engine-side, milliseconds
        _vllm_request_metrics(metrics, record)
    if timings := event.get("timings"):  # llama.cpp's native server: milliseconds
        record.server_timing["prefill_s"] = timings.get("prompt_ms", 0) / 1e3
        if timings.get("predicted_n"):
            record.server_timing["tpot_s"] = timings.get("predicted_ms", 0) / 1e3 / timings["predicted_n"]
        record.prompt_tokens.server = record.prompt_tokens.server or timings.get("prompt_n")
        record.output_tokens.server = record.output_tokens.server or timings.get("predicted_n")
    for choice in event.get("choices") or ():
        if "delta" not in choice:
            text = choice.get("text")
        else:
            delta = choice.get("delta") or {}
            # A reasoning parser sends the thinking apart from the answer: `reasoning_content` (vLLM, SGLang),
            # `reasoning` in newer vLLM.
            if thought := delta.get("reasoning_content") or delta.get("reasoning"):
                record.chunks.append(Chunk(t_ns, thought, reasoning=True))
            text = delta.get("content")
        if text:
            record.chunks.append(Chunk(t_ns, text))
    return False


def _vllm_request_metrics(metrics: dict, record: RequestRecord) -> None:
    """vLLM's per-request timings: queue (engine arrival → scheduled), TTFT (scheduled → first token) and
    the mean gap between its output tokens. queue + TTFT is the engine's TTFT: it starts after the API
    server has parsed and tokenized the request, so it reads lower than a client's (or the histogram's)."""
    queue, ttft, itl = (metrics.get(k) for k in ("queue_time_ms", "time_to_first_token_ms", "mean_itl_ms"))
    if ttft is not None:
        record.server_timing["ttft_s"] = ((queue or 0.0) + ttft) / 1e3
    if itl is not None:
        record.server_timing["tpot_s"] = itl / 1e3
    if queue is not None:
        record.server_timing["queue_s"] = queue / 1e3


def _read_ollama(line: str, record: RequestRecord, t_ns: int) -> bool:
    if not line.strip():
        return False
    event = json.loads(line)
    if "error" in event:
        record.error = f"error event mid-stream: {event['error']}"
        return True
    text = (event.get("message") or {}).get("content") if "message" in event else event.get("response")
    if text:
        record.chunks.append(Chunk(t_ns, text))
    if event.get("done"):
        record.output_tokens.server = event.get("eval_count")
        record.prompt_tokens.server = event.get("prompt_eval_count")
        # Ollama reports durations in nanoseconds.
        timing = {key.replace("_duration", "_s"): event[key] / 1e9 for key in
                  ("prompt_eval_duration", "eval_duration", "total_duration", "load_duration") if key in event}
        if "prompt_eval_s" in timing:  # the server's TTFT: loading the model, then the prompt
            timing["ttft_s"] = timing.get("load_s", 0.0) + timing["prompt_eval_s"]
        if "eval_s" in timing and event.get("eval_count"):
            timing["tpot_s"] = timing["eval_s"] / event["eval_count"]
        record.server_timing.update(timing)
        return True
    return False


READERS: dict[str, Callable[[str, RequestRecord, int], bool]] = {
    "openai-chat": _read_openai, "openai-completions": _read_openai,
    "ollama-chat": _read_ollama, "ollama-generate": _read_ollama,
}


async def send(pool: Pool, target: Target, request: BenchRequest,
               scheduled_ns: int | None = None, timeout_s: float = 600.0,
               clock: Callable[[], int] = time.perf_counter_ns) -> RequestRecord:
    """Send one request and return its record; never raises for a failed request (the record says why)."""
    path, body = build_body(target, request)
    record = RequestRecord(request_id=request.request_id, engine=target.name, workload=request.workload,
                           scheduled_ns=scheduled_ns if scheduled_ns is not None else clock(),
                           prompt_text=request.prompt, forced_length=request.force_length)
    record.prompt_tokens.requested = request.prompt_tokens
    record.output_tokens.requested = request.max_tokens if target.protocol != "http" else None
    record.sent_ns = clock()
    try:
        method = "GET" if target.protocol == "http" and request.body is None else "POST"
        async with asyncio.timeout(timeout_s), pool.request(method, path, body if method == "POST" else None,
                                                            target.headers) as response:
            record.status = response.status
            if response.status >= 400:
                detail = (await response.read()).decode(errors="replace")[:300]
                record.error = f"HTTP {response.status}: {detail}"
            elif target.protocol == "http":
                payload = await response.read()
                record.chunks.append(Chunk(clock(), payload.decode(errors="replace")))
            else:
                read = READERS[target.protocol]
                lines = response.lines()
                async for raw in lines:  # one line at a time, as soon as it arrives
                    if read(raw.decode(), record, clock()):
                        break
                record.end_ns = clock()
                # Consume the terminating chunk so the connection can be reused without a new handshake.
                async for _ in lines:
                    pass
    except json.JSONDecodeError as exc:
        record.error = f"malformed response line: {exc}"
    except TimeoutError:
        record.error = f"no complete answer within {timeout_s:g} s"
    except (HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
        record.error = f"{type(exc).__name__}: {exc or 'no detail'} (is the server at {target.url} up?)"
    record.end_ns = record.end_ns or clock()
    if record.error is None and not record.chunks and target.protocol != "http":
        record.error = "stream ended without any content"
    return record


def make_pool(target: Target, concurrency: int) -> Pool:
    """One pool per run: connections are reused, so TTFT holds no TCP handshake after warm-up."""
    return make_client(target.client, target.url, max(concurrency, 1))


def _cache_reset_endpoints(target: Target) -> list[tuple[str, str, str]]:
    """(path, engine, what to know when it refuses) to try: the target's engine's own endpoint when the
    registry knows the engine, every registered one for a server of unknown kind."""
    from ..engines.registry import ENGINES

    specs = [ENGINES[target.engine]] if target.engine in ENGINES else list(ENGINES.values())
    return [(s.cache_reset_path, s.display_name, s.cache_reset_note) for s in specs if s.cache_reset_path]


async def _reset_prefix_cache(target: Target) -> str:
    endpoints = _cache_reset_endpoints(target)
    if not endpoints:
        return f"{target.engine} has no cache-reset endpoint; salted prompts still miss its prefix cache"
    pool = Pool(target.url, 1)
    refused = []
    try:
        for path, engine, note in endpoints:
            try:
                async with asyncio.timeout(10), pool.request("POST", path, {}, target.headers) as response:
                    await response.read()
                    if response.status < 300:
                        return f"prefix cache reset ({engine} {path})"
                    refused.append(f"{path}: HTTP {response.status}" + (f" ({note})" if note else ""))
            except (HTTPError, OSError, TimeoutError) as exc:
                refused.append(f"{path}: {type(exc).__name__}")
        return f"prefix cache not reset ({'; '.join(refused)}); salted prompts still miss"
    finally:
        await pool.close()


def reset_prefix_cache(target: Target) -> str:
    """Empty the engine's prefix cache where it offers an endpoint for that; says what happened."""
    return run_sync(lambda: _reset_prefix_cache(target))
