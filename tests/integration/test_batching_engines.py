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
    # 96 tokens each, sampled every 50 ms: the level lasts a second or more, so several samples fall inside it
    # (with 24 tokens it ended in under 0.4 s, and a 0.2 s sampler could miss every running request)
    levels, samples = kv_pressure_sweep(target, vllm_engine.metrics_url, tokenizer, 32, 96, [3], 2048,
                                        interval_s=0.05)
    assert levels.loc[0, "failed"] == 0 and levels.loc[0, "max_waiting"] == 0  # 1 GiB holds 3 × 128 tokens
    assert samples["running"].max() >= 1 and samples["kv_usage"].max() > 0

    block = read_kv_capacity(vllm_engine).block_size
    shared = 2 * block
    row = run_prefix_workload(target, vllm_engine.metrics_url,
                              shared_prefix_requests(tokenizer, shared, 8, 3, 2, seed=7))
    assert row["failed"] == 0
    # 3 prompts of shared + 8 tokens; the 2nd and 3rd find the 2 whole shared blocks the 1st left behind.
    assert row["queried_tokens"] == 3 * (shared + 8)
    assert row["hit_tokens"] == 2 * shared


def test_the_spark_section_runs_its_engines_through_the_launcher_and_reads_their_counters(vllm_engine):
    """Lab 02 §6's spark path (``capacity_at_fractions``, ``prefix_caches_compared``) on the session's real vLLM
    CPU server, through a **launch stand-in that hands back that running engine** (named so: no GPU or Docker
    here to start each container) and records what the section asked it to start. What the section reads
    (block count, prefix counters) comes from the real engine."""
    import contextlib

    from spark_labs import plan
    from spark_labs.batching import capacity_at_fractions, prefix_caches_compared, read_kv_capacity
    from spark_labs.batching.prefix import shared_prefix_requests
    from spark_labs.bench.tokens import load_tokenizer

    asked = []

    @contextlib.contextmanager
    def the_running_engine(engine, model, **options):
        asked.append((engine, model, options))
        yield vllm_engine

    lab = plan("02")
    capacity = capacity_at_fractions(lab, (0.9, 0.7), docker=True, launch=the_running_engine)
    real = read_kv_capacity(vllm_engine)
    assert capacity["blocks"].tolist() == [real.num_blocks] * 2
    assert capacity["usable tokens"].tolist() == [real.usable_tokens] * 2
    assert [a[2]["extra_args"] for a in asked] == [["--gpu-memory-utilization", "0.9"],
                                                   ["--gpu-memory-utilization", "0.7"]]
    assert all(a[0] == "vllm" and a[1] == lab.model and a[2]["docker"] for a in asked)

    asked.clear()
    block = real.block_size
    requests = shared_prefix_requests(load_tokenizer(), 2 * block, 8, 3, 2, seed=11)
    table = prefix_caches_compared(lab, requests, {"vLLM, prefix caching": ("vllm", ()),
                                                   "SGLang, no radix cache": ("sglang", ("--disable-radix-cache",))},
                                   docker=True, launch=the_running_engine)
    assert [(a[0], a[2]["extra_args"]) for a in asked] == [("vllm", []), ("sglang", ["--disable-radix-cache"])]
    vllm_row = table.loc["vLLM, prefix caching"]
    assert vllm_row["failed"] == 0 and vllm_row["hit_tokens"] == 2 * (2 * block)  # a cold prefix: 2nd and 3rd hit
    assert 0 < vllm_row["hit_rate"] < 1
    # the stand-in hands vLLM to the SGLang row too: SGLang's counter names are not on vLLM's /metrics, so the
    # row reads zero queries and no hit rate, rather than vLLM's numbers under SGLang's name
    assert table.loc["SGLang, no radix cache", "queried_tokens"] == 0


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
