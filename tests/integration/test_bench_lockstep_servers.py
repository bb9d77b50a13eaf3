"""Phase-locked closed loops: detection on hand-computed records, and the ramp-up that staggers stream
starts measured against the calibration server (the harness's own fixed-TTFT/TPOT server, used here to
check the *harness's* send times, never an engine)."""

from __future__ import annotations

import json

from spark_labs.bench.load import Load, RunResult, run_load
from spark_labs.bench.lockstep import arrivals
from spark_labs.bench.report import Report

MS = 1_000_000  # ns


# ---- against the calibration server: does the ramp-up really stagger the sends? ----

TTFT_MS, TPOT_MS, TOKENS = 40.0, 20.0, 5  # one request alone: 40 + 4 × 20 = 120 ms
CALIBRATION_MS = (TTFT_MS, TPOT_MS)  # the calibration fixture (conftest) serves this timing


def calibration_requests(n: int):
    from spark_labs.bench.clients import BenchRequest

    return [BenchRequest(f"r{i}", "x", TOKENS, "calibration", force_length=False) for i in range(n)]


def first_sends_ms(result: RunResult) -> list[float]:
    t0 = min(r.sent_ns for r in result.records)
    return [min(r.sent_ns for r in result.records if r.stream == s) / MS - t0 / MS for s in range(4)]


def test_lockstep_start_sends_together_and_is_detected(calibration):
    result = run_load(calibration.target(), calibration_requests(12), Load("concurrent", 4, warmup=0, ramp_up=0),
                      progress=False)
    assert result.ramp_up_s == 0 and result.regime == "lockstep start (asked)"
    assert max(first_sends_ms(result)) < 10
    seen = arrivals(result.records)
    assert seen.lockstep and seen.group_size == 4, [len(g) for g in seen.groups]


def test_ramp_up_staggers_stream_starts(calibration):
    result = run_load(calibration.target(), calibration_requests(12),
                      Load("concurrent", 4, warmup=0, ramp_up=0.12), progress=False)
    # Streams start 30 ms apart (k × 120 ms / 4): never early, and late only by the event loop's wake-up.
    for got, want in zip(first_sends_ms(result), [0, 30, 60, 90]):
        assert want - 1 <= got < want + 20
    assert not arrivals(result.records).lockstep


def test_the_default_ramp_up_is_one_warm_up_request(calibration):
    result = run_load(calibration.target(), calibration_requests(8), Load("concurrent", 4), progress=False)
    assert result.ramp_up_source == "one warm-up request's E2E"
    assert 0.120 <= result.ramp_up_s < 0.250  # the warm-up's measured E2E: 120 ms configured, never less
    assert not arrivals(result.records).lockstep


# ---- one real engine: both regimes side by side on llama.cpp (the lab 01 helper) ----

def test_both_start_regimes_side_by_side_on_llamacpp(llamacpp_engine):
    """llama.cpp serves one request at a time: requests sent together queue instead of sharing a prefill,
    and each stream then restarts when its own answer ends, so the lock does not last."""
    from spark_labs.bench import compare_start_regimes

    report = Report(meta={})
    table, fig = compare_start_regimes(llamacpp_engine, concurrency=2, requests_per_stream=2, max_tokens=8,
                                       report=report, progress=False)
    assert table["start"].tolist() == ["lockstep start", "ramp-up"]
    assert table["requests"].tolist() == [4, 4]
    locked, ramped = report.runs
    assert locked.ramp_up_s == 0 and locked.load.label == "concurrency 2, lockstep"
    assert ramped.ramp_up_source == "one warm-up request's E2E" and ramped.ramp_up_s > 0
    t0 = [min(r.sent_ns for r in run.records) for run in (locked, ramped)]
    locked_starts = sorted(min(r.sent_ns for r in locked.records if r.stream == s) - t0[0] for s in (0, 1))
    ramped_starts = sorted(min(r.sent_ns for r in ramped.records if r.stream == s) - t0[1] for s in (0, 1))
    assert locked_starts[1] < 10 * MS
    assert ramped_starts[1] >= 0.9 * ramped.ramp_up_s / 2 * 1e9  # stream 1 starts half a ramp-up later
    first_group = arrivals(locked.records).groups[0]
    assert len(first_group) == 2
    spread = abs(first_group[1].content_chunks[0].t_ns - first_group[0].content_chunks[0].t_ns)
    assert spread > arrivals(locked.records).window_s * 1e9  # answered one after another, not one batch
    assert fig.layout.annotations[0].text.startswith("lockstep start: TTFT p50")


def test_bench_regimes_command_writes_both_timelines(llamacpp_engine, tmp_path):
    from spark_labs.bench.cli import main

    code = main(["regimes", "--url", llamacpp_engine.url, "--model", llamacpp_engine.served_name, "--name", "llamacpp",
                 "--concurrency", "2", "--requests-per-stream", "1", "--max-tokens", "4", "--out", str(tmp_path)])
    assert code == 0
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [run["load"]["ramp_up"] for run in saved["runs"]] == [0.0, None]
    assert saved["runs"][1]["regime"].startswith("ramp-up ")
    assert "Plotly.newPlot" in (tmp_path / "regimes.html").read_text()


def test_gateway_ab_keeps_one_fixed_start_for_both_sides(calibration):
    """The default ramp-up is sized by each run's own warm-up, which would differ between the direct and the
    gateway side; the gateway benchmark therefore asks for the lockstep start its docs report."""
    from spark_labs.bench.selfcheck.gateway_overhead import measure_gateway

    result = measure_gateway(calibration.target(), concurrency=2, num_requests=4, max_tokens=3, rounds=1)
    assert result.load == "concurrency 2, lockstep" and result.errors == 0
