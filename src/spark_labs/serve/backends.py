"""Where tokens come from: an in-process transformers model that really streams token by token.

Generation runs in a worker thread (``model.generate`` blocks) and hands decoded text to the event
loop through a ``TextIteratorStreamer``; a semaphore bounds how many generations run at once so a
burst of requests queues instead of thrashing a CPU. Cancelling the consumer (client disconnect) sets
a stop flag that ``generate`` checks between tokens, so an abandoned request stops burning compute.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class Piece:
    text: str
    tokens: int  # new tokens this piece carries


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def as_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


class TransformersBackend:
    def __init__(self, model_path: str, served_name: str, max_concurrency: int = 1, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.served_name = served_name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16).to(self.device)
        self.model.eval()
        self._slots = asyncio.Semaphore(max_concurrency)
        self.waiting = 0

    def encode_chat(self, messages: list[dict]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)
        return list(encoded["input_ids"])

    def encode_text(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt)["input_ids"]

    async def generate(self, input_ids: list[int], max_tokens: int, temperature: float, top_p: float,
                       ignore_eos: bool, usage: Usage) -> AsyncIterator[Piece]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

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
            kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                          streamer=streamer, stopping_criteria=StoppingCriteriaList([_Stop()]),
                          do_sample=temperature > 0, pad_token_id=self.tokenizer.eos_token_id)
            if temperature > 0:
                kwargs.update(temperature=temperature, top_p=top_p)
            if ignore_eos:
                kwargs.update(min_new_tokens=max_tokens)
            result: dict = {}

            def run() -> None:
                try:
                    with torch.no_grad():
                        result["output"] = self.model.generate(**kwargs)
                except BaseException as exc:  # surfaced to the client as a stream error
                    result["error"] = exc
                    streamer.end()

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            queue_get = asyncio.get_running_loop().run_in_executor
            emitted = 0
            try:
                while True:
                    text = await queue_get(None, _next_or_none, streamer)
                    if text is None:
                        break
                    if text:
                        # Count tokens by re-encoding what was emitted so far: exact for the usage record.
                        emitted_now = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                        emitted += emitted_now
                        yield Piece(text, emitted_now)
            finally:
                stop.set()
                await asyncio.get_running_loop().run_in_executor(None, worker.join)
            if "error" in result:
                raise RuntimeError(f"generation failed: {result['error']}")
            output = result["output"]
            usage.prompt_tokens = len(input_ids)
            usage.completion_tokens = int(output.shape[1]) - len(input_ids)
        finally:
            self._slots.release()


def _next_or_none(iterator):
    try:
        return next(iterator)
    except StopIteration:
        return None
