"""Relay the page's Ollama API calls to the real API (Ollama, or the gateway's Ollama routes).

The page talks only to its own origin, so it needs no CORS on the engine (no ``OLLAMA_ORIGINS``) and its
Content-Security-Policy can stay ``connect-src 'self'``. Only the three routes the page uses pass; the
``Authorization`` header is forwarded untouched, and so are the engine's status, error body and
``Retry-After``. A stream is relayed chunk by chunk; when the browser goes away (the Stop button aborts
the fetch) the upstream connection is closed at once, which is what makes the engine stop generating.
"""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..serve.generation import GenerationStream

ROUTES = {("GET", "/api/tags"), ("GET", "/api/version"), ("POST", "/api/chat")}
_FORWARDED_REQUEST = ("authorization", "content-type", "x-request-id")
_FORWARDED_RESPONSE = ("retry-after", "x-request-id")


class _UpstreamResponse:
    """Gives GenerationStream the ``close()`` it calls when the stream ends or the browser leaves."""

    def __init__(self, response: httpx.Response):
        self.response = response

    async def close(self) -> None:
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
        return GenerationStream(response.aiter_raw(), _UpstreamResponse(response), media_type)
