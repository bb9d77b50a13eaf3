"""Sizing and roofline math against numbers that can be checked by hand."""

from __future__ import annotations

import json

import pytest

from spark_labs import sizing
from spark_labs.hardware.datasheets import HARDWARE, hardware_spec, match_gpu_name
from spark_labs.models.embedded import prepare_embedded_model


def test_llama_8b_kv_cache_is_128_kib_per_token_in_bf16():
    # 32 layers × 8 KV heads × 128 head_dim × (K and V) × 2 bytes
    assert sizing.kv_bytes_per_token(sizing.LLAMA_3_1_8B) == 32 * 8 * 128 * 2 * 2 == 128 * 1024
    assert sizing.kv_bytes_per_token(sizing.LLAMA_3_1_8B, "fp8") == 64 * 1024
    assert sizing.kv_cache_bytes(sizing.LLAMA_3_1_8B, batch=4, context=8192) == 4 * 8192 * 128 * 1024  # 4 GiB


def test_parameter_counts_match_the_published_sizes():
    assert sizing.param_count(sizing.LLAMA_3_1_8B) == pytest.approx(8.03e9, rel=0.01)
    assert sizing.param_count(sizing.LLAMA_3_1_70B) == pytest.approx(70.6e9, rel=0.01)
    assert sizing.param_count(sizing.SMOLLM2_135M) == pytest.approx(134.5e6, rel=0.01)


def test_shape_from_the_exported_embedded_config_matches_the_builtin():
    config = json.loads((prepare_embedded_model() / "config.json").read_text())
    shape = sizing.ModelShape.from_config(config, name=sizing.SMOLLM2_135M.name)
    assert sizing.param_count(shape) == sizing.param_count(sizing.SMOLLM2_135M)
    assert sizing.kv_bytes_per_token(shape) == sizing.kv_bytes_per_token(sizing.SMOLLM2_135M) == 2 * 30 * 3 * 64 * 2


@pytest.mark.parametrize("fmt, block_bytes, block_weights", [
    ("q4_0", 2 + 16, 32),      # fp16 scale + 32 nibbles
    ("q4_1", 2 + 2 + 16, 32),  # fp16 scale + fp16 min + 32 nibbles
    ("q8_0", 2 + 32, 32),      # fp16 scale + 32 int8
    ("nvfp4", 1 + 8, 16),      # FP8 (E4M3) scale + 16 FP4 values
    ("nf4", 4 + 32, 64),       # fp32 absmax + 64 nibbles (bitsandbytes, no double quantization)
])
def test_quantized_formats_count_their_scales(fmt, block_bytes, block_weights):
    assert sizing.bytes_per_weight(fmt) == block_bytes / block_weights


def test_weight_bytes_by_format():
    params = 8_000_000_000
    assert sizing.weight_bytes(params, "fp32") == 32e9
    assert sizing.weight_bytes(params, "bf16") == sizing.weight_bytes(params, "fp16") == 16e9
    assert sizing.weight_bytes(params, "fp8") == sizing.weight_bytes(params, "int8") == 8e9
    assert sizing.weight_bytes(params, "nvfp4") == 4.5e9
    assert sizing.weight_bytes(params, "Q4_1") == 5e9
    assert 4e9 < sizing.weight_bytes(params, "int4") < 4.5e9
    with pytest.raises(Exception, match="Unknown weight format"):
        sizing.weight_bytes(params, "int3")


def test_embedded_gguf_is_no_smaller_than_its_q4_1_weights():
    # The file also holds the tokenizer and keeps some tensors at higher precision, never less.
    from spark_labs.models.embedded import embedded_gguf_path

    assert embedded_gguf_path().stat().st_size > sizing.weight_bytes(sizing.SMOLLM2_135M, "q4_1")


def test_embedded_configs_need_no_network_and_feed_every_calculator():
    config = sizing.embedded_config("meta-llama/Llama-3.1-8B-Instruct")
    assert config["num_key_value_heads"] == 8 and config["head_dim"] == 128
    assert sizing.kv_bytes_per_token(config) == 128 * 1024
    assert sizing.param_count(config) == sizing.param_count(sizing.LLAMA_3_1_8B)
    with pytest.raises(Exception, match="No embedded config"):
        sizing.embedded_config("meta-llama/Llama-3.1-405B")


def test_a_local_model_folder_is_sized_from_its_config_json(tmp_path):
    # SPARK_LABS_MODEL=<folder> (a learner's own model) is the plan's model id: lab 01 sizes it by that name
    config = sizing.embedded_config("HuggingFaceTB/SmolLM2-135M-Instruct")
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert sizing.embedded_config(str(tmp_path)) == config
    shape = sizing.known_model(str(tmp_path))
    assert shape.name == str(tmp_path) and sizing.param_count(shape) == sizing.param_count(sizing.SMOLLM2_135M)
    with pytest.raises(Exception, match="No built-in shape"):
        sizing.known_model(str(tmp_path / "elsewhere"))


