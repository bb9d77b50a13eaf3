"""The demo's measurement loop against the real engines (the session fixtures)."""

from __future__ import annotations

import asyncio

import pytest

from spark_labs.demo import PROMPTS, run_workload, summarize

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("engine_fixture", ["llamacpp_engine", "vllm_engine"])
def test_workload_counts_every_requested_token(engine_fixture, request):
    engine = request.getfixturevalue(engine_fixture)
    timings, wall = asyncio.run(run_workload(engine, PROMPTS[:4], max_tokens=16, concurrency=2))
    row = summarize(engine.name, 0.0, timings, wall)
    assert row["requests"] == 4
    # Concurrent streams must not cut each other short (llama-cpp-python interrupts by default).
    assert all(4 <= t.output_tokens <= 16 for t in timings), [t.output_tokens for t in timings]
    assert all(0 < t.ttft_s < t.e2e_s for t in timings)
    assert row["throughput_tok_s"] > 0 and row["decode_tok_s_p50"] > 0
