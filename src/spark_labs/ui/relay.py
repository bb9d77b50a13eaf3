"""Relay the page's Ollama API calls to the real API (Ollama, or the gateway's Ollama routes).

The page talks only to its own origin, so its Content-Security-Policy can stay ``connect-src 'self'``. Only the
three routes the page uses pass, and only for the page itself (:mod:`.guard`). The ``Authorization`` and ``Origin``
headers are forwarded untouched (so Ollama's own ``OLLAMA_ORIGINS`` check applies too), and so are the engine's
status, error body and ``Retry-After``.

Limits: a request body over ``max_request_bytes`` is refused with 413 before the rest is read; an answer the relay
holds (everything but a chat stream) over ``max_response_bytes`` is cut off with 502 and the upstream closed. A
chat stream is relayed chunk by chunk, never held. Whenever the browser goes away (the Stop button aborts the
fetch, a tab closes) the upstream connection is closed at once, which is what makes the engine stop generating
(:func:`relay_until_stop`; ``relay=`` takes another stop path, as lab 06's exercise does).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ..serve.generation import ClientLeft, cancelled_if_client_leaves, client_disconnected

ROUTES = {("GET", "/api/tags"), ("GET", "/api/version"), ("POST", "/api/chat")}
MAX_REQUEST_BYTES = 4 << 20  # a chat filling a 128k-token context is ~0.5 MiB of JSON
MAX_RESPONSE_BYTES = 8 << 20  # /api/tags of a large model library, or a whole non-streamed answer: far less
_FORWARDED_REQUEST = ("authorization", "content-type", "origin", "x-request-id")
_FORWARDED_RESPONSE = ("retry-after", "x-request-id")
_GONE = 499  # nginx's "client closed request": nobody receives it


def _error_line(message: str) -> bytes:
    """Ollama's in-band error: the only way to tell a client whose 200 status is already sent."""
    return json.dumps({"error": message}).encode() + b"\n"


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


Relay = Callable[[httpx.Response, Callable[[bytes], Awaitable[None]], asyncio.Event], Awaitable[object]]


async def relay_until_stop(upstream: httpx.Response, send: Callable[[bytes], Awaitable[None]],
                           browser_left: asyncio.Event) -> str:
    """The course's stop path: copy the engine's chunks to the browser until the answer ends; the moment the
    browser leaves — also while waiting for the engine's next chunk — stop reading and close the connection to
    the engine, which is what makes it stop generating. Lab 06's Exercise 06.5 writes the same function."""
    chunks = upstream.aiter_raw()
    left = asyncio.ensure_future(browser_left.wait())
    try:
        while True:
            following = asyncio.ensure_future(anext(chunks, None))
            await asyncio.wait({following, left}, return_when=asyncio.FIRST_COMPLETED)
            if left.done():
                following.cancel()
                return "stopped"
            chunk = following.result()
            if chunk is None:
                return "done"
            await send(chunk)
    finally:
        left.cancel()
        await upstream.aclose()


