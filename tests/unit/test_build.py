"""Lab 03's build room: GGUF variants built with the real gguf library and llama.cpp's quantizer, scored by
llama.cpp's logits; the static-cache decoder on the real embedded model; the room check; the command line."""

from __future__ import annotations

import pandas as pd
import pytest

from spark_labs import sizing
from spark_labs.errors import InsufficientMemoryError
from spark_labs.models.embedded import prepare_embedded_model
from spark_labs.variants.gguf_variants import check_room
from spark_labs.variants.measure import pick_variant


def test_room_check_stops_before_writing_with_what_to_do(tmp_path):
    """Injected free-space readings (this machine has room): the check must name the need and the fix."""
    out = tmp_path / "not-yet-created"
    with pytest.raises(InsufficientMemoryError, match=r"only 0\.10 GB is free on that disk.*--out DIR"):
        check_room("Q8_0", out, free_disk=1e8, free_memory=1e12)
    with pytest.raises(InsufficientMemoryError, match=r"only 0\.20 GB is available.*Stop engines"):
        check_room("Q4_K_M", out, free_disk=1e12, free_memory=2e8)
    check_room("F16", out, free_disk=2 * 2 * sizing.weight_bytes(sizing.SMOLLM2_135M, "fp16"), free_memory=1e12)
    assert not out.exists()


def test_pick_variant_applies_speed_and_quality_budget():
    table = pd.DataFrame({"decode_tok_s": [100.0, 120.0, 140.0], "perplexity": [10.0, 10.2, 11.0],
                          "size_mb": [270.0, 145.0, 105.0]}, index=["F16", "Q8_0", "Q4_K_M"])
    assert pick_variant(table, "F16", 1.15, 0.05) == "Q8_0"  # Q4_K_M is faster but 10 % worse
    assert pick_variant(table, "F16", 1.15, 0.15) == "Q4_K_M"
    assert pick_variant(table, "F16", 2.0, 0.05) is None


def test_trtllm_command_follows_the_playbook(tmp_path):
    import yaml

    from spark_labs.engines import ENGINES
    from spark_labs.variants.trtllm import serve_args, write_extra_options

    options = write_extra_options(tmp_path / "opts.yml")
    assert yaml.safe_load(options.read_text()) == {"kv_cache_config": {"free_gpu_memory_fraction": 0.9},
                                                   "cuda_graph_config": {"enable_padding": True}}
    command = ENGINES["trtllm"].docker_command("nvidia/Llama-3.1-8B-Instruct-FP4", port=8355,
                                               extra_args=serve_args(options, docker=False))
    text = " ".join(command)
    assert "nvcr.io/nvidia/tensorrt-llm/release:" in text and "trtllm-serve nvidia/Llama-3.1-8B-Instruct-FP4" in text
    assert "--backend pytorch" in text and f"--extra_llm_api_options {options}" in text
    with pytest.raises(ValueError, match="free_gpu_memory_fraction"):
        write_extra_options(tmp_path / "bad.yml", free_gpu_memory_fraction=1.5)


# ---------- weight-only quantization (bitsandbytes) and one perplexity for every engine ----------
def test_perplexity_arithmetic_is_one_function_for_every_engine():
    import numpy as np

    from spark_labs.variants.quality import perplexity_from_logits

    # Uniform logits: every token has probability 1/V, so perplexity is exactly V.
    assert perplexity_from_logits(np.zeros((4, 7)), [0, 1, 2, 3, 4]) == pytest.approx(7.0)
    with pytest.raises(ValueError, match="one row per predicted token"):
        perplexity_from_logits(np.zeros((5, 7)), [0, 1, 2, 3, 4])


def test_weight_only_load_stops_before_loading_when_memory_is_short():
    from spark_labs.variants.weight_only import check_room, load_variant

    with pytest.raises(InsufficientMemoryError, match=r"NF4 variant holds about 0\.34 GB.*only 0\.10 GB.*"
                                                      r"Nothing was loaded"):
        check_room("NF4", free_memory=1e8)
    check_room("bf16", free_memory=1e9)
    with pytest.raises(InsufficientMemoryError, match="Nothing was loaded"):  # sized from the model's own config
        load_variant(prepare_embedded_model(), "NF4", free_memory=1e8)
    with pytest.raises(ValueError, match="choose one of bf16, NF4"):
        check_room("int3", free_memory=1e12)


def test_pick_variant_compares_only_rows_of_the_reference_engine():
    table = pd.DataFrame({"engine": ["llama.cpp server", "llama.cpp server", "transformers in-process",
                                     "transformers in-process"],
                          "decode_tok_s": [30.0, 36.0, 12.0, 14.0], "perplexity": [9.7, 9.8, 9.8, 9.9],
                          "size_mb": [270.0, 145.0, 269.0, 110.0]}, index=["F16", "Q8_0", "bf16", "NF4"])
    # NF4 is the smallest and within 5 % of F16's perplexity, but it is another engine's row.
    assert pick_variant(table, "F16", 1.15, 0.05) == "Q8_0"
    assert pick_variant(table, "bf16", 1.15, 0.05) == "NF4"