def test_transformers_config_objects_and_models_are_accepted():
    from transformers import LlamaConfig

    fields = {k: v for k, v in sizing.embedded_config("HuggingFaceTB/SmolLM2-135M-Instruct").items()
              if not k.startswith("_") and k != "architectures"}
    config = LlamaConfig(**fields)
    assert sizing.param_count(config) == 134_515_008
    assert sizing.kv_bytes_per_token(type("Model", (), {"config": config})(), "fp8") == 2 * 30 * 3 * 64
    with pytest.raises(Exception, match="lacks hidden_size"):
        sizing.param_count({"model_type": "bert"})
    with pytest.raises(Exception, match="Unknown KV-cache dtype"):
        sizing.kv_bytes_per_token(config, "int3")


def test_h100_decode_roofline_for_llama_8b_is_about_209_tok_s():
    # 3.35 TB/s over ≈16 GB of bf16 weights (short context): the bound DESIGN.md compares HF eager against.
    bound = sizing.decode_tokens_per_s_bound(hardware_spec("h100-sxm"), sizing.LLAMA_3_1_8B, batch=1, context=128)
    assert bound == pytest.approx(208, rel=0.02)


def test_spark_decode_bound_and_batching_gain():
    spark = hardware_spec("dgx-spark")
    single = sizing.decode_tokens_per_s_bound(spark, sizing.LLAMA_3_1_8B, batch=1, context=1024)
    batched = sizing.decode_tokens_per_s_bound(spark, sizing.LLAMA_3_1_8B, batch=16, context=1024)
    assert single == pytest.approx(273e9 / (16.06e9 + 128 * 1024 * 1024), rel=0.01)
    assert 10 < batched / single < 16  # KV reads grow with the batch, so the gain is below 16×


def test_prefill_bound_and_concurrency_capacity():
    spark = hardware_spec("dgx-spark")
    assert sizing.prefill_seconds_bound(spark, sizing.LLAMA_3_1_8B, 1000) == pytest.approx(
        2 * sizing.param_count(sizing.LLAMA_3_1_8B) * 1000 / 125e12)
    fits = sizing.max_concurrent_sequences(128e9, sizing.LLAMA_3_1_8B, context=8192)
    assert fits == int((128e9 * 0.9 - sizing.weight_bytes(sizing.LLAMA_3_1_8B)) // (8192 * 128 * 1024))


def test_published_peaks_are_stored_dense():
    # Datasheets print 2:4-sparse figures; the table keeps half of them.
    assert HARDWARE["h100-sxm"].peak_flops("bf16") == 989e12 and HARDWARE["h100-sxm"].bandwidth_gbs == 3350
    assert HARDWARE["h200"].bandwidth_gbs == 4800 and HARDWARE["h100-pcie"].bandwidth_gbs == 2000
    assert HARDWARE["rtx-5090"].peak_tflops["nvfp4"] == 3352 / 2 and HARDWARE["rtx-5090"].bandwidth_gbs == 1792
    assert HARDWARE["dgx-spark"].peak_tflops["nvfp4"] == 1000 / 2
    with pytest.raises(Exception, match="No fp8 peak"):
        HARDWARE["a100-sxm"].peak_flops("fp8")


def test_hardware_table_and_gpu_name_matching():
    assert HARDWARE["dgx-spark"].bandwidth_gbs == 273 and HARDWARE["dgx-spark"].unified_memory
    assert "bfloat16" in HARDWARE["dgx-spark"].derived
    assert match_gpu_name("NVIDIA H100 80GB HBM3").key == "h100-sxm"
    assert match_gpu_name("NVIDIA GB10").key == "dgx-spark"
    assert match_gpu_name("NVIDIA H100 PCIe").key == "h100-pcie"
    assert match_gpu_name("NVIDIA RTX A6000").key == "rtx-a6000"
    assert match_gpu_name("NVIDIA RTX 6000 Ada Generation").key == "rtx-6000-ada"
    with pytest.raises(Exception, match="Unknown hardware"):
        hardware_spec("tpu-v5")
    assert match_gpu_name("Tesla T4") is None


def test_roofline_table_grows_sublinearly_and_flags_what_does_not_fit():
    table = sizing.roofline(hardware_spec("rtx-4090"), sizing.LLAMA_3_1_8B, batches=(1, 8, 64), context=4096)
    assert list(table["batch"]) == [1, 8, 64]
    assert table["tok_s_bound"].is_monotonic_increasing
    assert table["tok_s_per_sequence"].is_monotonic_decreasing
    # 16.1 GB of weights + 8 × 4096 × 128 KiB (4.3 GB) of KV fit in 24 GB; + 64 × 4096 × 128 KiB (34.4 GB) do not.
    assert list(table["fits_in_memory"]) == [True, True, False]
    assert table.loc[0, "tok_s_bound"] == sizing.decode_tokens_per_s_bound(
        hardware_spec("rtx-4090"), sizing.LLAMA_3_1_8B, 1, 4096)
