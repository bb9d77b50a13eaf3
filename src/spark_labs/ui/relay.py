"""Relay the page's Ollama API calls to the real API (Ollama, or the gateway's Ollama routes).

The page talks only to its own origin, so it needs no CORS on the engine (no ``OLLAMA_ORIGINS``) and its
Content-Security-Policy can stay ``connect-src 'self'``. Only the three routes the page uses pass; the
``Authorization`` header is forwarded untouched, and so are the engine's status, error body and
``Retry-After``. A stream is relayed chunk by chunk; when the browser goes away (the Stop button aborts
the fetch) the upstream connection is closed at once, which is what makes the engine stop generating.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ROUTES = {("GET", "/api/tags"), ("GET", "/api/version"), ("POST", "/api/chat")}
_FORWARDED_REQUEST = ("authorization", "content-type", "x-request-id")
_FORWARDED_RESPONSE = ("retry-after", "x-request-id")


class RelayedStream:
    """An ASGI response copying an upstream NDJSON stream chunk by chunk.

    Two tasks race: the copy, and a watcher for the browser's ``http.disconnect``. Whichever ends first
    ends the other, and the upstream response is closed either way, so a Stop in the page closes the
    connection to the engine at once. If the upstream breaks mid-answer, the stream ends with Ollama's
    in-band ``{"error": ...}`` line (the 200 status is already sent) naming what broke.
    """

    def __init__(self, response: httpx.Response, upstream: str):
        self.response, self.upstream = response, upstream

    async def __call__(self, scope, receive, send) -> None:
        async def copy() -> None:
            headers = [(b"content-type", b"application/x-ndjson"), (b"cache-control", b"no-cache")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            try:
                async for chunk in self.response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                error = {"error": f"the connection to the Ollama API at {self.upstream} broke mid-answer "
                                  f"({type(exc).__name__}); the answer is incomplete"}
                await send({"type": "http.response.body", "body": json.dumps(error).encode() + b"\n",
                            "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def browser_leaves() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        copying, leaving = asyncio.ensure_future(copy()), asyncio.ensure_future(browser_leaves())
        try:
            await asyncio.wait({copying, leaving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            copying.cancel()
            leaving.cancel()
            # collected, not raised: a write to a browser that already left is not an error
            await asyncio.gather(copying, leaving, return_exceptions=True)
            await self.response.aclose()


class OllamaRelay:
    def __init__(self, upstream: str, connect_timeout_s: float = 5.0, read_timeout_s: float = 600.0):
        self.upstream = upstream.rstrip("/")
        self._timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self._timeout)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def forward(self, request: Request) -> Response:
        path = request.url.path
        headers = {k: v for k in _FORWARDED_REQUEST if (v := request.headers.get(k))}
        outgoing = self._client.build_request(request.method, self.upstream + path, headers=headers,
                                              content=await request.body())
        try:
            response = await self._client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            return JSONResponse({"error": f"cannot reach the Ollama API at {self.upstream} "
                                 f"({type(exc).__name__}: {exc or 'no detail'}); start the engine (`ollama serve`, "
                                 "or `spark-labs serve` for the gateway) or point `spark-labs ui --ollama` at it"},
                                status_code=502)
        passed = {k: v for k in _FORWARDED_RESPONSE if (v := response.headers.get(k))}
        media_type = response.headers.get("content-type", "application/json")
        if response.status_code >= 400 or "ndjson" not in media_type:
            content = await response.aread()
            await response.aclose()
            return Response(content, status_code=response.status_code, headers=passed, media_type=media_type)
        return RelayedStream(response, self.upstream)
