"""The FastAPI app: OpenAI-compatible chat/completions (streaming SSE and plain JSON), models, health,
readiness and Prometheus metrics, over a backend that yields text pieces."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .backends import TransformersBackend, Usage
from .schemas import ChatCompletionRequest, CompletionRequest

DEFAULT_MAX_TOKENS = 256


class Metrics:
    """One registry per app, so several apps (tests, notebooks) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("spark_labs_requests_total", "Requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.in_flight = Gauge("spark_labs_requests_in_flight", "Requests being served", registry=self.registry)
        self.queued = Gauge("spark_labs_queue_length", "Requests waiting for a generation slot",
                            registry=self.registry)
        self.ttft = Histogram("spark_labs_time_to_first_token_seconds", "Time to first token",
                              registry=self.registry,
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.e2e = Histogram("spark_labs_e2e_request_latency_seconds", "Request latency", registry=self.registry,
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.prompt_tokens = Counter("spark_labs_prompt_tokens_total", "Prompt tokens", registry=self.registry)
        self.completion_tokens = Counter("spark_labs_completion_tokens_total", "Completion tokens",
                                         registry=self.registry)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_app(backend: TransformersBackend) -> FastAPI:
    app = FastAPI(title="spark-labs server", version="0.1.0")
    metrics = Metrics()
    app.state.metrics = metrics
    app.state.backend = backend

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.requests.labels(request.url.path, "422").inc()
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"invalid request: {where}: {first.get('msg', 'malformed body')}")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> dict:
        return {"status": "ready", "model": backend.served_name}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": backend.served_name, "object": "model", "owned_by": "spark-labs"}]}

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.queued.set(backend.waiting)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def _check_model(name: str) -> JSONResponse | None:
        if name != backend.served_name:
            return _error(404, f"model '{name}' is not served here; available: '{backend.served_name}'",
                          "model_not_found")
        return None

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest, request: Request):
        if (problem := _check_model(body.model)) is not None:
            metrics.requests.labels(request.url.path, "404").inc()
            return problem
        ids = backend.encode_chat([m.model_dump() for m in body.messages])
        return await _respond(body, ids, request.url.path, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        if (problem := _check_model(body.model)) is not None:
            metrics.requests.labels(request.url.path, "404").inc()
            return problem
        return await _respond(body, backend.encode_text(body.prompt), request.url.path, chat=False)

    async def _respond(body, ids: list[int], route: str, chat: bool):
        request_id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        usage = Usage(len(ids), 0)
        pieces = backend.generate(ids, body.max_tokens or DEFAULT_MAX_TOKENS, body.temperature, body.top_p,
                                  body.ignore_eos, usage)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(_sse(pieces, usage, request_id, body, route, chat, include_usage),
                                     media_type="text/event-stream", headers={"X-Request-ID": request_id})
        start = time.perf_counter()
        metrics.in_flight.inc()
        try:
            text = "".join([piece.text async for piece in pieces])
        finally:
            metrics.in_flight.dec()
        _record(route, "200", start, usage)
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": _finish(usage, body)}
                  if chat else {"index": 0, "text": text, "finish_reason": _finish(usage, body)})
        return JSONResponse({"id": request_id, "object": "chat.completion" if chat else "text_completion",
                             "created": int(time.time()), "model": body.model, "choices": [choice],
                             "usage": usage.as_dict()}, headers={"X-Request-ID": request_id})

    def _finish(usage: Usage, body) -> str:
        return "length" if usage.completion_tokens >= (body.max_tokens or DEFAULT_MAX_TOKENS) else "stop"

    def _record(route: str, status: str, start: float, usage: Usage) -> None:
        metrics.requests.labels(route, status).inc()
        metrics.e2e.observe(time.perf_counter() - start)
        metrics.prompt_tokens.inc(usage.prompt_tokens)
        metrics.completion_tokens.inc(usage.completion_tokens)

    async def _sse(pieces: AsyncIterator, usage: Usage, request_id: str, body, route: str, chat: bool,
                   include_usage: bool) -> AsyncIterator[bytes]:
        start = time.perf_counter()
        first = True
        created = int(time.time())
        kind = "chat.completion.chunk" if chat else "text_completion"

        def event(choices: list, **extra) -> bytes:
            payload = {"id": request_id, "object": kind, "created": created, "model": body.model, "choices": choices,
                       **extra}
            return f"data: {json.dumps(payload)}\n\n".encode()

        metrics.in_flight.inc()
        status = "200"
        try:
            if chat:
                yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            async for piece in pieces:
                if first:
                    metrics.ttft.observe(time.perf_counter() - start)
                    first = False
                delta = {"index": 0, "delta": {"content": piece.text}, "finish_reason": None} if chat else \
                    {"index": 0, "text": piece.text, "finish_reason": None}
                yield event([delta])
            finish = _finish(usage, body)
            last = {"index": 0, "delta": {}, "finish_reason": finish} if chat else \
                {"index": 0, "text": "", "finish_reason": finish}
            yield event([last])
            if include_usage:
                yield event([], usage=usage.as_dict())
            yield b"data: [DONE]\n\n"
        except RuntimeError as exc:  # generation failed mid-stream: tell the client in-band
            status = "500"
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error'}})}\n\n".encode()
        finally:
            metrics.in_flight.dec()
            _record(route, status, start, usage)

    return app
