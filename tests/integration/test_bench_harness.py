"""The harness measured against the calibration server — a synthetic streaming server with a fixed
TTFT and TPOT. It exists only to check the *harness* (timestamps, load shapes, connection reuse);
every engine test uses a real engine."""

from __future__ import annotations

import asyncio

import pytest

from spark_labs.bench.clients import BenchRequest, Target, make_pool, send
from spark_labs.bench.load import Load, run_load
from spark_labs.bench.selfcheck.harness_overhead import measure
from spark_labs.engines.ports import free_port

TTFT_MS, TPOT_MS = 30.0, 5.0
CALIBRATION_MS = (TTFT_MS, TPOT_MS)  # the calibration fixture (conftest) serves this timing


def requests(n: int, tokens: int) -> list[BenchRequest]:
    return [BenchRequest(f"r{i}", "x", tokens, "calibration", force_length=False) for i in range(n)]


def test_calibration_stream_is_recorded_chunk_by_chunk(calibration):
    result = run_load(calibration.target(), requests(1, 10), Load("sequential", warmup=0), progress=False)
    (record,) = result.records
    assert record.ok, record.error
    assert len(record.content_chunks) == 10
    assert record.output_tokens.server == 10
    stamps = [c.t_ns for c in record.content_chunks]
    assert stamps == sorted(stamps)
    ttft_ms = (stamps[0] - record.sent_ns) / 1e6
    assert TTFT_MS <= ttft_ms < TTFT_MS + 50  # never earlier than the server's fixed TTFT
    # Chunks leave on absolute deadlines (received + TTFT + k·TPOT), so a first token that is a little late
    # makes the measured TPOT a little *shorter* than the configured one, never much longer or shorter.
    assert 0.9 * TPOT_MS / 1e3 <= result.summary.distributions["tpot"].p50 < TPOT_MS / 1e3 + 0.005


def test_connections_are_kept_alive_between_requests(calibration):
    async def three_in_a_row():
        pool = make_pool(calibration.target(), 1)
        for _i in range(3):
            assert (await send(pool, calibration.target(), requests(1, 3)[0])).ok
        await pool.close()
        return pool.connections_opened

    assert asyncio.run(three_in_a_row()) == 1


def test_a_server_that_is_not_there_is_a_record_error_not_an_exception():
    target = Target("nobody", f"http://127.0.0.1:{free_port()}", "m")
    result = run_load(target, requests(2, 4), Load("concurrent", 2, warmup=0), progress=False)
    assert result.summary.failed == 2
    assert "is the server at" in result.records[0].error


def test_open_loop_latency_starts_at_the_scheduled_time(calibration):
    """No coordinated omission: with a cap of one in flight and arrivals faster than service, later
    requests wait in the client — that wait is reported as queue time and included in TTFT."""
    load = Load("poisson", concurrency=1, rate=100.0, warmup=0, seed=1)
    result = run_load(calibration.target(), requests(8, 4), load, progress=False)
    s = result.summary
    assert s.failed == 0
    assert s.distributions["queue"].max > 0.05
    for r in result.records:
        queue_s = (r.sent_ns - r.scheduled_ns) / 1e9
        ttft_s = (r.content_chunks[0].t_ns - r.scheduled_ns) / 1e9
        assert ttft_s >= queue_s + TTFT_MS / 1e3


def test_closed_loop_keeps_the_promised_concurrency_littles_law(calibration):
    result = run_load(calibration.target(), requests(16, 10), Load("concurrent", 4, warmup=0), progress=False)
    law = result.littles_law()
    assert 0.8 < law["ratio"] < 1.2, law
    assert result.health.valid, result.health.reasons


def test_run_load_works_from_inside_a_running_event_loop(calibration):
    """Jupyter runs cells inside an event loop; the blocking front door must still work there."""
    async def from_a_notebook_cell():
        return run_load(calibration.target(), requests(2, 3), Load("concurrent", 2, warmup=0), progress=False)

    assert asyncio.run(from_a_notebook_cell()).summary.completed == 2


def test_overhead_decomposition(calibration):
    result = measure(calibration, streams=4, tokens=8, rounds=2)
    assert result.valid, result.reasons
    assert 0 <= result.send_path_p50_ms < result.harness_ttft_p50_ms
    assert result.delivery_lag_p50_ms >= 0
    assert result.chunks_per_s > 0


def test_load_shapes_validate_their_arguments():
    with pytest.raises(ValueError, match="rate > 0"):
        Load("poisson")
    with pytest.raises(ValueError, match="unknown load mode"):
        Load("bursty")
    gaps = Load("gamma", rate=10.0, gamma_shape=0.5).arrival_offsets(2000)
    assert gaps[0] == 0 and 150 < gaps[-1] < 250  # mean 0.1 s per request
