"""Metric math on hand-computed records: every expected number below was worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spark_labs.bench.analysis import find_knee, use_case_table
from spark_labs.bench.metrics import chunk_tokens, percentile_from_histogram, request_metrics, summarize
from spark_labs.bench.records import Chunk, RequestRecord, TokenCounts

MS = 1_000_000  # ns


def record(chunks: list[tuple[int, str, int | None]], end_ms: int, *, scheduled_ms: int = 0, sent_ms: int = 0,
           server_tokens: int | None = None, requested: int | None = None, error: str | None = None,
           prompt_tokens: int | None = None, forced: bool = False) -> RequestRecord:
    return RequestRecord(
        request_id="r", engine="e", workload="w", scheduled_ns=scheduled_ms * MS, sent_ns=sent_ms * MS,
        end_ns=end_ms * MS, chunks=[Chunk(t * MS, text, tokens) for t, text, tokens in chunks],
        output_tokens=TokenCounts(requested=requested, server=server_tokens),
        prompt_tokens=TokenCounts(server=prompt_tokens), error=error, forced_length=forced)


def test_one_token_per_chunk():
    # Sent at 0; tokens at 100, 120, 140, 160 ms; stream closes at 170 ms.
    r = record([(100, "a", None), (120, "b", None), (140, "c", None), (160, "d", None)], 170, server_tokens=4,
               prompt_tokens=50)
    m = request_metrics(r)
    assert m.ttft_s == pytest.approx(0.100)
    assert m.e2e_s == pytest.approx(0.170)
    assert m.tpot_s == pytest.approx((0.170 - 0.100) / 3)  # includes the 10 ms tail after the last token
    assert m.itl_s == pytest.approx([0.020, 0.020, 0.020])
    assert m.inter_chunk_s == pytest.approx([0.020, 0.020, 0.020])
    assert m.prefill_tok_s == pytest.approx(50 / 0.100)
    assert m.decode_tok_s == pytest.approx(3 / 0.070)


def test_multi_token_chunks_split_the_gap_over_their_tokens():
    # Server says 6 tokens in 3 chunks: "x" (1), "yy" and "zzz" get the other 5 by text length -> 2 and 3.
    r = record([(100, "x", None), (140, "yy", None), (200, "zzz", None)], 200, server_tokens=6)
    assert chunk_tokens(r) == [1, 2, 3]
    m = request_metrics(r)
    assert m.itl_s == pytest.approx([0.020, 0.020, 0.020, 0.020, 0.020])  # 40/2 twice, 60/3 three times
    assert m.inter_chunk_s == pytest.approx([0.040, 0.060])
    assert m.tpot_s == pytest.approx(0.100 / 5)


def test_server_reported_chunk_tokens_win():
    r = record([(10, "ab", 3), (40, "c", 1)], 40)
    assert chunk_tokens(r) == [3, 1]
    assert request_metrics(r).itl_s == pytest.approx([0.030])


def test_one_token_response_has_ttft_but_no_tpot():
    r = record([(80, "Hi", None)], 85, server_tokens=1, requested=16)  # the model stopped after one token
    m = request_metrics(r)
    assert m.ttft_s == pytest.approx(0.080)
    assert m.tpot_s is None and m.decode_tok_s is None and m.itl_s == []
    s = summarize([r])
    assert "tpot" not in s.distributions
    assert any("single token" in w for w in s.warnings)


def test_error_mid_stream_counts_as_failed_and_not_in_latency():
    good = record([(100, "a", None), (150, "b", None)], 150, server_tokens=2)
    broken = record([(10, "a", None)], 20, error="error event mid-stream: upstream died")
    s = summarize([good, broken])
    assert (s.completed, s.failed) == (1, 1)
    assert s.distributions["ttft"].count == 1 and s.distributions["ttft"].p50 == pytest.approx(0.100)
    assert s.output_throughput == pytest.approx(2 / 0.150)  # only the completed request's tokens
    assert any("1 of 2 requests failed" in w and "upstream died" in w for w in s.warnings)


def test_latency_counts_from_the_scheduled_time_and_reports_the_queue():
    # Scheduled at 0, the cap let it leave at 300 ms, first token 400 ms: the user waited 400 ms.
    r = record([(400, "a", None), (420, "b", None)], 420, scheduled_ms=0, sent_ms=300, server_tokens=2,
               prompt_tokens=10)
    m = request_metrics(r)
    assert m.queue_s == pytest.approx(0.300)
    assert m.ttft_s == pytest.approx(0.400)
    assert m.prefill_tok_s == pytest.approx(10 / 0.100)  # prefill rate from the actual send


def test_summary_throughput_percentiles_and_goodput():
    records = [record([(100 * i, "a", None), (100 * i + 50, "b", None)], 100 * i + 50, server_tokens=2)
               for i in range(1, 5)]  # TTFT 100..400 ms, E2E 150..450 ms, run lasts 450 ms
    s = summarize(records, slo={"ttft_s": 0.25})
    assert s.duration_s == pytest.approx(0.450)
    assert s.request_throughput == pytest.approx(4 / 0.450)
    assert s.output_throughput == pytest.approx(8 / 0.450)
    assert s.distributions["ttft"].p50 == pytest.approx(0.250)  # linear interpolation between 200 and 300
    assert s.distributions["ttft"].p90 == pytest.approx(0.370)
    assert s.goodput == pytest.approx(2 / 0.450)  # TTFT 100 and 200 ms meet the 250 ms SLO
    assert any("rest on 4 samples" in w for w in s.warnings)


def test_token_sources_disagreeing_and_forced_length_shortfall_are_flagged():
    r = record([(10, "a", None), (20, "b", None)], 20, server_tokens=2, requested=8, forced=True)
    r.output_tokens.client = 5
    s = summarize([r])
    assert any("server counted 2 tokens, client tokenizer 5" in w for w in s.warnings)
    assert any("stopped short of the forced length" in w for w in s.warnings)


def test_retokenized_count_never_falls_under_the_chunk_count():
    # No server count; 4 one-token chunks whose text our tokenizer re-reads as 3 tokens (" a"+"b" merged).
    r = record([(100, " a", None), (120, "b", None), (140, " c", None), (160, " d", None)], 160, requested=4,
               forced=True)
    r.output_tokens.client = 3
    m = request_metrics(r)
    assert m.output_tokens == 4 and chunk_tokens(r) == [1, 1, 1, 1]
    assert m.tpot_s == pytest.approx(0.060 / 3)
    assert not any("short of the forced length" in w for w in summarize([r]).warnings)


def test_no_records_is_a_clear_error():
    with pytest.raises(ValueError, match="no records"):
        summarize([])


def test_histogram_quantile_interpolates_inside_the_bucket():
    buckets = [(0.1, 0.0), (0.25, 4.0), (0.5, 8.0), (math.inf, 8.0)]
    assert percentile_from_histogram(buckets, 0.5) == pytest.approx(0.25)
    assert percentile_from_histogram(buckets, 0.25) == pytest.approx(0.1 + 0.15 * 2 / 4)
    assert math.isnan(percentile_from_histogram([], 0.5))


def test_knee_is_where_throughput_stops_following_load():
    knee = find_knee([1, 2, 4, 8], [10.0, 19.0, 30.0, 31.0])
    assert knee.concurrency == 4
    assert find_knee([1, 2, 4], [10.0, 20.0, 40.0]).concurrency is None
    assert find_knee([1, 2], [10.0, 9.0]).concurrency == 1


def test_use_case_stars_are_relative_to_the_best_measured_engine():
    frame = pd.DataFrame([
        {"engine": "a", "workload": "chat", "concurrency": 1, "ttft_p50": 0.1, "output_throughput": 50.0,
         "client_valid": True},
        {"engine": "b", "workload": "chat", "concurrency": 1, "ttft_p50": 0.2, "output_throughput": 40.0,
         "client_valid": True},
        {"engine": "a", "workload": "chat", "concurrency": 4, "ttft_p50": 0.4, "output_throughput": 60.0,
         "client_valid": True},
        {"engine": "b", "workload": "chat", "concurrency": 4, "ttft_p50": 0.3, "output_throughput": 120.0,
         "client_valid": True},
    ])
    frame["prefill_tok_s_p50"] = float("nan")
    frame["decode_tok_s_p50"] = float("nan")
    table = use_case_table(frame).set_index(["use case", "engine"])
    assert table.loc[("Interactive chat, one user", "a"), "stars"] == "★★★★★"
    assert table.loc[("Interactive chat, one user", "b"), "stars"].count("★") == 2  # 0.1 / 0.2 of 5, rounded
    assert bool(table.loc[("Many users at once", "b"), "best"])
    assert table.loc[("Many users at once", "a"), "stars"].count("★") == 2  # 60 / 120 of 5 = 2.5 -> 2
