"""The pipeline every generation goes through, whichever API flavour asked for it.

    admit (queue) -> open the backend stream -> wait for the first piece -> hand pieces to the API
    layer -> close: release the slot, close the backend stream, record metrics and the request's log fields

Waiting for the first piece *before* the response starts means failures that happen before any text
exists (no upstream, timeout, upstream 4xx) become proper HTTP statuses even for streaming requests;
only failures after the first piece need an in-band error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.responses import StreamingResponse

from .auth import Authenticator
from .backends import Backend, GenerationRequest, Outcome, Piece
from .errors import GatewayError
from .limits import Admission, RateLimiter
from .logs import log
from .metrics import GatewayMetrics
from .settings import GatewaySettings


@dataclass
class RequestInfo:
    """What one request's log line and metrics say; filled in as the request goes through the gateway."""

    request_id: str
    route: str
    start: float
    key_id: str = "-"
    status: int = 0
    ttft_s: float | None = None
    e2e_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    upstream: str | None = None
    error: str | None = None
    status_override: int | None = None  # a stream that failed after its 200 headers counts as this status
    extra: dict = field(default_factory=dict)


class Gateway:
    """Everything one app instance owns; routes reach it as ``request.app.state.gateway``."""

    def __init__(self, backend: Backend, settings: GatewaySettings):
        self.backend = backend
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.admission = Admission(settings.max_in_flight, settings.max_queue, settings.queue_timeout_s, self.metrics)
        self.limiter = RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst)
        self.auth = Authenticator(settings.load_api_keys())

    async def generate(self, info: RequestInfo, request: GenerationRequest) -> Generation:
        self.backend.check_model(request.model)
        generation = Generation(self, info, request)
        await generation.begin()
        return generation


class Generation:
    def __init__(self, gateway: Gateway, info: RequestInfo, request: GenerationRequest):
        self.gateway, self.info, self.request = gateway, info, request
        self.outcome = Outcome()
        self.queue_s = 0.0
        self._stream: AsyncIterator[Piece] | None = None
        self._first: Piece | None = None
        self._admitted = self._closed = False

    async def begin(self) -> None:
        before = time.perf_counter()
        await self.gateway.admission.acquire()
        self._admitted = True
        self.queue_s = time.perf_counter() - before
        self._stream = self.gateway.backend.stream(self.request, self.outcome)
        try:
            self._first = await self._stream.__anext__()
            self._mark_first()
        except StopAsyncIteration:
            self._first = None
        except GatewayError as exc:
            await self.close(exc)
            raise
        except Exception as exc:
            error = _as_gateway_error(exc)
            await self.close(error)
            raise error from exc
        except BaseException:  # cancelled while waiting (client gone, shutdown): just clean up
            await self.close()
            raise

    def _mark_first(self) -> None:
        if self.info.ttft_s is None:
            self.info.ttft_s = time.perf_counter() - self.info.start
            self.gateway.metrics.ttft.labels(self.info.route).observe(self.info.ttft_s)

    async def pieces(self) -> AsyncIterator[Piece]:
        """The stream's pieces; a failure after the first piece is raised as a GatewayError."""
        if self._first is None:
            return
        yield self._first
        try:
            async for piece in self._stream:
                yield piece
        except GatewayError as exc:
            self.info.error, self.info.status_override = exc.message, exc.status
            raise
        except Exception as exc:
            error = _as_gateway_error(exc)
            self.info.error, self.info.status_override = error.message, error.status
            raise error from exc

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.info.start

    async def close(self, error: GatewayError | None = None) -> None:
        """Idempotent; runs on success, failure and client disconnect alike."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._stream is not None:
                await self._stream.aclose()  # the proxy closes its upstream stream here
        finally:
            if self._admitted:
                self.gateway.admission.release()
            self._record(error)

    def _record(self, error: GatewayError | None) -> None:
        info, usage, metrics = self.info, self.outcome.usage, self.gateway.metrics
        info.e2e_s = self.elapsed_s
        info.prompt_tokens, info.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        info.upstream = self.outcome.upstream or (error.upstream if error else None)
        if error is not None:
            info.error = error.message
        metrics.e2e.labels(info.route).observe(info.e2e_s)
        metrics.prompt_tokens.inc(usage.prompt_tokens)
        metrics.completion_tokens.inc(usage.completion_tokens)


def _as_gateway_error(exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    log(40, "backend failed", error=f"{type(exc).__name__}: {exc}")
    return GatewayError(500, f"the backend failed: {type(exc).__name__}: {exc}", code="backend_error")


class LastChunk(bytes):
    """A stream's final bytes: sent together with the end of the response, one socket write instead of two.

    Every write is a system call that, on a small CPU, costs about as much as the rest of a chunk's trip
    through the gateway, and the ends of many streams tend to coincide (they started together).
    """


class GenerationStream(StreamingResponse):
    """A streaming response that always closes its generation, even if the client left before the first
    byte was sent (then no body generator ``finally`` would ever run).

    It sends the ASGI messages itself instead of using Starlette's streaming loop: that loop starts a task
    group per request to listen for the disconnect, which cost a measurable share of the gateway's
    per-request time on a small CPU. Here one watcher task waits for ``http.disconnect`` and cancels the
    streaming task, so a client that leaves still stops the upstream at once. A body iterator that yields
    a :class:`LastChunk` ends the response with it.
    """

    def __init__(self, content: AsyncIterator[bytes], generation: Generation, media_type: str):
        super().__init__(content, media_type=media_type,
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.generation = generation

    async def __call__(self, scope, receive, send) -> None:
        streaming = asyncio.current_task()
        client_left = False

        async def watch_for_disconnect() -> None:
            nonlocal client_left
            while (await receive())["type"] != "http.disconnect":
                pass
            client_left = True
            streaming.cancel()

        watcher = asyncio.ensure_future(watch_for_disconnect())
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            last = False
            async for chunk in self.body_iterator:
                last = isinstance(chunk, LastChunk)
                if last:
                    watcher.cancel()
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                if last:
                    break
            if not last:
                watcher.cancel()
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not client_left:
                raise  # shutdown or a timeout: not ours to swallow
            streaming.uncancel()  # the cancellation was our own way of stopping for a departed client
        finally:
            watcher.cancel()
            await self.generation.close()


async def collect(generation: Generation) -> str:
    """A non-streaming answer: all pieces joined; errors propagate as GatewayError (headers not sent yet)."""
    try:
        return "".join([piece.text async for piece in generation.pieces()])
    except GatewayError as exc:
        await generation.close(exc)
        raise
    finally:
        await generation.close()
