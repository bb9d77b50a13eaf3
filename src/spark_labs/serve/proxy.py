"""The proxy backend: stream from one of several OpenAI-compatible upstreams through one pooled client.

Upstream requests travel over :mod:`spark_labs.http_client` (keep-alive pools, one per upstream): a
general-purpose client adds more per request than the whole gateway may cost (``spark-labs bench overhead
--client httpx|aiohttp`` measures what they add, ``spark-labs bench gateway`` what the gateway adds; both
sets of figures are in the docs). Health probes, off the hot path, still use httpx.

The gateway always asks upstreams for a *stream* (with ``include_usage``) whatever the client asked: one
code path gives text pieces for both API flavours, time to first token for the metrics, and the point
("first byte") before which a failed upstream can be swapped for another without the client noticing.

Failure handling, by when it happens:
- before the first byte, connect error or 5xx: count a breaker failure and fail over to the next upstream;
- before the first byte, timeout: 504, no failover (the upstream may still be working on it; a retry
  elsewhere would double the load and the wait);
- 4xx from the upstream: the client's fault, passed through with the upstream's status and message, not
  retried elsewhere and not counted against the upstream's breaker (one client's bad requests must not
  take an upstream out of rotation for everybody);
- 200 with a body that ends cleanly before any event: the upstream is alive but refused the request
  (llama-cpp-python does this when a prompt does not fit its context): 502 for this client, no breaker
  failure, no failover;
- after the first byte: no failover is possible (text was already sent): a 502/504 error the API layer
  turns into an in-band error event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx

from ..http_client import HTTPError, Pool
from .backends import GenerationRequest, Outcome, Piece, bare_model_name
from .errors import GatewayError
from .logs import log
from .metrics import GatewayMetrics
from .settings import GatewaySettings
from .upstreams import Upstream, UpstreamPool


class ProxyBackend:
    name = "proxy"

    def __init__(self, upstreams: list[str], settings: GatewaySettings | None = None):
        self.settings = settings or GatewaySettings()
        s = self.settings
        self.pool = UpstreamPool(upstreams, s.breaker_failures, s.breaker_cooldown_s, s.metrics_upstream_addresses)
        self.client: httpx.AsyncClient | None = None  # health probes
        self.pools: dict[str, Pool] = {}  # generation traffic, per upstream
        self.metrics: GatewayMetrics | None = None
        self._health_task = None

    # --- lifecycle
    async def start(self, metrics: GatewayMetrics) -> None:
        s = self.settings
        self.metrics = metrics
        # One client for the app's life: connection pooling and keep-alive to every upstream.
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(s.upstream_first_byte_timeout_s, connect=s.upstream_connect_timeout_s),
            limits=httpx.Limits(max_connections=s.max_in_flight + 2 * len(self.pool.upstreams),
                                max_keepalive_connections=s.max_in_flight),
        )
        if s.health_interval_s > 0:
            await self.pool.probe_all(self.client, s.health_timeout_s)  # /ready is right from the start
            self._health_task = asyncio.create_task(
                self.pool.health_loop(self.client, s.health_interval_s, s.health_timeout_s, self._export_health))
        self._export_health()

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        if self.client is not None:
            await self.client.aclose()
        for pool in self.pools.values():
            await pool.close()

    def _export_health(self) -> None:
        if self.metrics is not None:
            for u in self.pool.upstreams:
                self.metrics.upstream_healthy.labels(u.name).set(1 if u.available() else 0)

    # --- models
    def models(self) -> list[str]:
        if self.settings.served_model_name:
            return [self.settings.served_model_name]
        return self.pool.models()

    def check_model(self, model: str) -> None:
        known = self.models()
        if known and bare_model_name(model) not in known:
            raise GatewayError(404, f"model '{model}' is not served here; available: {', '.join(known)}. "
                               "Use one of those names (GET /v1/models lists them).", code="model_not_found")

    def _upstream_model(self, upstream: Upstream, requested: str) -> str:
        if self.settings.served_model_name and upstream.models:
            return upstream.models[0]  # the public name maps to whatever this upstream calls its model
        return bare_model_name(requested)

    def readiness(self) -> tuple[bool, dict]:
        ready = self.pool.any_available()
        return ready, {"backend": self.name, "upstreams": [u.describe() for u in self.pool.upstreams]}

    # --- generation
    def _body(self, request: GenerationRequest, upstream: Upstream) -> dict:
        body = {**request.extra, "model": self._upstream_model(upstream, request.model),
                "max_tokens": request.max_tokens, "stream": True, "stream_options": {"include_usage": True}}
        if request.kind == "chat":
            body["messages"] = request.messages
        else:
            body["prompt"] = request.prompt
        for name in ("temperature", "top_p", "stop", "seed"):
            if getattr(request, name) is not None:
                body[name] = getattr(request, name)
        if request.ignore_eos:  # only when asked: engines without this vLLM extension may reject it
            body["ignore_eos"] = True
        return body

    def _failed(self, upstream: Upstream, kind: str, summary: str, detail: str = "") -> None:
        """Count a failure against ``upstream``. ``summary`` is what /ready shows key holders (our own words:
        never the upstream's body, which can echo a client's request or a traceback); ``detail`` goes to the
        operator's log only."""
        upstream.breaker.record_failure()
        upstream.last_error = summary
        if self.metrics is not None:
            self.metrics.upstream_errors.labels(upstream.name, kind).inc()
        self._export_health()
        log(30, "upstream failed", upstream=upstream.name, address=upstream.address, kind=kind, error=summary,
            detail=detail[:500], breaker=upstream.breaker.state)

    def _pool(self, upstream: Upstream) -> Pool:
        if upstream.name not in self.pools:
            s = self.settings
            self.pools[upstream.name] = Pool(upstream.base_url, s.max_in_flight, s.upstream_connect_timeout_s,
                                             keep_warm_s=s.upstream_keep_warm_s)
        return self.pools[upstream.name]

    async def _open(self, request: GenerationRequest, outcome: Outcome):
        """Send the request to upstreams in turn until one answers 200 (see the module docstring).
        Returns the upstream, the open exchange (to close) and its response."""
        assert self.client is not None, "ProxyBackend.start() was not called (create_app's lifespan does it)"
        path = "/chat/completions" if request.kind == "chat" else "/completions"
        tried: set[str] = set()
        last: GatewayError | None = None
        while (upstream := self.pool.choose(bare_model_name(request.model), tried)) is not None:
            tried.add(upstream.name)
            upstream.breaker.on_attempt()
            upstream.outstanding += 1
            # The body is serialised with json.dumps' ASCII escaping: a lone UTF-16 surrogate cannot break it.
            exchange = self._pool(upstream).request("POST", path, self._body(request, upstream))
            try:
                async with asyncio.timeout(self.settings.upstream_first_byte_timeout_s):
                    response = await exchange.open()
            except TimeoutError as exc:
                upstream.outstanding -= 1
                self._failed(upstream, "timeout", "timed out before the first byte")
                raise GatewayError(504, f"upstream {upstream.name} did not answer within "
                                   f"{self.settings.upstream_first_byte_timeout_s:g} s; try again, or raise "
                                   "upstream_first_byte_timeout_s", upstream=upstream.name) from exc
            except (HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                upstream.outstanding -= 1
                self._failed(upstream, "connect", f"connection failed ({type(exc).__name__})", str(exc))
                last = GatewayError(502, f"upstream {upstream.name} unreachable ({type(exc).__name__})",
                                    upstream=upstream.name)
                continue
            except BaseException:  # cancelled (client gone) while connecting: no verdict on the upstream
                upstream.outstanding -= 1
                upstream.breaker.abandon()
                raise
            if response.status == 200:
                outcome.upstream = upstream.name
                return upstream, exchange, response
            try:
                detail = (await response.read()).decode(errors="replace")[:2000]
            except (HTTPError, OSError, asyncio.IncompleteReadError):
                detail = ""
            await exchange.close()
            upstream.outstanding -= 1
            if response.status >= 500:
                self._failed(upstream, "http_5xx", f"answered HTTP {response.status}", detail)
                last = GatewayError(502, f"upstream {upstream.name} failed with HTTP {response.status}",
                                    upstream=upstream.name)
                continue
            upstream.breaker.record_success()  # it answered sensibly; the request was at fault
            raise GatewayError(response.status, f"upstream rejected the request: {_upstream_message(detail)}",
                               code="upstream_rejected", upstream=upstream.name)
        if last is not None:
            raise GatewayError(502, f"{last.message}; no other upstream could take the request. "
                               "Check GET /ready for upstream states.", upstream=last.upstream)
        raise GatewayError(503, "no healthy upstream can take this request right now (all down or their circuit "
                           "breakers are open); GET /ready shows each upstream's state. Retry shortly.",
                           code="no_healthy_upstream", retry_after=self.settings.breaker_cooldown_s)

    async def _lines(self, response) -> AsyncIterator[str]:
        """The response's non-blank lines (SSE's blank line after each event carries nothing the stream needs),
        each awaited at most ``upstream_first_byte_timeout_s`` (TimeoutError)."""
        lines = response.lines()
        with _ReadWatchdog(self.settings.upstream_first_byte_timeout_s) as watchdog:
            while True:
                # The limit covers the read only, never the time the consumer spends between lines.
                watchdog.reading()
                try:
                    raw = await anext(lines)
                except StopAsyncIteration:
                    return
                finally:
                    watchdog.idle()
                if raw:
                    yield raw.decode()

    async def stream(self, request: GenerationRequest, outcome: Outcome) -> AsyncIterator[Piece]:
        upstream, exchange, response = await self._open(request, outcome)
        deadline = time.monotonic() + self.settings.upstream_total_timeout_s
        chunks = events = 0
        finished = False
        lines = self._lines(response)
        try:
            async for line in lines:
                if not line.startswith("data:"):
                    continue
                events += 1
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    async for _ in lines:  # the terminating chunk: read it so the connection is reused
                        pass
                    break
                event = json.loads(data)
                if "error" in event:
                    raise GatewayError(502, f"upstream error mid-stream: {_upstream_message(json.dumps(event))}",
                                       upstream=upstream.name)
                if event.get("usage"):
                    outcome.usage.prompt_tokens = event["usage"].get("prompt_tokens", 0) or 0
                    outcome.usage.completion_tokens = event["usage"].get("completion_tokens", 0) or 0
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") if request.kind == "chat" else choice.get("text")
                    if choice.get("finish_reason"):
                        outcome.finish_reason = choice["finish_reason"]
                    if text:
                        chunks += 1
                        yield Piece(text, 1)
                if time.monotonic() > deadline:
                    raise GatewayError(504, f"upstream {upstream.name} exceeded upstream_total_timeout_s="
                                       f"{self.settings.upstream_total_timeout_s:g} s", upstream=upstream.name)
            if events == 0:
                raise _EmptyAnswer(upstream.name)
            if not finished and outcome.finish_reason is None:
                raise GatewayError(502, f"upstream {upstream.name} closed the stream before finishing",
                                   upstream=upstream.name)
            if not outcome.usage.completion_tokens:
                outcome.usage.completion_tokens = chunks  # no usage chunk (llama-cpp-python): one token a chunk
            upstream.breaker.record_success()
        except _EmptyAnswer:
            upstream.last_error = "answered a request with an empty body (a refusal, not counted as a failure)"
            raise
        except GatewayError as exc:
            self._failed(upstream, "mid_stream", "failed mid-stream", exc.message)
            raise
        except TimeoutError as exc:
            self._failed(upstream, "timeout", "timed out mid-stream")
            raise GatewayError(504, f"upstream {upstream.name} stopped sending for "
                               f"{self.settings.upstream_first_byte_timeout_s:g} s mid-stream", upstream=upstream.name
                               ) from exc
        except (HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._failed(upstream, "mid_stream", f"failed mid-stream ({type(exc).__name__})", str(exc))
            raise GatewayError(502, f"upstream {upstream.name} failed mid-stream ({type(exc).__name__}); the "
                               "answer is incomplete, retry the request", upstream=upstream.name) from exc
        finally:
            upstream.outstanding -= 1
            upstream.breaker.abandon()  # no-op unless the stream ended without a verdict (client disconnect)
            # An unfinished body closes the connection: that is what cancels the upstream request when the
            # client disconnected; a finished one goes back to the pool.
            await lines.aclose()
            await exchange.close()


class _EmptyAnswer(GatewayError):
    """The upstream answered 200 and ended the body cleanly without a single event: it is up, it refused."""

    def __init__(self, upstream: str):
        super().__init__(502, f"upstream {upstream} accepted the request but sent an empty answer; this is how "
                         "llama.cpp refuses a prompt longer than its context or a value it cannot use: shorten "
                         "the conversation or check the sampling fields", code="upstream_empty_answer",
                         upstream=upstream)


class _ReadWatchdog:
    """Raises TimeoutError in the reading task when one read waits longer than ``limit_s``.

    ``asyncio.timeout`` around every read would do the same, but arming and cancelling a timer per token
    was a tenth of the gateway's CPU per streamed chunk. Here one timer per stream wakes up at most every
    ``limit_s``; a read only stamps the time it started.
    """

    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task | None = None
        self._read_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.fired = False

    def reading(self) -> None:
        self._task = asyncio.current_task()  # whichever task reads now is the one to interrupt
        self._read_since = self._loop.time()

    def idle(self) -> None:
        self._read_since = None

    def _check(self) -> None:
        now = self._loop.time()
        if self._read_since is not None and now - self._read_since >= self.limit_s:
            self.fired = True
            self._task.cancel()
            return
        since = self._read_since if self._read_since is not None else now
        self._timer = self._loop.call_at(since + self.limit_s, self._check)

    def __enter__(self):
        self._timer = self._loop.call_at(self._loop.time() + self.limit_s, self._check)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._timer.cancel()
        if self.fired and exc_type is asyncio.CancelledError and self._task.uncancel() == 0:
            raise TimeoutError(f"no data for {self.limit_s:g} s") from exc


def _upstream_message(detail: str) -> str:
    try:
        body = json.loads(detail)
        error = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)
        return str(body.get("detail", error)) if isinstance(body, dict) else str(error)
    except ValueError:
        return detail or "(empty body)"
