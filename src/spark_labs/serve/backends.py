"""Where tokens come from, behind one small interface both API flavours (OpenAI, Ollama) consume.

A backend turns a :class:`GenerationRequest` into an async stream of :class:`Piece` (text plus the
tokens it carries) and fills an :class:`Outcome` (usage, finish reason, which upstream served it) as it
goes. Two implementations: :class:`TransformersBackend` here (in-process, for learners without an
engine) and :class:`~spark_labs.serve.proxy.ProxyBackend` (one or more OpenAI-compatible upstreams).

The transformers backend runs ``model.generate`` in a worker thread (it blocks) and hands decoded text to
the event loop through a ``TextIteratorStreamer``; a semaphore bounds how many generations run at once so
a burst queues instead of thrashing a CPU. Closing the stream (client disconnect) sets a stop flag that
``generate`` checks between tokens, so an abandoned request stops burning compute.
"""

from __future__ import annotations

import asyncio
import threading
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

    def __init__(self, model_path: str, served_name: str, max_concurrency: int = 1, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.served_name = served_name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16).to(self.device)
        self.model.eval()
        self._max_concurrency = max_concurrency
        # On CUDA, one generation at a time runs through the compiled static-cache decoder (lab 03): CUDA
        # graphs replace per-kernel launches, about 10x eager decode for an 8B model. It holds one cache, so
        # concurrent generations (max_concurrency > 1) keep eager generate, which batches nothing either but
        # can run side by side.
        self.decoder = None
        if self.device.startswith("cuda") and max_concurrency == 1:
            from ..variants.compiled import StaticCacheDecoder, serving_cache_len

            self.decoder = StaticCacheDecoder(self.model, serving_cache_len(self.model.config))
        self._slots: asyncio.Semaphore | None = None  # made in start(): it belongs to the server's loop
        self.waiting = 0

    # --- Backend interface
    async def start(self, metrics: GatewayMetrics) -> None:
        self._slots = asyncio.Semaphore(self._max_concurrency)

    async def aclose(self) -> None:
        return None

    def models(self) -> list[str]:
        return [self.served_name]

    def check_model(self, model: str) -> None:
        if bare_model_name(model) != self.served_name:
            raise GatewayError(404, f"model '{model}' is not served here; available: '{self.served_name}'. "
                               "Use that name (GET /v1/models lists it).", code="model_not_found")

    def readiness(self) -> tuple[bool, dict]:
        return True, {"backend": self.name, "model": self.served_name}

    async def stream(self, request: GenerationRequest, outcome: Outcome) -> AsyncIterator[Piece]:
        ids = (self.encode_chat(request.messages, request.extra.get("chat_template_kwargs"))
               if request.kind == "chat" else self.encode_text(request.prompt))
        outcome.usage.prompt_tokens = len(ids)
        outcome.upstream = "in-process"
        async for piece in self.generate(ids, request.max_tokens, request.temperature if request.temperature
                                         is not None else 1.0, request.top_p or 1.0, request.ignore_eos,
                                         outcome.usage):
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
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        if self._slots is None:  # used without start() (direct library use)
            self._slots = asyncio.Semaphore(self._max_concurrency)
        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, *args, **kwargs):
                return stop.is_set()

        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            ids = torch.tensor([input_ids], device=self.device)
            kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "max_new_tokens": max_tokens,
                          "streamer": streamer, "stopping_criteria": StoppingCriteriaList([_Stop()]),
                          "do_sample": temperature > 0, "pad_token_id": self.tokenizer.eos_token_id}
            if temperature > 0:
                kwargs.update(temperature=temperature, top_p=top_p)
            if ignore_eos:
                kwargs.update(min_new_tokens=max_tokens)
            result: dict = {}

            def run() -> None:
                try:
                    with torch.no_grad():
                        if self._fits_decoder(input_ids, max_tokens):
                            result["output"] = self._compiled_generate(
                                ids, max_tokens, streamer, stop, temperature, top_p, ignore_eos)
                        else:
                            result["output"] = self.model.generate(**kwargs)
                except BaseException as exc:  # noqa: BLE001 - surfaced to the client as a stream error
                    result["error"] = exc
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            loop = asyncio.get_running_loop()
            try:
                while True:
                    text = await loop.run_in_executor(None, _next_or_none, streamer)
                    if text is None:
                        break
                    if text:
                        # Count tokens by re-encoding what was emitted: the streamer hands out text, not ids.
                        emitted_now = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                        usage.completion_tokens += emitted_now
                        yield Piece(text, emitted_now)
            finally:
                stop.set()
                await loop.run_in_executor(None, worker.join)
            if "error" in result:
                raise GatewayError(500, f"generation failed: {result['error']}", code="generation_failed")
            usage.prompt_tokens = len(input_ids)
            usage.completion_tokens = int(result["output"].shape[1]) - len(input_ids)
        finally:
            self._slots.release()

    def _fits_decoder(self, input_ids: list[int], max_tokens: int) -> bool:
        return self.decoder is not None and len(input_ids) + max_tokens <= self.decoder.max_cache_len

    def _compiled_generate(self, ids, max_tokens: int, streamer, stop: threading.Event, temperature: float,
                           top_p: float, ignore_eos: bool):
        """The decoder's tokens fed to the same streamer ``generate`` would use; prompt + new ids, like generate."""
        import torch

        streamer.put(ids.cpu())  # a TextIteratorStreamer with skip_prompt drops its first put: the prompt
        try:
            new = self.decoder.generate(
                ids[0].tolist(), max_tokens, eos_token_id=self.tokenizer.eos_token_id,
                min_new_tokens=max_tokens if ignore_eos else 0, temperature=temperature, top_p=top_p,
                on_token=lambda token: streamer.put(torch.tensor([token])), should_stop=stop.is_set)
        finally:
            streamer.end()
        return torch.tensor([ids[0].tolist() + new])


def _next_or_none(iterator):
    try:
        return next(iterator)
    except StopIteration:
        return None
