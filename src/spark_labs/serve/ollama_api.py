"""Ollama-compatible routes: /api/chat and /api/generate (NDJSON stream or one object), /api/tags,
/api/version — so Ollama clients and UIs work with any engine behind the gateway.

Durations in the final object are nanoseconds, as Ollama sends them: ``load_duration`` is the time spent
queued for a slot (the gateway loads no model), ``prompt_eval_duration`` the rest of the time to the first
piece, ``eval_duration`` from the first piece to the end. ``prompt_eval_count`` is left out when the upstream did not
count the prompt (llama-cpp-python sends no usage in a stream): Ollama itself omits zero counts, and a client
reading "0 prompt tokens" would compute a wrong prefill speed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..engines.registry import OLLAMA_API
from .errors import GatewayError
from .generation import Generation, GenerationStream, LastChunk, answer
from .schemas import OllamaChatRequest, OllamaGenerateRequest

router = APIRouter()
OLLAMA_VERSION = "0.12.0"  # the Ollama API level these routes follow (reported by /api/version)


@router.post("/api/chat", tags=[OLLAMA_API])
async def chat(body: OllamaChatRequest, request: Request):
    return await _respond(request, body, chat=True)


@router.post("/api/generate", tags=[OLLAMA_API])
async def generate(body: OllamaGenerateRequest, request: Request):
    if not body.prompt:  # Ollama's "load the model" call: nothing to generate
        request.app.state.gateway.backend.check_model(body.model)
        return {"model": body.model, "created_at": _now(), "response": "", "done": True, "done_reason": "load"}
    return await _respond(request, body, chat=False)


@router.get("/api/tags", tags=[OLLAMA_API])
async def tags(request: Request) -> dict:
    names = request.app.state.gateway.backend.models()
    return {"models": [{"name": n, "model": n, "modified_at": _now(), "size": 0, "digest": "",
                        "details": {"format": "", "family": "", "parameter_size": "", "quantization_level": ""}}
                       for n in names]}


@router.get("/api/version", tags=[OLLAMA_API])
async def version() -> dict:
    return {"version": OLLAMA_VERSION}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def _respond(request: Request, body: OllamaChatRequest | OllamaGenerateRequest, chat: bool):
    generation, text = await answer(request, body.to_generation(request.app.state.gateway.settings), body.stream)
    if text is None:
        return GenerationStream(_ndjson(generation, body.model, chat), generation, "application/x-ndjson")
    return JSONResponse(_final(generation, body.model, chat, text))


def _piece(model: str, chat: bool, text: str) -> dict:
    body = {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
    return {"model": model, "created_at": _now(), **body, "done": False}


def _final(generation: Generation, model: str, chat: bool, text: str = "") -> dict:
    usage, info = generation.outcome.usage, generation.info
    total = generation.elapsed_s
    ttft = info.ttft_s if info.ttft_s is not None else total
    counts = {"prompt_eval_count": usage.prompt_tokens} if usage.prompt_tokens else {}
    return {**_piece(model, chat, text), "done": True,
            "done_reason": "length" if generation.outcome.finish_reason == "length" else "stop",
            "total_duration": _ns(total), "load_duration": _ns(generation.queue_s),
            **counts, "prompt_eval_duration": _ns(max(0.0, ttft - generation.queue_s)),
            "eval_count": usage.completion_tokens, "eval_duration": _ns(max(0.0, total - ttft))}


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def _ndjson(generation: Generation, model: str, chat: bool) -> AsyncIterator[bytes]:
    try:
        async for piece in generation.pieces():
            yield _line(_piece(model, chat, piece.text))
    except GatewayError as exc:  # Ollama's in-band error: one {"error": ...} line ends the stream
        yield LastChunk(_line(exc.payload(ollama=True)))
        return
    yield LastChunk(_line(_final(generation, model, chat)))

