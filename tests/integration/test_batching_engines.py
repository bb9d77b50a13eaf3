"""Lab 02's library: KV-space sizes refused before a start, vLLM's own capacity report, its scheduler gauges
and prefix-cache counters — read from the real vLLM CPU server on the embedded model."""

from __future__ import annotations

import pytest

from spark_labs.batching import read_kv_capacity
from spark_labs.sizing import SMOLLM2_135M, kv_bytes_per_token

BYTES_PER_TOKEN = kv_bytes_per_token(SMOLLM2_135M)


def test_vllm_capacity_is_the_space_divided_into_whole_blocks_of_the_calculated_size(vllm_engine):
    """The session engine runs with the registry's VLLM_CPU_KVCACHE_SPACE=1 (GiB): its block count must be
    that GiB divided by the calculator's bytes per token × block size, and its log line must agree."""
    capacity = read_kv_capacity(vllm_engine)
    expected_blocks = 2 ** 30 // (BYTES_PER_TOKEN * capacity.block_size)
    assert capacity.num_blocks == expected_blocks
    assert capacity.log_tokens == capacity.tokens


def test_scheduler_gauges_and_prefix_counters_move_under_real_requests(vllm_engine):
    from spark_labs.batching.prefix import run_prefix_workload, shared_prefix_requests
    from spark_labs.batching.pressure import kv_pressure_sweep
    from spark_labs.bench import Target
    from spark_labs.bench.tokens import load_tokenizer

    tokenizer = load_tokenizer()
    target = Target.from_engine(vllm_engine, protocol="openai-completions")
    levels, samples = kv_pressure_sweep(target, vllm_engine.metrics_url, tokenizer, 32, 24, [3], 2048)
    assert levels.loc[0, "failed"] == 0 and levels.loc[0, "max_waiting"] == 0  # 1 GiB holds 3 × 56 tokens
    assert samples["running"].max() >= 1 and samples["kv_usage"].max() > 0

    block = read_kv_capacity(vllm_engine).block_size
    shared = 2 * block
    row = run_prefix_workload(target, vllm_engine.metrics_url,
                              shared_prefix_requests(tokenizer, shared, 8, 3, 2, seed=7))
    assert row["failed"] == 0
    # 3 prompts of shared + 8 tokens; the 2nd and 3rd find the 2 whole shared blocks the 1st left behind.
    assert row["queried_tokens"] == 3 * (shared + 8)
    assert row["hit_tokens"] == 2 * shared


# ---------- static vs continuous batching (schedules, no engine) ----------


# ---------- bad input: a limit named with its fix, never a hung cell ----------


def test_static_batches_on_the_embedded_model_hold_every_slot_until_the_longest_is_done():
    """transformers generate on the exported embedded model: 3 requests in batches of 2 (a partial last
    batch), each request's own last token stamped before its batch returned."""
    from spark_labs.batching.static import run_static_batches
    from spark_labs.speculative.runner import SpecModel

    lm = SpecModel(None)
    prompts = ["The capital of France is", "Count: one, two, three, four, five,", "Hello"]
    run = run_static_batches(lm, prompts, [2, 6, 3], 2, progress=False)
    assert run["batch"].tolist() == [0, 0, 1] and run["held_tokens"].tolist() == [6, 6, 3]
    assert (run["useful_end_s"] <= run["end_s"]).all() and (run["start_s"] < run["useful_end_s"]).all()
    first = run[run["batch"] == 0]
    assert first["useful_end_s"].iloc[0] < first["useful_end_s"].iloc[1]  # 2 tokens done before 6
    assert run.loc[2, "start_s"] >= run.loc[1, "end_s"]  # the next batch waits for the longest
    with pytest.raises(ValueError, match="2 prompts but 3 output lengths"):
        run_static_batches(lm, prompts[:2], [2, 6, 3], 2, progress=False)
