"""Lab 02's library: KV-space sizes refused before a start, vLLM's own capacity report, its scheduler gauges
and prefix-cache counters — read from the real vLLM CPU server on the embedded model."""

from __future__ import annotations

import pytest

from spark_labs.batching import KVCapacityError, kv_space_launch
from spark_labs.batching.kv_capacity import parse_cache_info, parse_log_tokens
from spark_labs.batching.pressure import check_levels
from spark_labs.errors import InsufficientMemoryError
from spark_labs.sizing import SMOLLM2_135M, kv_bytes_per_token

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
    assert args == ["--kv-cache-memory-bytes", str(700 * BYTES_PER_TOKEN), "--block-size", "128"]
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


# ---------- static vs continuous batching (schedules, no engine) ----------

def test_static_schedule_counts_idle_slot_steps_including_a_partial_last_batch():
    from spark_labs.batching.schedules import idle_slot_steps, static_schedule

    schedule = static_schedule([5, 1, 1, 1, 9, 2], 4)
    assert schedule["batch"].tolist() == [0, 0, 0, 0, 1, 1]
    assert schedule["start_step"].tolist() == [0, 0, 0, 0, 5, 5]
    counted = idle_slot_steps(schedule, 4)
    # 2 batches of 4 slots: 5 + 9 steps; tokens 19; the last batch's two empty slots are idle too.
    assert counted == {"slot_steps": 56, "busy": 19, "idle": 37, "steps": 14}


def test_continuous_schedule_refills_the_first_free_slot():
    from spark_labs.batching.schedules import continuous_schedule, idle_slot_steps

    schedule = continuous_schedule([5, 1, 1, 1, 9, 2], 4)
    assert schedule["slot"].tolist() == [0, 1, 2, 3, 1, 2]
    assert schedule["start_step"].tolist() == [0, 0, 0, 0, 1, 1]
    assert idle_slot_steps(schedule, 4)["steps"] == 10  # vs 14 for the static schedule


def test_mixed_lengths_span_the_range_in_a_reproducible_shuffled_order_and_bad_sizes_are_refused():
    from spark_labs.batching.schedules import mixed_lengths, static_schedule

    lengths = mixed_lengths(16, 8, 64)
    assert sorted(lengths)[0] == 8 and sorted(lengths)[-1] == 64 and len(lengths) == 16
    assert lengths == mixed_lengths(16, 8, 64) and lengths != sorted(lengths)
    with pytest.raises(KVCapacityError, match="1 ≤ shortest ≤ longest"):
        mixed_lengths(4, 10, 5)
    with pytest.raises(KVCapacityError, match="at least one output token"):
        static_schedule([3, 0], 2)
    with pytest.raises(KVCapacityError, match="at least one request"):
        static_schedule([3], 0)


def test_batching_comparison_reads_static_and_vllm_runs_from_the_same_clock_origin():
    import pandas as pd

    from spark_labs.batching.schedules import batching_comparison
    from spark_labs.bench.records import Chunk, RequestRecord, TokenCounts

    static = pd.DataFrame({"request": [0, 1], "batch": [0, 0], "slot": [0, 1], "start_s": [0.0, 0.0],
                           "useful_end_s": [1.0, 2.0], "end_s": [2.0, 2.0], "output_tokens": [1, 2],
                           "held_tokens": [2, 2]})
    records = [RequestRecord(f"mixed-{i}", "vllm", "mixed", 0, sent_ns=int(1e9 * s), end_ns=int(1e9 * e),
                             chunks=[Chunk(int(1e9 * e), "x")], output_tokens=TokenCounts(server=n), stream=i)
               for i, (s, e, n) in enumerate([(10, 11, 1), (10, 12, 2)])]
    table, timelines = batching_comparison(static, records, [1, 2], 2)
    assert table["e2e_p50_s"].round(3).tolist() == [2.0, 1.5]
    assert table["idle_share"].round(3).tolist() == [0.25, 0.0]
    assert table["schedule_steps"].tolist() == [2, 2] and len(timelines) == 2


# ---------- bad input: a limit named with its fix, never a hung cell ----------

def test_kv_space_whose_whole_blocks_cannot_hold_one_request_is_refused():
    """500 tokens' worth of bytes is 3 whole blocks of 128 = 384 tokens: vLLM would load the model, then
    refuse max_model_len=500. Refused before the start, naming the block count."""
    with pytest.raises(KVCapacityError, match="holds 384 tokens in whole blocks of 128.*max_model_len=500"):
        kv_space_launch(500 * BYTES_PER_TOKEN, BYTES_PER_TOKEN, 500, block_size=128)
    args, _ = kv_space_launch(512 * BYTES_PER_TOKEN, BYTES_PER_TOKEN, 500, block_size=128)
    assert args[-2:] == ["--block-size", "128"]


def test_a_level_that_would_take_many_waves_of_preemption_is_refused_with_the_limit():
    with pytest.raises(KVCapacityError, match=r"concurrency 64 asks for 12,288 tokens .* holds 640.*levels ≤ 13"):
        check_levels([1, 2, 64], 192, 512, capacity_tokens=640)
    assert check_levels([1, 2, 4], 192, 512, capacity_tokens=640) == [1, 2, 4]


