"""Reasoning models: thinking and answer counted and timed apart, and thinking switched off where a lab is not
about it. No reasoning model runs here (the tiny profile's SmolLM2 does not think), so the server in these tests
is a STUB OF THE STREAM SHAPE ONLY: it replays what vLLM's reasoning parser sends (`reasoning_content` deltas,
`reasoning` in newer vLLM, then `content`, then usage with `completion_tokens_details.reasoning_tokens`). The
client, the HTTP layer and the metrics are the real ones."""

from __future__ import annotations

import asyncio
import json

from spark_labs.bench.clients import BenchRequest, Target, build_body, send
from spark_labs.bench.metrics import request_metrics, summarize
from spark_labs.http_client import Pool
from spark_labs.profiles import plan

PHASE_GAP_S = 0.05  # the stub waits this long between its thinking and its answer

THINKING = ["Okay", ", the user", " asks", " about France."]  # 4 reasoning deltas (the last in newer vLLM's form)
ANSWER = ["Paris", "."]


def _sse(event: dict) -> bytes:
    payload = b"data: " + json.dumps(event).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _delta(**delta) -> dict:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


class ReasoningStreamStub:
    """Answers one chat request with vLLM's reasoning-parser stream shape; keeps the request body it got."""

    def __init__(self):
        self.bodies: list[dict] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = next(int(line.split(":")[1]) for line in head.split("\r\n")
                      if line.lower().startswith("content-length"))
        self.bodies.append(json.loads(await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(_sse(_delta(role="assistant", content="")))
        for i, text in enumerate(THINKING):
            writer.write(_sse(_delta(reasoning=text) if i == len(THINKING) - 1 else _delta(reasoning_content=text)))
            await writer.drain()
            await asyncio.sleep(0.01)
        await asyncio.sleep(PHASE_GAP_S)
        for text in ANSWER:
            writer.write(_sse(_delta(content=text)))
            await writer.drain()
            await asyncio.sleep(0.01)
        usage = {"prompt_tokens": 12, "completion_tokens": len(THINKING) + len(ANSWER), "total_tokens": 18,
                 "completion_tokens_details": {"reasoning_tokens": len(THINKING)}}
        writer.write(_sse({"object": "chat.completion.chunk", "choices": [], "usage": usage}))
        writer.write(_sse_done())
        await writer.drain()
        writer.close()


def _sse_done() -> bytes:
    payload = b"data: [DONE]\n\n"
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


async def _one_request(target_extras: dict):
    stub = ReasoningStreamStub()
    server = await asyncio.start_server(stub.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = Target("stub", f"http://127.0.0.1:{port}", "Qwen/Qwen3-8B", chat_extras=target_extras)
    pool = Pool(target.url, 1)
    try:
        record = await send(pool, target, BenchRequest("r1", "What is the capital of France?", max_tokens=64,
                                                       force_length=False))
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()
    return record, stub.bodies


def test_stub_stream_reasoning_tokens_are_counted_and_timed_apart_from_the_answer():
    """Stub of vLLM's reasoning stream shape only (no local reasoning model): real client, real metrics."""
    record, _ = asyncio.run(_one_request({}))
    assert record.ok, record.error
    assert record.reasoning_text == "".join(THINKING) and record.answer_text == "".join(ANSWER)
    metrics = request_metrics(record)
    assert metrics.reasoning_tokens == len(THINKING) and metrics.output_tokens == len(THINKING) + len(ANSWER)
    assert metrics.ttft_s == metrics.ttft_reasoning_s  # the first token is a thinking token
    assert metrics.ttft_answer_s - metrics.ttft_reasoning_s >= PHASE_GAP_S  # the answer waits for the thinking
    summary = summarize([record])
    assert summary.distributions["reasoning_tokens"].mean == len(THINKING)
    assert summary.distributions["answer_tokens"].mean == len(ANSWER)
    assert summary.distributions["ttft_answer"].mean == metrics.ttft_answer_s


def test_stub_stream_reasoning_count_falls_back_to_the_chunks_without_a_server_count():
    """Stub of the stream shape only: an engine that sends no completion_tokens_details still gets a count."""
    record, _ = asyncio.run(_one_request({}))
    record.reasoning_tokens = None
    assert request_metrics(record).reasoning_tokens == len(THINKING)


def test_stub_stream_receives_thinking_off_from_the_spark_plan_for_qwen3():
    """Stub of the stream shape only: the request body the real client sends carries the plan's chat extras."""
    model = plan("04", "spark").model
    assert model.hf_id == "Qwen/Qwen3-8B" and model.reasoning_parser == "qwen3"
    _, bodies = asyncio.run(_one_request(model.chat_extras()))
    assert bodies[0]["chat_template_kwargs"] == {"enable_thinking": False}
    assert bodies[0]["messages"][0]["content"] == "What is the capital of France?"


def test_models_that_do_not_think_send_no_extras():
    tiny = plan("04", "tiny").model
    llama = plan("01", "spark").model
    assert tiny.chat_extras() == {} and llama.chat_extras() == {}
    _, body = build_body(Target("t", "http://x", "m"), BenchRequest("r", "hi", max_tokens=4))
    assert "chat_template_kwargs" not in body


def test_plain_answers_have_no_reasoning_metrics():
    record, _ = asyncio.run(_one_request({}))
    record.chunks = [c for c in record.chunks if not c.reasoning]
    record.reasoning_tokens = None
    metrics = request_metrics(record)
    assert metrics.reasoning_tokens == 0 and metrics.ttft_reasoning_s is None
    assert metrics.ttft_answer_s == metrics.ttft_s
    assert "reasoning_tokens" not in summarize([record]).distributions
