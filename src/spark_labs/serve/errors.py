"""Errors the gateway returns, in the shape clients already parse.

OpenAI routes answer ``{"error": {"message", "type", "code"}}``; the official ``openai`` client turns it into
``openai.RateLimitError`` etc. with our message. Ollama routes answer Ollama's own ``{"error": "message"}``,
which the ``ollama`` client raises as ``ResponseError`` with that text. Messages say what to do next.
"""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse

# HTTP status -> OpenAI error type, as OpenAI's API uses them; other statuses by class (see error_type).
_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 408: "timeout",
          429: "rate_limit_exceeded", 499: "client_closed_request", 502: "upstream_error",
          503: "service_unavailable", 504: "timeout"}


def error_type(status: int) -> str:
    """The OpenAI error type of a status: a 4xx not named above is the client's request (405, 413, 422...),
    only a 5xx is the server's fault."""
    return _TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "server_error")


class GatewayError(Exception):
    """An error with an HTTP status and a message for the client; raised anywhere, rendered once."""

    def __init__(self, status: int, message: str, code: str | None = None, retry_after: float | None = None,
                 upstream: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or error_type(status)
        self.retry_after = retry_after
        self.upstream = upstream

    def payload(self, ollama: bool = False) -> dict:
        if ollama:
            return {"error": self.message}
        return {"error": {"message": self.message, "type": error_type(self.status), "code": self.code}}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, int(-(-self.retry_after // 1))))}  # whole seconds, rounded up

    def response(self, ollama: bool = False) -> JSONResponse:
        return JSONResponse(self.payload(ollama), status_code=self.status, headers=self.headers())

    def sse_event(self) -> bytes:
        """The in-band error for a stream that already sent its 200 headers."""
        return f"data: {json.dumps(self.payload())}\n\n".encode()


def is_ollama_route(path: str) -> bool:
    return path.startswith("/api/")
