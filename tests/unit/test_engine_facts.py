"""The harness reads every engine fact from the registry: a new EngineSpec is measured, cross-checked
and reset without a line of bench code changing."""

from __future__ import annotations

import dataclasses

import pytest

from spark_labs.bench.experiments import engine_workloads, weight_dtype
from spark_labs.bench.server_metrics import Scrape, detect_flavour, histogram_names
from spark_labs.engines import ENGINES, engine_args
from spark_labs.profiles import plan


@pytest.fixture
def new_engine(monkeypatch):
    """A made-up engine added to the registry the way a real one would be (data only, never started)."""
    spec = dataclasses.replace(
        ENGINES["vllm"], name="newengine", display_name="New Engine", bench_args=("--fast-start",),
        cpu_bench_args=(),
        context_length_flag="--ctx", slow_on_cpu="it serves one request at a time", model_format="gguf",
        histograms={"ttft": "new:ttft_seconds"}, counters={"output_tokens": "new:tokens"}, cache_reset_path=None)
    monkeypatch.setitem(ENGINES, "newengine", spec)
    return spec


def test_harness_flags_dtype_and_scaled_workloads_come_from_the_spec(new_engine):
    assert engine_args("newengine", 2048) == ["--fast-start", "--ctx", "2048"]
    assert engine_args("llamacpp", 2048) == []
    assert engine_args("vllm", 2048) == ["--enforce-eager", "--max-model-len", "2048"]
    tiny = plan("01", "tiny")
    assert weight_dtype("newengine", tiny.model) == tiny.model.quantization.lower()
    assert weight_dtype("vllm", tiny.model) == tiny.model.dtype
    workloads, levels, note = engine_workloads("newengine", tiny)
    assert note and "it serves one request at a time" in note and len(levels) <= 2
    assert all(w.num_requests == 2 for w in workloads.values())
    assert engine_workloads("llamacpp", tiny)[2] is None


def test_server_metrics_are_recognised_from_the_spec(new_engine):
    exposition = ("# HELP new:ttft_seconds x\n# TYPE new:ttft_seconds histogram\n"
                  'new:ttft_seconds_bucket{le="0.1"} 1.0\nnew:ttft_seconds_bucket{le="+Inf"} 2.0\n'
                  "new:ttft_seconds_sum 0.3\nnew:ttft_seconds_count 2.0\n")
    scrape = Scrape.parse(exposition)
    assert detect_flavour(scrape) is new_engine
    assert histogram_names(scrape) == {"ttft": "new:ttft_seconds"}
