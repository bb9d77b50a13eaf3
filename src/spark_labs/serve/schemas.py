"""OpenAI request bodies with bounds: a malformed or oversized request is a 422, never a crash."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

MAX_TOKENS_LIMIT = 4096


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(max_length=100_000)


class StreamOptions(BaseModel):
    include_usage: bool = False


class _GenerationParams(BaseModel):
    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False  # vLLM's extension: keep generating to exactly max_tokens
    seed: int | None = None


class ChatCompletionRequest(_GenerationParams):
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)


class CompletionRequest(_GenerationParams):
    prompt: str = Field(max_length=400_000)
