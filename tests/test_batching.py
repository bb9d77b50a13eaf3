"""Lab 02's library: KV-space sizes refused before a start, vLLM's own capacity report, its scheduler gauges
and prefix-cache counters — read from the real vLLM CPU server on the embedded model."""

from __future__ import annotations

import pytest

from spark_labs.batching import KVCapacityError, kv_space_launch, read_kv_capacity
from spark_labs.batching.kv_capacity import parse_cache_info, parse_log_tokens
from spark_labs.batching.pressure import check_levels
from spark_labs.calc import SMOLLM2_135M, kv_bytes_per_token
from spark_labs.errors import InsufficientMemoryError

BYTES_PER_TOKEN = kv_bytes_per_token(SMOLLM2_135M)


def test_more_kv_than_the_machine_has_is_refused_naming_the_limit_and_the_fix():
    refused = r"(?s)MiB of KV cache but this machine has only .* lower kv_bytes"
    with pytest.raises(InsufficientMemoryError, match=refused):
        kv_space_launch(10 ** 15, BYTES_PER_TOKEN, 512)  # a petabyte, against this machine's real free memory


def test_kv_space_below_one_full_request_is_refused_before_vllm_loads_the_model():
    with pytest.raises(KVCapacityError, match="fewer than one request of max_model_len=512.*Raise kv_bytes or lower"):
        kv_space_launch(100 * BYTES_PER_TOKEN, BYTES_PER_TOKEN, 512)
    with pytest.raises(KVCapacityError, match="positive whole number of bytes"):
        kv_space_launch(0.5, BYTES_PER_TOKEN, 512)


def test_kv_space_flags_unset_the_cpu_variable_that_would_override_them():
    args, env = kv_space_launch(700 * BYTES_PER_TOKEN, BYTES_PER_TOKEN, 512)
    assert args == ["--kv-cache-memory-bytes", str(700 * BYTES_PER_TOKEN)]
    assert env == {"VLLM_CPU_KVCACHE_SPACE": None}


def test_sweep_levels_the_engine_cannot_serve_are_refused_before_sending():
    assert check_levels([8, 2, 4, 4], 192, 512) == [2, 4, 8]
    with pytest.raises(KVCapacityError, match="needs 600 tokens .* max_model_len=512"):
        check_levels([2], 600, 512)
    with pytest.raises(KVCapacityError, match="concurrency 500 is more than"):
        check_levels([2, 500], 100, 512)
    with pytest.raises(KVCapacityError, match="whole numbers ≥ 1"):
        check_levels([0, 2], 100, 512)


def test_cache_info_parsing_names_what_is_missing():
    page = ('# TYPE vllm:cache_config_info gauge\n'
            'vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="40"} 1.0\n')
    capacity = parse_cache_info(page)
    assert (capacity.num_blocks, capacity.block_size, capacity.tokens) == (40, 16, 640)
    with pytest.raises(KVCapacityError, match="no vllm:cache_config_info"):
        parse_cache_info("# TYPE other gauge\nother 1.0\n")
    assert parse_log_tokens("INFO [kv_cache_utils.py] CPU KV cache size: 46,592 tokens, Maximum") == 46592
    assert parse_log_tokens("nothing here") is None


@pytest.mark.integration
def test_vllm_capacity_is_the_space_divided_into_whole_blocks_of_the_calculated_size(vllm_engine):
    """The session engine runs with the registry's VLLM_CPU_KVCACHE_SPACE=1 (GiB): its block count must be
    that GiB divided by the calculator's bytes per token × block size, and its log line must agree."""
    capacity = read_kv_capacity(vllm_engine)
    expected_blocks = 2 ** 30 // (BYTES_PER_TOKEN * capacity.block_size)
    assert capacity.num_blocks == expected_blocks
    assert capacity.log_tokens == capacity.tokens


@pytest.mark.integration
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
