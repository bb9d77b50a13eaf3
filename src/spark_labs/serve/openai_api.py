"""OpenAI-compatible routes: /v1/chat/completions, /v1/completions (SSE or JSON) and /v1/models."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .errors import GatewayError
from .generation import Generation, GenerationStream, LastChunk, answer
from .logs import new_request_id
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
    generation, text = await answer(request, body.to_generation(request.app.state.gateway.settings), body.stream)
    frame = _Framer(f"{'chatcmpl' if chat else 'cmpl'}-{new_request_id()}", body.model, chat)
    if text is None:
        return GenerationStream(_sse(generation, frame, body.include_usage()), generation, "text/event-stream")
    return JSONResponse(frame.whole(text, generation))


class _Framer:
    """Builds OpenAI's response objects: the only place that knows their shape.

    A text chunk is the one thing built per token, so its JSON is cut once into the bytes around the text,
    and each chunk only encodes its text (a third of the cost of dumping the whole object every time).
    """

    _SLOT = "\x00text\x00"

    def __init__(self, response_id: str, model: str, chat: bool):
        self.id, self.model, self.chat, self.created = response_id, model, chat, int(time.time())
        self._kind = "chat.completion.chunk" if chat else "text_completion"
        before, after = self._event(self._choice(self._SLOT)).split(json.dumps(self._SLOT).encode())
        self._around_text = before, after

    def _obj(self, kind: str, choices: list, **extra) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices,
                **extra}

    def _event(self, choices: list, **extra) -> bytes:
        return b"data: " + json.dumps(self._obj(self._kind, choices, **extra)).encode() + b"\n\n"

    def _choice(self, text: str | None = None, finish: str | None = None, role: bool = False) -> list:
        if self.chat:
            delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text else {})
            return [{"index": 0, "delta": delta, "finish_reason": finish}]
        return [{"index": 0, "text": text or "", "finish_reason": finish}]

    def text(self, text: str) -> bytes:
        before, after = self._around_text
        return before + json.dumps(text).encode() + after

    def opening(self) -> bytes:
        """Chat streams announce the assistant role first; completions have nothing to announce."""
        return self._event(self._choice(role=True)) if self.chat else b""

    def finish(self, generation: Generation) -> bytes:
        return self._event(self._choice(finish=_finish(generation)))

    def usage(self, generation: Generation) -> bytes:
        return self._event([], usage=generation.outcome.usage.as_dict())

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
    # Fewer, fuller writes: the role announcement rides with the first text, and the finish, usage and
    # [DONE] events end the response in one write (see LastChunk).
    opening = frame.opening()
    try:
        async for piece in generation.pieces():
            yield opening + frame.text(piece.text)
            opening = b""
    except GatewayError as exc:  # after the 200 headers: tell the client in-band, then end the stream
        yield LastChunk(opening + exc.sse_event())
        return
    tail = opening + frame.finish(generation) + (frame.usage(generation) if include_usage else b"")
    yield LastChunk(tail + b"data: [DONE]\n\n")
