"""Does the course's server batch? Total and per-stream decode tok/s at concurrency 1 and 4, side by side.

    # CPU, through the real server (`spark-labs serve --backend transformers`, started here) and the openai client:
    python scripts/device_proof/device_proof_serve_batching.py --http --model "$(spark-labs models path)"
    # GPU (device machine, no network): a random-weight Llama-3.1-8B-shaped bf16 model, served in-process by
    # the same TransformersBackend (scheduler + compiled batched decoder; no HTTP: the gateway's packages may
    # be missing there):
    PYTHONPATH=src python3 scripts/device_proof/device_proof_serve_batching.py --random-8b

Each round starts ``c`` streams together, each asking for exactly ``--max-tokens`` greedy tokens (ignore_eos).
Per-stream tok/s is a stream's tokens after its first, over the time from its first token to its last (its
decode rate while it shares the batch); total tok/s is all tokens over the round's wall time (prefills
included). Streams that start together also finish together: this is the closed-loop regime. The median
round is reported. Prints a table and one JSON line (also written to $OUT/serve_batching.json if $OUT is set).
This is a benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "Write a long story about a lighthouse keeper and the sea, with many details."


class IdTokenizer:
    """Enough of a tokenizer for a random-weight model: ids in, ids out as text."""

    eos_token_id = None

    def decode(self, ids, skip_special_tokens=True):
        return "".join(f" {i}" for i in ids)


def summarise(concurrency: int, rounds: list[list[tuple[int, float, float]]], walls: list[float]) -> dict:
    """rounds: per round, per stream (tokens, first token time, last token time) relative to the round's start."""
    totals = [sum(t for t, _, _ in streams) / wall for streams, wall in zip(rounds, walls)]
    per_stream = [statistics.mean((t - 1) / (last - first) for t, first, last in streams if t > 1 and last > first)
                  for streams in rounds]
    ttft = [statistics.mean(first for _, first, _ in streams) for streams in rounds]
    return {"concurrency": concurrency, "total_tok_s": statistics.median(totals),
            "per_stream_tok_s": statistics.median(per_stream), "mean_ttft_s": statistics.median(ttft),
            "rounds_total_tok_s": [round(x, 1) for x in totals]}


async def measure(stream_one, concurrencies: list[int], rounds: int) -> list[dict]:
    results = []
    for c in concurrencies:
        all_rounds, walls = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            streams = await asyncio.gather(*[stream_one(start) for _ in range(c)])
            walls.append(time.perf_counter() - start)
            all_rounds.append(streams)
        results.append(summarise(c, all_rounds, walls))
    return results


def in_process(args) -> tuple[dict, callable]:
    import torch

    from spark_labs.serve.backends import TransformersBackend, Usage

    if args.random_8b:
        sys.path.insert(0, str(Path(__file__).parent))
        from device_proof_foundation import _llama_config  # the vendored 8B shape, no download
        from transformers import AutoModelForCausalLM

        from spark_labs import sizing

        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(_llama_config(sizing.LLAMA_3_1_8B), dtype=torch.bfloat16)
        backend = TransformersBackend(None, "random-8b", args.slots, max_model_len=args.max_model_len,
                                      model=model, tokenizer=IdTokenizer())
        prompt = list(range(1000, 1000 + args.prompt_tokens))
    else:
        backend = TransformersBackend(args.model, "m", args.slots, max_model_len=args.max_model_len)
        prompt = backend.encode_chat([{"role": "user", "content": PROMPT}])

    async def stream_one(start: float) -> tuple[int, float, float]:
        times = []
        async for _piece in backend.generate(prompt, args.max_tokens, 0.0, 1.0, True, Usage()):
            times.append(time.perf_counter() - start)
        return len(times), times[0], times[-1]

    async def run() -> dict:
        began = time.perf_counter()
        await backend.start(None)
        ready_before = backend.readiness()[0]
        while not backend.readiness()[0]:
            if backend._warm_error is not None:
                raise backend._warm_error
            await asyncio.sleep(0.1)
        info = {"ready_before_warm_up": ready_before, "warm_up_s": backend.warm_up_s,
                "ready_after_s": time.perf_counter() - began, "compiled": backend.compile,
                "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                "torch": torch.__version__}
        info["results"] = await measure(stream_one, args.concurrency, args.rounds)
        await backend.aclose()
        return info

    return asyncio.run(run())


def over_http(args) -> dict:
    import httpx
    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "spark_labs.serve", "--backend", "transformers", "--model", args.model,
               "--port", str(port), "--served-model-name", "m", "--max-concurrency", str(args.slots),
               "--log-level", "warning", "--max-tokens-limit", "4096"]
    if args.max_model_len:
        command += ["--max-model-len", str(args.max_model_len)]
    server = subprocess.Popen(command, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        began, states = time.perf_counter(), []
        while True:
            try:
                answer = httpx.get(url + "/ready", timeout=2)
                states.append((answer.status_code, answer.json().get("reason")))
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.perf_counter() - began > 600:
                raise SystemExit("the server did not get ready")
            time.sleep(0.2)
        info = {"ready_after_s": time.perf_counter() - began, "ready_answers": sorted(set(map(str, states))),
                "command": " ".join(command[1:])}
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)

        async def stream_one(start: float) -> tuple[int, float, float]:
            times, tokens = [], 0
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": PROMPT}], max_tokens=args.max_tokens,
                temperature=0, stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
            async for chunk in stream:
                if chunk.usage:
                    tokens = chunk.usage.completion_tokens
                if chunk.choices and chunk.choices[0].delta.content:
                    times.append(time.perf_counter() - start)
            return tokens, times[0], times[-1]

        info["results"] = asyncio.run(measure(stream_one, args.concurrency, args.rounds))
        return info
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="HF model directory (the embedded model's export on the tiny profile)")
    parser.add_argument("--random-8b", action="store_true", help="random-weight Llama-3.1-8B shape on CUDA")
    parser.add_argument("--http", action="store_true", help="start `spark-labs serve` and measure through HTTP")
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=32, help="--random-8b: prompt length")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    if not (args.model or args.random_8b):
        parser.error("give --model DIR or --random-8b")
    info = over_http(args) if args.http else in_process(args)
    info.update(slots=args.slots, max_tokens=args.max_tokens, max_model_len=args.max_model_len, rounds=args.rounds)
    base = info["results"][0]
    print(f"{'concurrency':>11} {'total tok/s':>12} {'per-stream tok/s':>17} {'mean TTFT s':>12} "
          f"{'total vs c=1':>13} {'per-stream vs c=1':>18}")
    for row in info["results"]:
        row["total_vs_c1"] = row["total_tok_s"] / base["total_tok_s"]
        row["per_stream_vs_c1"] = row["per_stream_tok_s"] / base["per_stream_tok_s"]
        print(f"{row['concurrency']:>11} {row['total_tok_s']:>12.1f} {row['per_stream_tok_s']:>17.1f} "
              f"{row['mean_ttft_s']:>12.3f} {row['total_vs_c1']:>12.2f}x {row['per_stream_vs_c1']:>17.2f}x")
    print(json.dumps(info))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "serve_batching.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
