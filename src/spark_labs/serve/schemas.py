"""Request bodies with bounds, for both API flavours: a malformed or oversized request is a 4xx, never a crash.

The static bounds here are the outer limits any deployment accepts; the settings (max_tokens_limit,
max_messages) tighten them per gateway in :func:`to_generation`. Types are strict (``"max_tokens": "4"`` is
a 422, not 4): a client that sends strings for numbers has a bug worth hearing about.

Every sampling field the proxy forwards is declared here with its type and range, so a value an engine
would reject (``"top_k": -5``) is refused by the gateway with a 422 naming the field, instead of reaching
the engine at all. Unknown fields are accepted and not forwarded.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .backends import GenerationRequest
from .errors import GatewayError
from .settings import GatewaySettings

MAX_TOKENS_LIMIT = 131_072
# Sampling fields beyond the common ones, forwarded to the engine as given (vLLM and llama.cpp know them all).
_FORWARDED_EXTRA = ("presence_penalty", "frequency_penalty", "repetition_penalty", "top_k", "min_p", "user",
                    "logit_bias", "min_tokens")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True)


class TextPart(_Strict):
    type: Literal["text"] = "text"
    text: str = Field(max_length=400_000)


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Annotated[str, Field(max_length=400_000)] | Annotated[list[TextPart], Field(min_length=1, max_length=1024)]
    tool_call_id: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def _tool_messages_answer_a_call(self):
        # As in OpenAI's API; engines' chat templates fail (HTTP 500) on a tool message without one.
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs the tool_call_id of the call it answers")
        return self

    def flat(self) -> dict:
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class StreamOptions(_Strict):
    include_usage: bool = False


class _GenerationParams(_Strict):
    model_config = ConfigDict(strict=True, extra="allow")

    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=1, description="only n=1 is supported")
    stop: str | list[str] | None = Field(default=None, max_length=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False  # vLLM's extension: keep generating to exactly max_tokens
    seed: int | None = None
    # forwarded as given (_FORWARDED_EXTRA), with the ranges OpenAI's API and the engines accept
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=2.0)
    top_k: int | None = Field(default=None, ge=0, description="0: no top-k cut (llama.cpp refuses negatives)")
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    user: str | None = Field(default=None, max_length=256)
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = Field(default=None, max_length=1024)
    min_tokens: int | None = Field(default=None, ge=0, le=MAX_TOKENS_LIMIT)

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, value: dict | None) -> dict | None:
        bad = [k for k in (value or {}) if not k.isdigit()]
        if bad:
            raise ValueError(f"logit_bias keys are token ids (digits as strings, e.g. \"50256\"), not {bad[0]!r}")
        return value

    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def _common(self, settings: GatewaySettings) -> dict:
        asked = self.max_completion_tokens or self.max_tokens
        max_tokens = bounded_max_tokens(asked, settings)
        if self.min_tokens is not None and self.min_tokens > max_tokens:
            raise GatewayError(422, f"min_tokens={self.min_tokens} is above max_tokens={max_tokens}; ask for at "
                               "most as many tokens as the maximum", code="invalid_request")
        extra = {k: getattr(self, k) for k in _FORWARDED_EXTRA if getattr(self, k) is not None}
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return {"model": self.model, "max_tokens": max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                    "stop": stop, "seed": self.seed, "ignore_eos": self.ignore_eos, "extra": extra}


TemplateOptions = dict[str, bool | int | float | str]  # e.g. {"enable_thinking": false} for Qwen3's template


class ChatCompletionRequest(_GenerationParams):
    messages: list[ChatMessage] = Field(min_length=1, max_length=4096)
    # vLLM's and SGLang's extension: variables for the chat template. Forwarded by the proxy, applied by the
    # transformers backend; without it a Qwen3 model thinks although the client asked it not to.
    chat_template_kwargs: TemplateOptions | None = Field(default=None, max_length=16)

    def to_generation(self, settings: GatewaySettings) -> GenerationRequest:
        check_messages(len(self.messages), settings)
        request = GenerationRequest(kind="chat", messages=[m.flat() for m in self.messages], **self._common(settings))
        return with_template_options(request, self.chat_template_kwargs)


def with_template_options(request: GenerationRequest, options: TemplateOptions | None) -> GenerationRequest:
    if options:
        request.extra["chat_template_kwargs"] = dict(options)
    return request


class CompletionRequest(_GenerationParams):
    # min_length: an empty prompt gives the model nothing to continue (llama.cpp answers it with a 500).
    prompt: str = Field(min_length=1, max_length=1_000_000)

    def to_generation(self, settings: GatewaySettings) -> GenerationRequest:
        return GenerationRequest(kind="completion", prompt=self.prompt, **self._common(settings))


def bounded_max_tokens(asked: int | None, settings: GatewaySettings) -> int:
    if asked is None:
        return min(settings.default_max_tokens, settings.max_tokens_limit)
    if asked > settings.max_tokens_limit:
        raise GatewayError(422, f"max_tokens={asked} is above this gateway's limit of {settings.max_tokens_limit}; "
                           "ask for fewer tokens", code="max_tokens_too_large")
    return asked


def check_messages(count: int, settings: GatewaySettings) -> None:
    if count > settings.max_messages:
        raise GatewayError(422, f"{count} messages is above this gateway's limit of {settings.max_messages}; "
                           "shorten the conversation", code="too_many_messages")


# --- Ollama ------------------------------------------------------------------------------------------
class OllamaOptions(_Strict):
    # Ollama has dozens of runner options; unknown ones are accepted and ignored.
    model_config = ConfigDict(strict=True, extra="allow")

    num_predict: int | None = Field(default=None, ge=-2, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: list[str] | None = Field(default=None, max_length=16)

    def sampling(self, settings: GatewaySettings) -> dict:
        # Ollama: -1 = until the context fills, -2 = fill the context; both mean "the gateway's default" here.
        asked = self.num_predict if self.num_predict and self.num_predict > 0 else None
        return {"max_tokens": bounded_max_tokens(asked, settings), "temperature": self.temperature,
                    "top_p": self.top_p, "seed": self.seed, "stop": self.stop}


class OllamaMessage(_Strict):
    model_config = ConfigDict(extra="allow")  # images, tool_calls, thinking: accepted, not used

    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(default="", max_length=400_000)
    tool_name: str | None = Field(default=None, max_length=256)

    def openai(self) -> dict:
        message = {"role": self.role, "content": self.content}
        if self.role == "tool":  # Ollama names the tool; OpenAI engines require an id for the call answered
            message["tool_call_id"] = self.tool_name or "call_0"
        return message


class _OllamaParams(_Strict):
    model_config = ConfigDict(strict=True, extra="allow")  # format, keep_alive, tools...: accepted, not used

    model: str = Field(min_length=1, max_length=256)
    stream: bool = True  # Ollama streams unless told otherwise
    options: OllamaOptions | None = None
    # true/false switches a thinking model's reasoning on/off (the template's enable_thinking, as Ollama does);
    # the effort levels Ollama accepts for gpt-oss ("low", "medium", "high") are accepted and not used.
    think: bool | Literal["low", "medium", "high"] | None = None

    def _sampling(self, settings: GatewaySettings) -> dict:
        return (self.options or OllamaOptions()).sampling(settings)

    def _chat(self, messages: list[dict], settings: GatewaySettings) -> GenerationRequest:
        request = GenerationRequest(kind="chat", model=self.model, messages=messages, **self._sampling(settings))
        thinking = {"enable_thinking": self.think} if isinstance(self.think, bool) else None
        return with_template_options(request, thinking)


class OllamaChatRequest(_OllamaParams):
    messages: list[OllamaMessage] = Field(default_factory=list, max_length=4096)

    def to_generation(self, settings: GatewaySettings) -> GenerationRequest:
        if not self.messages:  # nothing to answer: an engine would generate from an empty conversation
            raise GatewayError(400, "messages is empty: /api/chat needs at least one message, e.g. "
                               "[{\"role\": \"user\", \"content\": \"hi\"}]", code="empty_messages")
        check_messages(len(self.messages), settings)
        return self._chat([m.openai() for m in self.messages], settings)


class OllamaGenerateRequest(_OllamaParams):
    prompt: str = Field(default="", max_length=1_000_000)
    system: str | None = Field(default=None, max_length=400_000)
    raw: bool = False

    def to_generation(self, settings: GatewaySettings) -> GenerationRequest:
        # Like Ollama: the prompt goes through the chat template unless raw=True.
        if self.raw:
            return GenerationRequest(kind="completion", model=self.model, prompt=self.prompt,
                                     **self._sampling(settings))
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + \
            [{"role": "user", "content": self.prompt}]
        return self._chat(messages, settings)