def test_gpu_kv_space_is_utilization_times_memory_minus_what_is_not_cache():
    from spark_labs.batching.kv_capacity import gpu_kv_space

    gib = 2 ** 30
    assert gpu_kv_space(80 * gib, 0.9, 16 * gib, 1 * gib, gib // 2) == int(72 * gib - 17.5 * gib)
    with pytest.raises(KVCapacityError, match="leaves no KV cache.*raise --gpu-memory-utilization"):
        gpu_kv_space(16 * gib, 0.9, 16 * gib, gib)
    with pytest.raises(KVCapacityError, match="fraction in"):
        gpu_kv_space(16 * gib, 90, gib, gib)


def test_knob_readings_from_made_up_runs():
    import pandas as pd

    from spark_labs.batching.knobs import chunked_tradeoff, knee, run_injection

    levels = pd.DataFrame({"concurrency": [2, 4, 8], "max_running": [2, 4, 4]})
    assert knee(levels) == 8 and knee(levels.assign(max_running=[2, 4, 8])) is None
    reading = chunked_tradeoff({"itl_max_during_prefill_ms": 100, "long_ttft_ms": 1500},
                               {"itl_max_during_prefill_ms": 1000, "long_ttft_ms": 1000})
    assert reading == {"spike_ratio": 10.0, "ttft_ratio": 1.5, "protects": "small"}
    with pytest.raises(KVCapacityError, match="does not fit max_model_len=512"):
        run_injection(None, None, long_prompt_tokens=600, max_model_len=512)


def test_the_onset_is_the_first_level_that_waited_or_was_preempted():
    """A preempted request goes back to the queue; the 5-a-second gauge can miss that, the counter cannot."""
    import pandas as pd

    from spark_labs.batching import measured_onset

    levels = pd.DataFrame({"concurrency": [2, 3, 4], "max_waiting": [0.0, 0.0, 1.0], "preemptions": [0.0, 1.0, 2.0]})
    assert measured_onset(levels) == 3
    assert measured_onset(levels.assign(preemptions=0.0, max_waiting=0.0)) is None


def test_the_pressure_chart_is_redrawn_while_a_level_runs():
    import time

    from spark_labs.batching.pressure import _while_redrawing

    class Samples:
        def frame(self):
            return "frame"

    drawn = []
    assert _while_redrawing(lambda: time.sleep(0.35) or "done", Samples(), drawn.append, every_s=0.1) == "done"
    assert len(drawn) >= 3
    with pytest.raises(ZeroDivisionError):
        _while_redrawing(lambda: 1 / 0, Samples(), drawn.append, every_s=0.1)


def test_a_knee_on_the_log_axis_is_drawn_at_its_level_not_at_ten_to_its_power():
    import math

    import pandas as pd

    from spark_labs.batching import knob_figure

    table = pd.DataFrame({"concurrency": [2, 4, 8], "output_tok_per_s": [1, 2, 2], "max_waiting": [0, 0, 4]})
    figure = knob_figure({"C": table}, {"C": 8})
    assert figure.layout.xaxis.type == "log"
    assert {shape.x0 for shape in figure.layout.shapes} == {math.log10(8)}


def test_vllms_logged_kv_memory_is_read_and_its_absence_is_none():
    from spark_labs.batching.on_spark import logged_kv_gib

    line = "(EngineCore_DP0 pid=212) INFO 12-02 10:11:12 [gpu_worker.py:298] Available KV cache memory: 54.68 GiB"
    assert logged_kv_gib("loading...\n" + line + "\nKV cache size: 447,952 tokens", "vllm") == 54.68
    assert logged_kv_gib("KV cache size: 1,808 tokens", "vllm") is None
    assert logged_kv_gib(line, "sglang") is None  # an engine that logs no such line


def test_the_prefix_settings_come_from_each_engines_own_flags():
    from spark_labs import get_profile
    from spark_labs.batching.on_spark import prefix_settings

    assert prefix_settings(get_profile("spark").engines) == {
        "vLLM, prefix caching": ("vllm", ()), "vLLM, no prefix caching": ("vllm", ("--no-enable-prefix-caching",)),
        "SGLang, radix cache": ("sglang", ()), "SGLang, no radix cache": ("sglang", ("--disable-radix-cache",))}
    assert prefix_settings(["llamacpp", "ollama"]) == {}  # nothing they can switch off from a flag


class StubMetrics:
    """A /metrics page served from a thread (an engine's text, for the parsing around it)."""

    def __init__(self, text: str):
        import http.server

        body = text.encode()

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)

    def __enter__(self) -> str:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


SGLANG_METRICS = """# HELP sglang:prompt_tokens_total Number of prefill tokens processed.
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{model_name="m"} 1200.0
# HELP sglang:cached_tokens_total Number of cached prompt tokens.
# TYPE sglang:cached_tokens_total counter
sglang:cached_tokens_total{model_name="m"} 768.0
"""


def test_each_engines_prefix_counters_are_read_under_its_own_names():
    """SGLang's counters from its documented /metrics text (no SGLang here); vLLM's are read the same way in
    tests/integration/test_batching_engines.py."""
    from spark_labs.batching.prefix import prefix_counters
    from spark_labs.engines import resolve_engine

    with StubMetrics(SGLANG_METRICS) as url:
        assert prefix_counters(url, resolve_engine("sglang").prefix_cache_counters) == {"queries": 1200.0,
                                                                                        "hits": 768.0}
        # unnamed, the counters are those of the engine whose series the page carries, never vLLM's zeros
        assert prefix_counters(url) == {"queries": 1200.0, "hits": 768.0}
        assert prefix_counters(url, resolve_engine("vllm").prefix_cache_counters) == {"queries": 0.0, "hits": 0.0}
