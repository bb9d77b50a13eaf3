"""Sizing and roofline math against numbers that can be checked by hand."""

from __future__ import annotations

import json

import pytest

from spark_labs import calc
from spark_labs.models import prepare_embedded_model
from spark_labs.specs import HARDWARE, hardware_spec, match_gpu_name


def test_llama_8b_kv_cache_is_128_kib_per_token_in_bf16():
    # 32 layers × 8 KV heads × 128 head_dim × (K and V) × 2 bytes
    assert calc.kv_bytes_per_token(calc.LLAMA_3_1_8B) == 32 * 8 * 128 * 2 * 2 == 128 * 1024
    assert calc.kv_bytes_per_token(calc.LLAMA_3_1_8B, "fp8") == 64 * 1024
    assert calc.kv_cache_bytes(calc.LLAMA_3_1_8B, batch=4, context=8192) == 4 * 8192 * 128 * 1024  # 4 GiB


def test_parameter_counts_match_the_published_sizes():
    assert calc.param_count(calc.LLAMA_3_1_8B) == pytest.approx(8.03e9, rel=0.01)
    assert calc.param_count(calc.LLAMA_3_1_70B) == pytest.approx(70.6e9, rel=0.01)
    assert calc.param_count(calc.SMOLLM2_135M) == pytest.approx(134.5e6, rel=0.01)


def test_shape_from_the_exported_embedded_config_matches_the_builtin():
    config = json.loads((prepare_embedded_model() / "config.json").read_text())
    shape = calc.ModelShape.from_config(config, name=calc.SMOLLM2_135M.name)
    assert calc.param_count(shape) == calc.param_count(calc.SMOLLM2_135M)
    assert calc.kv_bytes_per_token(shape) == calc.kv_bytes_per_token(calc.SMOLLM2_135M) == 2 * 30 * 3 * 64 * 2


def test_weight_bytes_by_format():
    params = 8_000_000_000
    assert calc.weight_bytes(params, "bf16") == 16e9
    assert calc.weight_bytes(params, "fp8") == 8e9
    assert calc.weight_bytes(params, "nvfp4") == 4.5e9
    assert calc.weight_bytes(params, "q4_1") == 5e9
    with pytest.raises(Exception, match="Unknown weight format"):
        calc.weight_bytes(params, "int3")


def test_h100_decode_roofline_for_llama_8b_is_about_209_tok_s():
    # 3.35 TB/s over ≈16 GB of bf16 weights (short context): the bound DESIGN.md compares HF eager against.
    bound = calc.decode_tokens_per_s_bound(hardware_spec("h100-sxm"), calc.LLAMA_3_1_8B, batch=1, context=128)
    assert bound == pytest.approx(208, rel=0.02)


def test_spark_decode_bound_and_batching_gain():
    spark = hardware_spec("dgx-spark")
    single = calc.decode_tokens_per_s_bound(spark, calc.LLAMA_3_1_8B, batch=1, context=1024)
    batched = calc.decode_tokens_per_s_bound(spark, calc.LLAMA_3_1_8B, batch=16, context=1024)
    assert single == pytest.approx(273e9 / (16.06e9 + 128 * 1024 * 1024), rel=0.01)
    assert 10 < batched / single < 16  # KV reads grow with the batch, so the gain is below 16×


def test_prefill_bound_and_concurrency_capacity():
    spark = hardware_spec("dgx-spark")
    assert calc.prefill_seconds_bound(spark, calc.LLAMA_3_1_8B, 1000) == pytest.approx(
        2 * calc.param_count(calc.LLAMA_3_1_8B) * 1000 / 125e12)
    fits = calc.max_concurrent_sequences(128e9, calc.LLAMA_3_1_8B, context=8192)
    assert fits == int((128e9 * 0.9 - calc.weight_bytes(calc.LLAMA_3_1_8B)) // (8192 * 128 * 1024))


def test_hardware_table_and_gpu_name_matching():
    assert HARDWARE["dgx-spark"].bandwidth_gbs == 273 and HARDWARE["dgx-spark"].unified_memory
    assert "bfloat16" in HARDWARE["dgx-spark"].derived
    assert match_gpu_name("NVIDIA H100 80GB HBM3").key == "h100-sxm"
    assert match_gpu_name("NVIDIA GB10").key == "dgx-spark"
    assert match_gpu_name("NVIDIA H100 PCIe").key == "h100-pcie"
    assert match_gpu_name("Tesla T4") is None
