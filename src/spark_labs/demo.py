"""``make demo``: llama.cpp and vLLM (CPU) on the embedded model, one identical workload, one table.

Both engines get the same prompts with the same output length, sent with the same concurrency, and
every number in the table is measured in this run from the streamed responses (nothing is assumed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from .engines import EngineHandle, launch
from .profiles import get_profile

PROMPTS = (
    "Explain in two sentences what a KV cache is.",
    "Write a haiku about memory bandwidth.",
    "What is the capital of France? Answer briefly.",
    "Give three tips for serving language models efficiently.",
    "Describe prefill and decode in one paragraph.",
    "Why does batching raise throughput?",
    "List four inference engines for large language models.",
    "What does time to first token measure?",
)


@dataclass
class StreamTiming:
    ttft_s: float
    e2e_s: float
    output_tokens: int

    @property
    def decode_tok_s(self) -> float | None:
        # Tokens after the first, over the time after the first token: the steady decode rate.
        if self.output_tokens < 2 or self.e2e_s <= self.ttft_s:
            return None
        return (self.output_tokens - 1) / (self.e2e_s - self.ttft_s)


async def stream_chat(client: httpx.AsyncClient, engine: EngineHandle, prompt: str, max_tokens: int) -> StreamTiming:
    """One streamed chat completion; output tokens from the server's usage record when it sends one,
    else one per content chunk (llama.cpp and vLLM both emit one token per chunk)."""
    body = {
        "model": engine.served_name,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first: float | None = None
    chunks = 0
    usage_tokens: int | None = None
    async with client.stream("POST", engine.base_url + "/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            if event.get("usage"):
                usage_tokens = event["usage"].get("completion_tokens")
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter()
    end = time.perf_counter()
    return StreamTiming(ttft_s=(first or end) - start, e2e_s=end - start, output_tokens=usage_tokens or chunks)


async def run_workload(engine: EngineHandle, prompts: tuple[str, ...], max_tokens: int, concurrency: int):
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as client:
        await stream_chat(client, engine, "Hello", 4)  # warm-up, excluded from the numbers

        async def one(prompt: str) -> StreamTiming:
            async with semaphore:
                return await stream_chat(client, engine, prompt, max_tokens)

        start = time.perf_counter()
        timings = await asyncio.gather(*(one(p) for p in prompts))
        wall = time.perf_counter() - start
    return timings, wall


def summarize(name: str, ready_s: float, timings: list[StreamTiming], wall_s: float) -> dict:
    decode = [t.decode_tok_s for t in timings if t.decode_tok_s]
    tokens = sum(t.output_tokens for t in timings)
    return {
        "engine": name,
        "ready_s": ready_s,
        "requests": len(timings),
        "ttft_p50_ms": statistics.median(t.ttft_s for t in timings) * 1000,
        "decode_tok_s_p50": statistics.median(decode) if decode else float("nan"),
        "throughput_tok_s": tokens / wall_s,
        "requests_per_s": len(timings) / wall_s,
        "output_tokens": tokens,
    }


ENGINE_ARGS = {
    "llamacpp": [],
    # Eager mode skips vLLM's ≈3 min torch.compile warm-up on CPU; the same flag DGX Spark guides use.
    "vllm": ["--enforce-eager", "--max-model-len", "2048"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark-labs demo", description=__doc__)
    parser.add_argument("--engines", default="llamacpp,vllm")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    console = Console()
    profile = get_profile()
    console.print(f"[bold]spark-labs demo[/] · profile [cyan]{profile.name}[/] · model "
                  f"{profile.default_model.hf_id} · {len(PROMPTS)} prompts × {args.max_tokens} tokens, "
                  f"concurrency {args.concurrency}")
    rows = []
    for name in args.engines.split(","):
        with console.status(f"starting {name} …"):
            engine = launch(name, port="auto", extra_args=ENGINE_ARGS.get(name, []), progress=False)
        with engine:
            console.print(f"  {engine.spec.display_name} ready in {engine.ready_after_s:.1f} s at {engine.url}")
            with console.status(f"measuring {name} …"):
                timings, wall = asyncio.run(run_workload(engine, PROMPTS, args.max_tokens, args.concurrency))
            rows.append(summarize(engine.spec.display_name, engine.ready_after_s or 0.0, timings, wall))

    table = Table(title="Same workload, measured in this run")
    for column in ("engine", "ready (s)", "TTFT p50 (ms)", "decode tok/s p50", "throughput tok/s", "req/s"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for r in rows:
        table.add_row(r["engine"], f"{r['ready_s']:.1f}", f"{r['ttft_p50_ms']:.0f}", f"{r['decode_tok_s_p50']:.1f}",
                      f"{r['throughput_tok_s']:.1f}", f"{r['requests_per_s']:.2f}")
    console.print(table)
    console.print("TTFT includes time spent queued: an engine that serves one request at a time "
                  "(llama-cpp-python's server) makes later requests wait; a batching engine (vLLM) does not.")
    if len(rows) == 2:
        a, b = rows
        console.print(f"throughput ratio {b['engine']} / {a['engine']}: "
                      f"{b['throughput_tok_s'] / a['throughput_tok_s']:.2f}×")
    return 0
