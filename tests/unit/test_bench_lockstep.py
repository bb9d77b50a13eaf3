"""Phase-locked closed loops: detection on hand-computed records, and the ramp-up that staggers stream
starts measured against the calibration server (the harness's own fixed-TTFT/TPOT server, used here to
check the *harness's* send times, never an engine)."""

from __future__ import annotations

import json

import pytest

from spark_labs.bench.figures import timeline
from spark_labs.bench.load import ClientHealth, Load, RunResult
from spark_labs.bench.lockstep import arrivals
from spark_labs.bench.records import Chunk, RequestRecord
from spark_labs.bench.report import Report

MS = 1_000_000  # ns


def req(stream: int, sent_ms: float, first_ms: float, tokens: int = 4, tpot_ms: float = 100) -> RequestRecord:
    """A request sent at ``sent_ms`` whose first token came at ``first_ms``, then one token every ``tpot_ms``."""
    chunks = [Chunk(int((first_ms + k * tpot_ms) * MS), "t") for k in range(tokens)]
    return RequestRecord(f"s{stream}-{sent_ms}", "e", "w", scheduled_ns=int(sent_ms * MS), sent_ns=int(sent_ms * MS),
                         end_ns=chunks[-1].t_ns + MS, chunks=chunks, stream=stream)


def lockstep_batched() -> list[RequestRecord]:
    # 4 streams, 2 cycles. Each cycle: sends 0.2 ms apart, one shared prefill → first tokens together at
    # +300 ms, 3 more tokens 100 ms apart, end at +601 ms, everyone restarts at once.
    return [req(s, cycle * 602 + 0.2 * s, cycle * 602 + 300) for cycle in range(2) for s in range(4)]


def staggered() -> list[RequestRecord]:
    # 4 streams started 150 ms apart (a ramp-up); each request: TTFT 50 ms, 4 tokens 100 ms apart → ends +351 ms.
    return [req(s, 150 * s + 352 * cycle, 150 * s + 352 * cycle + 50) for cycle in range(2) for s in range(4)]


def queued_once_then_spread() -> list[RequestRecord]:
    # A one-at-a-time server: 4 requests sent together are answered 351 ms after one another; each stream then
    # restarts when its own answer ends, so the second cycle's sends are 351 ms apart.
    first = [req(s, 0.2 * s, 50 + 351 * s) for s in range(4)]
    second = [req(s, r.end_ns / MS, r.end_ns / MS + 50 + 351 * 3) for s, r in enumerate(first)]
    return first + second


def test_lockstep_with_a_batched_prefill_is_detected_from_send_and_first_token_times():
    seen = arrivals(lockstep_batched())
    # window: half the median TPOT (100 ms) = 50 ms; sends 0.2 ms apart → 2 groups of 4.
    assert seen.window_s == pytest.approx(0.050)
    assert [len(g) for g in seen.groups] == [4, 4]
    assert (seen.group_size, seen.streams, seen.share_together) == (4, 4, 1.0)
    assert seen.first_token_spread_s == 0 and seen.prefill_batch == 4 and seen.lockstep


def test_a_prefill_split_over_two_steps_counts_the_requests_that_shared_one():
    # What vLLM CPU did with 4 streams started together: 3 first tokens in one step, the 4th a step (364 ms) later;
    # then the three restart together and the fourth 358 ms after them.
    cycle = [req(0, 0, 1461), req(1, 0, 1488), req(2, 0, 1488), req(3, 0, 1852)]
    restart = [req(s, 8411, 9889) for s in range(3)] + [req(3, 8769, 10651)]
    seen = arrivals(cycle + restart)
    assert [len(g) for g in seen.groups] == [4, 3, 1]
    assert seen.group_size == 3 and seen.lockstep
    assert seen.prefill_batch == 3  # groups: 3 of 4 within 50 ms, then 3 of 3


def test_staggered_streams_are_not_lockstep():
    seen = arrivals(staggered())
    # Sends at 0,150,300,450 then 352,502,652,802 ms: no two closer than 52 ms.
    assert [len(g) for g in seen.groups] == [1] * 8
    assert seen.group_size == 1 and seen.share_together == 0 and not seen.lockstep


def test_a_serial_server_unlocks_after_the_first_cycle():
    seen = arrivals(queued_once_then_spread())
    assert [len(g) for g in seen.groups] == [4, 1, 1, 1, 1]
    assert seen.share_together == 0.5  # 4 of 8
    assert seen.group_size == 1 and not seen.lockstep and seen.started_together
    # The first group's first tokens came one after another: a queue, not one prefill batch.
    assert seen.first_token_spread_s == pytest.approx(1.053) and seen.prefill_batch == 1


def test_too_few_records_to_tell():
    assert arrivals(lockstep_batched()[:1]) is None


def run_of(records: list[RequestRecord], load: Load, ramp_up_s: float) -> RunResult:
    health = ClientHealth(0, 0, 0, 0, 10.0, None, 4.0)
    source = "asked" if load.ramp_up is not None else "one warm-up request's E2E"
    return RunResult("e", "w", load, records, health, 1.2, ramp_up_s=ramp_up_s, ramp_up_source=source)


