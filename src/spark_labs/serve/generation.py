"""The pipeline every generation goes through, whichever API flavour asked for it.

    admit (queue) -> open the backend stream -> wait for the first piece -> hand pieces to the API
    layer -> close: release the slot, close the backend stream, record metrics and the request's log fields

Waiting for the first piece *before* the response starts means failures that happen before any text
exists (no upstream, timeout, upstream 4xx) become proper HTTP statuses even for streaming requests;
only failures after the first piece need an in-band error event.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.responses import StreamingResponse

from .auth import DEFAULT_PUBLIC_PATHS, Authenticator, PublicPaths
from .backends import Backend, GenerationRequest, Outcome, Piece
from .errors import GatewayError
from .limits import Admission, FailedKeyThrottle, RateLimiter
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
        self.key_failures = FailedKeyThrottle(settings.max_auth_failures, settings.auth_failure_window_s)
        # Paths anyone may call; everything else needs a key. Extend it for public pages of your own:
        # gateway.public.add("/ui/*").
        self.public = PublicPaths([*DEFAULT_PUBLIC_PATHS, *settings.public_paths])

    def authorize(self, authorization: str | None, client: str, flavour: str) -> str:
        """The key id a request that needs a key runs under (401, or 429 for a throttled address or a key
        past its rate limit); with authentication off, the client's address."""
        try:
            self.key_failures.check(client)
        except GatewayError:
            self.metrics.rejected.labels("too_many_failed_keys").inc()
            raise
        try:
            key = self.auth.identify(authorization, client, flavour)
        except GatewayError as exc:
            self.metrics.rejected.labels("unauthorized").inc()
            if exc.code == "invalid_api_key":  # a guess; a missing key is a client that was not told one
                self.key_failures.failed(client)
            raise
        try:
            self.limiter.check(key)
        except GatewayError:
            self.metrics.rate_limited.inc()
            raise
        return key

    def holds_key(self, authorization: str | None, client: str) -> bool:
        """May this caller see operator details (upstream URLs, private routes) on a public route? A valid key
        (a wrong one counts as a failed attempt: details that appear for the right key make a key oracle),
        or, with authentication off, a caller on this machine (a notebook or a test)."""
        if not self.auth.enabled:
            try:
                return ipaddress.ip_address(client).is_loopback
            except ValueError:  # no client address (a test transport) or not an IP
                return False
        if not authorization:
            return False
        try:
            self.key_failures.check(client)
        except GatewayError:
            return False
        if self.auth.is_valid(authorization):
            return True
        self.key_failures.failed(client)
        return False

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
        self.sent_tokens = 0  # tokens of the pieces the API layer consumed: what a departed client received
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
        # A piece counts as sent once the consumer asks for the next one, i.e. after it wrote this one out.
        self.sent_tokens += self._first.tokens
        try:
            async for piece in self._stream:
                yield piece
                self.sent_tokens += piece.tokens
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
        # No usage from the backend (the client left before the upstream's usage chunk): count what was sent.
        completion = usage.completion_tokens or self.sent_tokens
        info.prompt_tokens, info.completion_tokens = usage.prompt_tokens, completion
        info.upstream = self.outcome.upstream or (error.upstream if error else None)
        if error is not None:
            info.error = error.message
        metrics.e2e.labels(info.route).observe(info.e2e_s)
        metrics.prompt_tokens.inc(usage.prompt_tokens)
        metrics.completion_tokens.inc(completion)


def _as_gateway_error(exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    log(40, "backend failed", error=f"{type(exc).__name__}: {exc}")
    # The exception's text stays in the log: it can hold file paths or another request's data.
    return GatewayError(500, f"the backend failed ({type(exc).__name__}); the gateway's log has the details "
                        "under this request's X-Request-ID", code="backend_error")


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
        try:
            async with cancelled_if_client_leaves(receive) as watch:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                last = False
                async for chunk in self.body_iterator:
                    last = isinstance(chunk, LastChunk)
                    if last:
                        watch.stop()  # the final write completes the response: a disconnect after it is normal
                    await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                    if last:
                        break
                if not last:
                    watch.stop()
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except ClientLeft as left:  # the 200 is sent; the generation is closed below, which stops the upstream
            self.generation.info.error = left.message
        finally:
            await self.generation.close()


class ClientLeft(GatewayError):
    """The client disconnected before its answer was complete (nginx's 499: nobody receives this answer)."""

    def __init__(self) -> None:
        super().__init__(499, "the client closed the connection before the answer was complete; its generation "
                         "was cancelled", code="client_closed_request")


class _DisconnectWatch:
    def __init__(self, receive) -> None:
        self.receive = receive
        self.task = asyncio.current_task()
        self.left = False
        self.watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        await client_disconnected(self.receive)
        self.left = True
        self.task.cancel()

    def stop(self) -> None:
        # Dropped as well as cancelled: the cancelled task keeps its CancelledError, whose traceback holds this
        # object, which would hold the task: a reference cycle per request, left to the garbage collector.
        if self.watcher is not None:
            self.watcher.cancel()
            self.watcher = None


async def client_disconnected(receive) -> None:
    """Return once the client has closed its connection. Call it after the request body is read: the only
    message the server still sends then is ``http.disconnect``."""
    while (await receive())["type"] != "http.disconnect":
        pass


@asynccontextmanager
async def cancelled_if_client_leaves(receive) -> AsyncIterator[_DisconnectWatch]:
    """Run the block in the current task; if the client disconnects meanwhile, cancel it and raise ClientLeft.

    Servers do not cancel a request handler whose client left, so without this an abandoned request keeps
    its generation (and the engine) busy to the end. One watcher task per request; call ``stop()`` before
    a write that completes the response, after which a disconnect is expected.
    """
    watch = _DisconnectWatch(receive)
    try:
        yield watch
    except asyncio.CancelledError:
        if not watch.left:
            raise  # shutdown or a timeout: not ours to swallow
        watch.task.uncancel()  # the cancellation was our own way of stopping for a departed client
        raise ClientLeft() from None
    finally:
        watch.stop()


async def answer(request, wanted: GenerationRequest, stream: bool) -> tuple[Generation, str | None]:
    """Start a generation for an API route; for a plain (non-streaming) request also collect its text.

    A plain request is cancelled if the client leaves (the upstream request is closed, so the engine stops)
    and the route then ends with :class:`ClientLeft`. A stream's text is None: GenerationStream sends it and
    watches for the client itself from its first byte (a client gone before that is noticed then; watching
    the wait for the first token too would cost a second task per stream on the hot path).
    """
    gateway = request.app.state.gateway
    if stream:
        return await gateway.generate(request.state.info, wanted), None
    async with cancelled_if_client_leaves(request.receive):
        generation = await gateway.generate(request.state.info, wanted)
        return generation, await collect(generation)


async def collect(generation: Generation) -> str:
    """A non-streaming answer: all pieces joined; errors propagate as GatewayError (headers not sent yet)."""
    try:
        return "".join([piece.text async for piece in generation.pieces()])
    except GatewayError as exc:
        await generation.close(exc)
        raise
    finally:
        await generation.close()
