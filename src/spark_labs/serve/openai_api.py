"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions (SSE or JSON) and /v1/models."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .errors import GatewayError
from .generation import Generation, GenerationStream, collect
from .schemas import ChatCompletionRequest, CompletionRequest

router = APIRouter()


@router.post("/v1/chat/completions", tags=["openai"])
async def chat_completions(body: ChatCompletionRequest, request: Request):
    return await _respond(request, body, chat=True)


@router.post("/v1/completions", tags=["openai"])
async def completions(body: CompletionRequest, request: Request):
    return await _respond(request, body, chat=False)


@router.get("/v1/models", tags=["openai"])
async def models(request: Request) -> dict:
    backend = request.app.state.gateway.backend
    return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "spark-labs"}
                                       for name in backend.models()]}


async def _respond(request: Request, body: ChatCompletionRequest | CompletionRequest, chat: bool):
    gateway = request.app.state.gateway
    generation = await gateway.generate(request.state.info, body.to_generation(gateway.settings))
    frame = _Framer(f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}", body.model, chat)
    if body.stream:
        return GenerationStream(_sse(generation, frame, body.include_usage()), generation, "text/event-stream")
    text = await collect(generation)
    return JSONResponse(frame.whole(text, generation))


class _Framer:
    """Builds OpenAI's response objects: the only place that knows their shape."""

    def __init__(self, response_id: str, model: str, chat: bool):
        self.id, self.model, self.chat, self.created = response_id, model, chat, int(time.time())

    def _obj(self, kind: str, choices: list, **extra) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices,
                **extra}

    def chunk(self, text: str | None = None, finish: str | None = None, role: bool = False) -> bytes:
        if self.chat:
            delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text else {})
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish}
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return b"data: " + json.dumps(self._obj(kind, [choice])).encode() + b"\n\n"

    def usage_chunk(self, generation: Generation) -> bytes:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        payload = self._obj(kind, [], usage=generation.outcome.usage.as_dict())
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    def whole(self, text: str, generation: Generation) -> dict:
        finish = _finish(generation)
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish}
        return self._obj("chat.completion" if self.chat else "text_completion", [choice],
                         usage=generation.outcome.usage.as_dict())


def _finish(generation: Generation) -> str:
    reason = generation.outcome.finish_reason
    return reason if reason in ("stop", "length", "tool_calls", "content_filter") else "stop"


async def _sse(generation: Generation, frame: _Framer, include_usage: bool) -> AsyncIterator[bytes]:
    if frame.chat:
        yield frame.chunk(role=True)
    try:
        async for piece in generation.pieces():
            yield frame.chunk(piece.text)
    except GatewayError as exc:  # after the 200 headers: tell the client in-band, then end the stream
        yield exc.sse_event()
        return
    yield frame.chunk(finish=_finish(generation))
    if include_usage:
        yield frame.usage_chunk(generation)
    yield b"data: [DONE]\n\n"