def test_report_diagnosis_names_the_regime_and_the_batched_prefill(tmp_path):
    report = Report([run_of(lockstep_batched(), Load("concurrent", 4, ramp_up=0), 0.0),
                     run_of(staggered(), Load("concurrent", 4), 0.6)])
    frame = report.frame()
    assert frame["regime"].tolist() == ["lockstep start (asked)", "ramp-up 0.6 s (one warm-up request's E2E)"]
    assert frame["load"].tolist() == ["concurrency 4, lockstep", "concurrency 4"]
    assert frame["lockstep"].tolist() == [True, False]
    lines = [line for line in report.diagnosis() if "arrived in lockstep" in line]
    assert lines == [("e · w · concurrency 4, lockstep: requests arrived in lockstep (4 at a time; 100% of requests "
                      "were sent within 50.0 ms, half a decode step, of another): TTFT includes a batched "
                      "prefill of 4. "
                      "Staggered stream starts (ramp-up, the default) measure the steady state instead.")]
    # The regime is kept in the JSON and survives a reload.
    saved = json.loads(report.to_json(tmp_path / "r.json"))
    assert [r["regime"] for r in saved["runs"]] == frame["regime"].tolist()
    assert Report.from_json(tmp_path / "r.json").frame()["regime"].tolist() == frame["regime"].tolist()


def test_queueing_lockstep_is_not_called_a_batched_prefill():
    first_cycle = queued_once_then_spread()[:4]
    (line,) = [x for x in Report([run_of(first_cycle, Load("concurrent", 4, ramp_up=0), 0.0)]).diagnosis()
               if "arrived in lockstep" in x]
    assert "one after another (first tokens 1053 ms apart)" in line and "waiting behind up to 3 others" in line
    assert "TTFT includes a batched prefill" not in line


def test_a_lockstep_start_that_did_not_last_is_named_for_the_first_round_only():
    run = run_of(queued_once_then_spread(), Load("concurrent", 4, ramp_up=0), 0.0)
    (line,) = [x for x in Report([run]).diagnosis() if "sent together" in x]
    assert line == ("e · w · concurrency 4, lockstep: the first 4 requests were sent together and were answered one "
                    "after another, so their TTFTs include waiting in the server's queue; after that the streams "
                    "drifted apart, so only the first round measured a lockstep start.")
    assert not [x for x in Report([run_of(staggered(), Load("concurrent", 4), 0.6)]).diagnosis() if "together" in x]


def test_timeline_shows_stream_lanes_starts_and_lockstep_lines():
    report = Report([run_of(lockstep_batched(), Load("concurrent", 4, ramp_up=0), 0.0),
                     run_of(staggered(), Load("concurrent", 4), 0.6)])
    locked, spread = timeline(report, 0), timeline(report, 1)
    starts = [t for t in locked.data if t.name == "stream start"]
    assert sorted(starts[0].y) == [0, 1, 2, 3]
    assert len(locked.layout.shapes) == 2  # one dotted line per group sent together
    assert len(spread.layout.shapes) == 0
    assert "lockstep: 4 sent at a time" in locked.layout.title.text
    assert "arrivals staggered" in spread.layout.title.text


def test_ramp_up_is_validated_with_a_clear_message():
    with pytest.raises(ValueError, match="seconds >= 0"):
        Load("concurrent", 4, ramp_up=-1)
    with pytest.raises(ValueError, match="closed loop"):
        Load("poisson", rate=2.0, ramp_up=1.0)
    assert Load("concurrent", 4).stream_offsets(2.0) == [0.0, 0.5, 1.0, 1.5]


# ---- against the calibration server: does the ramp-up really stagger the sends? ----

TTFT_MS, TPOT_MS, TOKENS = 40.0, 20.0, 5  # one request alone: 40 + 4 × 20 = 120 ms


# ---- one real engine: both regimes side by side on llama.cpp (the lab 01 helper) ----


def test_bench_run_rejects_a_ramp_up_for_open_loop_arrivals(capsys):
    from spark_labs.bench.cli import main

    with pytest.raises(SystemExit) as exit_:  # a usage error: refused before anything starts
        main(["run", "--url", "http://127.0.0.1:9", "--model", "m", "--mode", "poisson", "--rate", "2",
              "--ramp-up", "1"])
    assert exit_.value.code == 2
    assert "spark-labs bench run: error: ramp_up staggers the streams of a closed loop" in capsys.readouterr().err


def test_the_documented_regime_commands_parse():
    """The docs' command lines that choose a start regime, exactly as written there, parse (without running)."""
    import shlex
    from pathlib import Path

    from spark_labs.bench.cli import _parser

    docs = Path(__file__).parents[2] / "docs" / "bench.md"
    lines = [line.split("#")[0] for line in docs.read_text().splitlines()
             if line.startswith("spark-labs bench ") and ("regimes" in line or "--ramp-up" in line)]
    assert len(lines) == 2, lines
    parser, _ = _parser()
    for line in lines:
        args = parser.parse_args(shlex.split(line)[2:])
        assert args.concurrency == [4]
        assert getattr(args, "ramp_up", None) in (None, 0.0)
