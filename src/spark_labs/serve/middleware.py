"""The gateway's front door, as one pure-ASGI middleware (BaseHTTPMiddleware would buffer and break the
cancellation of streams). In order, for every HTTP request:

1. request id: the client's ``X-Request-ID`` (if sane) or a new one; echoed in the response, set in the
   logging context so every line about this request carries it;
2. header lines above ``max_header_count`` (431; their total size is bounded below HTTP, by
   :mod:`spark_labs.serve.connections`) and body size: ``Content-Length`` above the limit is refused before
   reading; a body without one (chunked) is counted while it is read and refused as soon as it passes the
   limit (413);
3. API key (401), the wrong-key throttle per client address and the key's rate limit (429) for every path
   that is not on the gateway's public list (``gateway.public``), whatever the method, so routes added to
   the app later are protected by default (CORS preflights are answered before this, by the CORS
   middleware, when CORS is on);
4. the request itself: a ``POST`` to one of the four generation routes goes straight to its endpoint
   (:mod:`spark_labs.serve.hot_routes`), everything else through the app's router;
5. after the response: the request counter and one structured log line.

WebSocket connections (and any other non-HTTP scope but the lifespan) go through the same key, throttle
and rate limit before the app sees them; a refused handshake gets the HTTP error (401/429) as its answer.
The client address is the connection's own unless the server believes ``X-Forwarded-For`` from a trusted
proxy (``trusted_proxies``, applied by the server before this middleware: :mod:`spark_labs.serve.runner`).
"""

from __future__ import annotations

import logging
import re
import time

from ..engines.registry import OLLAMA_API, OPENAI_API
from .connections import head_error
from .errors import GatewayError, is_ollama_route
from .generation import Gateway, RequestInfo
from .logs import log, logger_enabled, new_request_id, request_id_var

GENERATION_ROUTES = {"/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate"}
KNOWN_ROUTES = GENERATION_ROUTES | {"/v1/models", "/api/tags", "/api/version", "/health", "/ready", "/metrics",
                                    "/docs", "/openapi.json"}
QUIET_ROUTES = {"/health", "/ready", "/metrics"}  # probes and scrapes: logged at debug level only
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SCREENED_HEADERS = frozenset({b"x-request-id", b"content-length", b"authorization"})


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class GatewayMiddleware:
    def __init__(self, app, gateway: Gateway, hot_routes: dict | None = None):
        self.app = app
        self.gateway = gateway
        self.hot_routes = hot_routes or {}  # POST path -> HotRoute, called here instead of through the app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" or scope.get("path", "") in self.gateway.public:
                await self.app(scope, receive, send)
            else:
                await self._other(scope, receive, send)
            return
        headers = _screened_headers(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.match(given) else new_request_id()
        token = request_id_var.set(request_id)
        path = scope["path"]
        info = RequestInfo(request_id, path if path in KNOWN_ROUTES else "other", time.perf_counter())
        scope.setdefault("state", {})["info"] = info

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                info.status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            try:
                body = await self._screen(scope, receive, headers, info)
            except GatewayError as exc:
                info.error = exc.message
                await exc.response(ollama=is_ollama_route(path))(scope, receive, send_with_id)
                return
            hot = self.hot_routes.get(path) if scope["method"] == "POST" else None
            if hot is not None:
                await hot(scope, receive, send_with_id, body)  # the body read above, handed over as it is
            else:
                await self.app(scope, receive if body is None else _replay(body, receive), send_with_id)
        finally:
            self._finish(scope, info)
            request_id_var.reset(token)

    async def _screen(self, scope, receive, headers: dict[bytes, bytes], info: RequestInfo) -> bytes | None:
        """Refuse what must not reach the app; return the request body, read here to bound its size (None for
        a method without one)."""
        gw, path = self.gateway, scope["path"]
        if len(scope["headers"]) > gw.settings.max_header_count:
            gw.metrics.rejected.labels("header_too_large").inc()
            raise head_error(f"the request has {len(scope['headers'])} header lines; at most "
                             f"{gw.settings.max_header_count} are accepted (max_header_count)")
        limit = gw.settings.max_body_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(limit)
        if path not in gw.public:
            info.key_id = _authorize(gw, scope, _text(headers.get(b"authorization")))
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return None
        # A body dripping in byte by byte is cut off by the server's read deadline (serve.connections).
        try:
            return await _read_body(receive, limit)
        except _BodyTooLarge:
            raise self._too_large(limit) from None
        except _ClientGone:
            raise GatewayError(499, "the client closed the connection before its request body was complete",
                               code="client_closed_request") from None

    async def _other(self, scope, receive, send) -> None:
        """A WebSocket (or another non-HTTP scope) on a protected path: key, throttle and rate limit first."""
        authorization = _text(_screened_headers(scope.get("headers", ())).get(b"authorization"))
        try:
            _authorize(self.gateway, scope, authorization)
        except GatewayError as exc:
            log(logging.INFO, "connection refused", type=scope["type"], route=scope.get("path"), status=exc.status,
                error=exc.message)
            if scope["type"] != "websocket":
                return
            if "websocket.http.response" in (scope.get("extensions") or {}):
                await exc.response(ollama=is_ollama_route(scope.get("path", "")))(scope, receive, send)
            else:  # a server without the denial-response extension answers a close before accept with 403
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)

    def _too_large(self, limit: int) -> GatewayError:
        self.gateway.metrics.rejected.labels("body_too_large").inc()
        return GatewayError(413, f"request body is larger than this gateway's limit of {limit} bytes; send a "
                            "shorter prompt or conversation", code="request_too_large")

    def _finish(self, scope, info: RequestInfo) -> None:
        declared = getattr(scope.get("route"), "path", None)  # routes added to the app (lab 05) by their path
        if info.route == "other" and declared:
            info.route = declared
        status = info.status_override or info.status or 500
        self.gateway.metrics.requests.labels(info.route, str(status)).inc()
        level = logging.DEBUG if info.route in QUIET_ROUTES and status < 400 else logging.INFO
        if not logger_enabled(level):  # assembling a line nobody will see cost as much as screening the request
            return  # (the profile of a gateway at --log-level warning: _finish and _screen took about the same)
        e2e = info.e2e_s if info.e2e_s is not None else time.perf_counter() - info.start
        fields = {"method": scope["method"], "route": scope["path"], "status": status, "e2e_ms": round(e2e * 1e3, 2),
                  "key_id": info.key_id}
        if info.ttft_s is not None:
            fields["ttft_ms"] = round(info.ttft_s * 1e3, 2)
        if info.completion_tokens is not None:
            fields.update(prompt_tokens=info.prompt_tokens, completion_tokens=info.completion_tokens)
        if info.upstream:
            fields["upstream"] = info.upstream
        if info.error:
            fields["error"] = info.error
        log(level, "request", **fields)


def _screened_headers(raw) -> dict[bytes, bytes]:
    """The request headers this middleware reads, undecoded: decoding every header of every request into a
    new dict was work for headers nobody here reads (the app parses its own). Names are lower-cased by the
    ASGI server (uvicorn does it; Starlette relies on it too)."""
    return {name: value for name, value in raw if name in SCREENED_HEADERS}


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _authorize(gateway: Gateway, scope, authorization: str | None) -> str:
    client = (scope.get("client") or ("unknown", 0))[0]
    path = scope.get("path", "")
    return gateway.authorize(authorization, client, OLLAMA_API if is_ollama_route(path) else OPENAI_API)


async def _read_body(receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone  # half a body is no request: never hand it to the app
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive):
    """Hand the buffered body to the app once, then pass through (the app waits on it for disconnects)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