class RelayedStream:
    """An ASGI response copying an upstream NDJSON stream to the browser with a stop path (``relay``).

    The relay gets the upstream response, a ``send(chunk)`` to the browser and an event set when the browser
    leaves (the Stop button aborts the fetch, a tab closes); closing the upstream when it is set is the relay's
    job — :func:`relay_until_stop` does, a learner's relay in lab 06 must. If the upstream breaks mid-answer,
    the stream ends with Ollama's in-band ``{"error": ...}`` line (the 200 status is already sent).
    """

    def __init__(self, response: httpx.Response, upstream: str, relay: Relay = relay_until_stop):
        self.response, self.upstream, self.relay = response, upstream, relay

    async def __call__(self, scope, receive, send) -> None:
        browser_left = asyncio.Event()

        async def watch() -> None:
            await client_disconnected(receive)
            browser_left.set()

        async def to_browser(chunk: bytes) -> None:
            if not browser_left.is_set():  # nobody reads a departed browser's stream
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        watcher = asyncio.ensure_future(watch())
        try:
            headers = [(b"content-type", b"application/x-ndjson"), (b"cache-control", b"no-cache")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            try:
                await self.relay(self.response, to_browser, browser_left)
            except httpx.HTTPError as exc:
                await to_browser(_error_line(f"the connection to the Ollama API at {self.upstream} broke "
                                             f"mid-answer ({type(exc).__name__}); the answer is incomplete"))
            except Exception as exc:  # noqa: BLE001 - a relay's bug (lab 06's is the learner's) ends the answer
                await to_browser(_error_line(f"the relay raised {type(exc).__name__}: {exc}; the answer is "
                                             "incomplete"))
            watcher.cancel()  # the last write completes the response: a disconnect after it is normal
            if not browser_left.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()


class OllamaRelay:
    def __init__(self, upstream: str, connect_timeout_s: float = 5.0, read_timeout_s: float = 600.0,
                 max_request_bytes: int = MAX_REQUEST_BYTES, max_response_bytes: int = MAX_RESPONSE_BYTES,
                 relay: Relay = relay_until_stop):
        self.upstream = upstream.rstrip("/")
        self.relay = relay  # a chat stream's stop path
        self.max_request_bytes, self.max_response_bytes = max_request_bytes, max_response_bytes
        self._timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def forward(self, request: Request) -> Response:
        try:
            body = await self._body(request)
        except ClientDisconnect:
            return Response(status_code=_GONE)
        if isinstance(body, Response):
            return body
        try:
            # Everything up to a stream's first byte ends when the browser leaves: a non-streamed answer
            # (stream: false, /api/tags) would otherwise keep the engine busy for nobody.
            async with cancelled_if_client_leaves(request.receive):
                return await self._exchange(request, body)
        except ClientLeft:
            return Response(status_code=_GONE)

    async def _body(self, request: Request) -> bytes | Response:
        """The request body, or a 413 as soon as it is known to be too large (without reading the rest)."""
        declared = request.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else 0
        if size <= self.max_request_bytes:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.max_request_bytes:
                    break
            else:
                return bytes(body)
        what = f"Content-Length {size}" if size else "more than that arrived"
        error = (f"the request body is over the relay's limit of {_mib(self.max_request_bytes)} ({what}); the "
                 "page's chats are far smaller: start a New chat if a conversation grew this long")
        # Connection: close makes the server hang up instead of reading (and discarding) the rest.
        return JSONResponse({"error": error}, status_code=413, headers={"Connection": "close"})

    async def _exchange(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        headers = {k: v for k in _FORWARDED_REQUEST if (v := request.headers.get(k))}
        outgoing = self._client.build_request(request.method, self.upstream + path, headers=headers, content=body)
        try:
            response = await self._client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            return JSONResponse({"error": f"cannot reach the Ollama API at {self.upstream} "
                                 f"({type(exc).__name__}: {exc or 'no detail'}); start the engine (`ollama serve`, "
                                 "or `spark-labs serve` for the gateway) or point `spark-labs ui --ollama` at it"},
                                status_code=502)
        passed = {k: v for k in _FORWARDED_RESPONSE if (v := response.headers.get(k))}
        media_type = response.headers.get("content-type", "application/json")
        if request.method == "POST" and response.status_code < 400 and "ndjson" in media_type:
            return RelayedStream(response, self.upstream, self.relay)
        try:
            content = await self._held(response)
        except httpx.HTTPError as exc:
            return JSONResponse({"error": f"the Ollama API at {self.upstream} broke off its answer to {path} "
                                 f"({type(exc).__name__}); retry, and check the engine's log if it repeats"},
                                status_code=502)
        finally:
            await response.aclose()
        if content is None:
            return JSONResponse({"error": f"the Ollama API at {self.upstream} sent more than "
                                 f"{_mib(self.max_response_bytes)} for {path}, far more than a real answer; the relay "
                                 "stopped reading and closed the connection: check what answers at that address"},
                                status_code=502)
        return Response(content, status_code=response.status_code, headers=passed, media_type=media_type)

    async def _held(self, response: httpx.Response) -> bytes | None:
        """A whole upstream answer, or None as soon as it grows over the limit."""
        parts, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                return None
            parts.append(chunk)
        return b"".join(parts)
