"""Where tokens come from, behind one small interface both API flavours (OpenAI, Ollama) consume.

A backend turns a :class:`GenerationRequest` into an async stream of :class:`Piece` (text plus the
tokens it carries) and fills an :class:`Outcome` (usage, finish reason, which upstream served it) as it
goes. Two implementations: :class:`TransformersBackend` here (in-process, for learners without an
engine) and :class:`~spark_labs.serve.proxy.ProxyBackend` (one or more OpenAI-compatible upstreams).

The transformers backend batches: ``max_concurrency`` slots (rows) of one static KV cache, filled by a
scheduler loop on its own thread (:mod:`spark_labs.serve.slots`) that prefills each new request into a free
slot and then runs one decode step for all slots at once (:class:`~spark_labs.variants.batched.BatchedDecoder`,
compiled and replayed as a CUDA graph on a GPU). Each slot's tokens go to its request's stream, decoded to
text here; closing the stream (client disconnect) frees the slot at the next step. The decoder is built
and warmed up (compiled, one short generation) on that thread after start, and ``/ready`` says ready only
once that is done; requests that arrive earlier wait for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ..engines.registry import TRANSFORMERS
from .errors import GatewayError

if TYPE_CHECKING:
    from .metrics import GatewayMetrics


@dataclass
class Piece:
    text: str
    tokens: int  # new tokens this piece carries


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


@dataclass
class GenerationRequest:
    """What both API flavours ask of a backend, already validated and bounded."""

    kind: Literal["chat", "completion"]
    model: str
    max_tokens: int
    messages: list[dict] | None = None
    prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    ignore_eos: bool = False
    extra: dict = field(default_factory=dict)  # other OpenAI sampling fields, forwarded by the proxy


@dataclass
class Outcome:
    """Filled in by the backend while it streams; read by the API layer once the stream ends."""

    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    upstream: str | None = None


class Backend(Protocol):
    name: str

    async def start(self, metrics: GatewayMetrics) -> None: ...
    async def aclose(self) -> None: ...
    def models(self) -> list[str]: ...
    def check_model(self, model: str) -> None: ...  # raises GatewayError(404) for a model not served
    def readiness(self) -> tuple[bool, dict]: ...
    def stream(self, request: GenerationRequest, outcome: Outcome) -> AsyncIterator[Piece]: ...


def bare_model_name(name: str) -> str:
    """Ollama clients say ``model:latest``; the tag means nothing to an OpenAI engine."""
    return name.removesuffix(":latest")


class TransformersBackend:
    name = TRANSFORMERS.name  # the registry's engine that starts this server with --backend transformers

    def __init__(self, model_path: str | None, served_name: str, max_concurrency: int = 4, device: str | None = None,
                 max_model_len: int | None = None, compile: bool | None = None, *, model=None, tokenizer=None):
        """``model``/``tokenizer`` (already loaded) instead of ``model_path``: a benchmark's own model.
        ``compile`` defaults to on for CUDA and off for a CPU (compiling there takes minutes on a small box)."""
        import torch

        from ..variants.compiled import serving_cache_len

        self.served_name = served_name
        if model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            tokenizer = AutoTokenizer.from_pretrained(model_path)
            model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16).to(self.device)
        else:
            self.device = str(next(model.parameters()).device)
        self.tokenizer, self.model = tokenizer, model.eval()
        self.slots = max_concurrency
        self.max_model_len = max_model_len or serving_cache_len(model.config)
        self.compile = self.device.startswith("cuda") if compile is None else compile
        eos = self.tokenizer.eos_token_id
        self.stop_ids = frozenset([eos] if isinstance(eos, int) else eos or ())
        self.decoder = None  # built on the scheduler's thread by start(): compiling takes a while
        self.scheduler = None
        self.warm_up_s: float | None = None
        self._warm_error: BaseException | None = None

    # --- Backend interface
    async def start(self, metrics: GatewayMetrics | None) -> None:
        self._start()

    def _start(self) -> None:
        from .slots import SlotScheduler

        if self.scheduler is not None:
            return
        self.scheduler = SlotScheduler(None, self.slots)
        self.scheduler.start(before=self._warm_up)

    def _warm_up(self) -> None:
        """On the scheduler's thread: build the batched decoder, compile it and run one short generation."""
        from ..variants.batched import BatchedDecoder

        try:
            start = time.perf_counter()
            self.decoder = BatchedDecoder(self.model, self.slots, self.max_model_len, compile=self.compile)
            self.decoder.warm_up()
            self.scheduler.decoder = self.decoder
            self.warm_up_s = time.perf_counter() - start
        except BaseException as exc:
            self._warm_error = exc
            raise

    async def aclose(self) -> None:
        if self.scheduler is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.scheduler.close)

    def models(self) -> list[str]:
        return [self.served_name]

    def check_model(self, model: str) -> None:
        if bare_model_name(model) != self.served_name:
            raise GatewayError(404, f"model '{model}' is not served here; available: '{self.served_name}'. "
                               "Use that name (GET /v1/models lists it).", code="model_not_found")

    def readiness(self) -> tuple[bool, dict]:
        detail = {"backend": self.name, "model": self.served_name, "slots": self.slots,
                  "max_model_len": self.max_model_len, "compiled": self.compile}
        if self._warm_error is not None:
            return False, {**detail, "reason": f"warm-up failed ({type(self._warm_error).__name__}); see the log"}
        if self.warm_up_s is None:
            what = "compiling the decode step and running one generation" if self.compile else "one short generation"
            return False, {**detail, "reason": f"warming up: {what}"}
        busy = self.scheduler.busy
        return True, {**detail, "warm_up_s": round(self.warm_up_s, 2), "slots_busy": busy,
                      "waiting": len(self.scheduler.waiting)}

    async def stream(self, request: GenerationRequest, outcome: Outcome) -> AsyncIterator[Piece]:
        ids = (self.encode_chat(request.messages, request.extra.get("chat_template_kwargs"))
               if request.kind == "chat" else self.encode_text(request.prompt))
        outcome.usage.prompt_tokens = len(ids)
        outcome.upstream = "in-process"
        temperature = request.temperature if request.temperature is not None else 1.0
        async for piece in self.generate(ids, request.max_tokens, temperature, request.top_p or 1.0,
                                         request.ignore_eos, outcome.usage):
            yield piece
        outcome.finish_reason = "length" if outcome.usage.completion_tokens >= request.max_tokens else "stop"

    # --- transformers specifics
    def encode_chat(self, messages: list[dict], template_options: dict | None = None) -> list[int]:
        # template_options: the request's chat_template_kwargs (e.g. enable_thinking=False), as vLLM applies them
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True, **(template_options or {}))
        return list(encoded["input_ids"])

    def encode_text(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt)["input_ids"]

    async def generate(self, input_ids: list[int], max_tokens: int, temperature: float, top_p: float,
                       ignore_eos: bool, usage: Usage) -> AsyncIterator[Piece]:
        """The request's text pieces as its slot makes tokens; it waits for a slot (and for the warm-up)."""
        from .slots import SlotRequest

        if len(input_ids) + max_tokens > self.max_model_len:
            raise GatewayError(400, f"this request needs {len(input_ids) + max_tokens} positions ({len(input_ids)} "
                               f"prompt + {max_tokens} max_tokens) but the server holds {self.max_model_len} per "
                               "request (--max-model-len); ask for fewer tokens or a shorter prompt",
                               code="context_length_exceeded")
        self._start()
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue = asyncio.Queue()
        slot = SlotRequest(list(input_ids), max_tokens, lambda token, error: loop.call_soon_threadsafe(
            tokens.put_nowait, (token, error)), temperature=temperature, top_p=top_p, stop_ids=self.stop_ids,
            min_tokens=max_tokens if ignore_eos else 0)
        text = TextDelta(self.tokenizer)
        self.scheduler.submit(slot)
        try:
            carried = 0  # tokens whose text is not out yet (a partial character, a special token)
            while True:
                token, error = await tokens.get()
                if error is not None:
                    raise GatewayError(500, f"generation failed ({type(error).__name__}: {error})",
                                       code="generation_failed")
                if token is None:
                    break
                usage.completion_tokens += 1
                carried += 1
                if piece := text.add(token):
                    yield Piece(piece, carried)
                    carried = 0
        finally:
            self.scheduler.cancel(slot)  # a client that left frees its slot; a finished request is unaffected
        usage.prompt_tokens = len(input_ids)


class TextDelta:
    """Token ids in, the new text they complete out: decoding a few tokens back each time, so that a
    character split over several tokens comes out whole once its last token arrives."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.start = self.read = 0  # decode from `start`; text up to `read` is already out

    def add(self, token: int) -> str:
        self.ids.append(token)
        before = self._decode(self.ids[self.start:self.read])
        after = self._decode(self.ids[self.start:])
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""
        self.start, self.read = self.read, len(self.ids)
        return after[len(before):]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True) if ids else ""
