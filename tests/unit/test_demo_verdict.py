"""The verdict `make demo` ends with, on synthetic reports whose every number is known: winners follow the data,
a gap inside the noise or an engine without a valid run is said as such, and the demo prints it last."""

from __future__ import annotations

from statistics import fmean, median

import pytest

from spark_labs import demo
from spark_labs.bench import Chunk, Load, Report, RequestRecord, RunResult, TokenCounts
from spark_labs.bench.load import ClientHealth
from spark_labs.bench.report import EngineInfo
from spark_labs.verdict import MIN_RATIO, USES, WINDOWS, permutation_p, render, throughput_windows, verdict

MS = 1_000_000  # ns
JITTER = (0.97, 1.0, 1.03, 0.99, 1.02, 0.98, 1.01, 1.04)  # per-request spread, fixed so every number is known
USE = {use.name: use for use in USES}


def record(i: int, engine: str, workload: str, ttft_ms: float, tpot_ms: float, start: int, tokens: int = 16,
           prompt: int = 200, error: str | None = None) -> RequestRecord:
    times = [start + round((ttft_ms + k * tpot_ms) * MS) for k in range(tokens)]
    return RequestRecord(f"{engine}-{i}", engine, workload, scheduled_ns=start, sent_ns=start, end_ns=times[-1],
                         chunks=[Chunk(t, "x", 1) for t in times], prompt_tokens=TokenCounts(server=prompt),
                         output_tokens=TokenCounts(server=tokens), error=error)


def health(valid: bool = True) -> ClientHealth:
    return ClientHealth(0.0, 0.0, 0.0, 0.0, 5.0, None, 1.0, reasons=[] if valid else ["loop lag 80 ms"])


def run(engine: str, workload: str, concurrency: int, ttft_ms: float, tpot_ms: float, n: int = 8,
        valid: bool = True) -> RunResult:
    # A closed loop: `concurrency` streams, each sending its next request when the previous one ends.
    clocks = [0] * concurrency
    records = []
    for i, j in zip(range(n), JITTER * 2):
        records.append(record(i, engine, workload, ttft_ms * j, tpot_ms * j, clocks[i % concurrency]))
        clocks[i % concurrency] = records[-1].end_ns
    return RunResult(engine, workload, Load("concurrent", concurrency), records, health(valid), wall_s=1.0)


def report(speeds: dict[str, tuple[float, float, int, tuple[int, ...]]], skipped: dict[str, str] | None = None,
           invalid: frozenset[str] = frozenset()) -> Report:
    """speeds: engine -> (TTFT ms, TPOT ms, requests per run, chat concurrency levels), as the demo runs them."""
    rep = Report(meta={"skipped": dict(skipped or {})})
    for engine, (ttft, tpot, n, levels) in speeds.items():
        rep.engines[engine] = EngineInfo(engine, engine, "q4_1")
        for workload in ("prefill-heavy", "decode-heavy"):
            rep.runs.append(run(engine, workload, 1, ttft, tpot, n, engine not in invalid))
        for level in levels:  # under load each request waits for the others: TTFT and TPOT grow with the level
            rep.runs.append(run(engine, "chat", level, ttft * level, tpot * level, n, engine not in invalid))
    return rep


def calls(rep: Report) -> dict:
    return {call.use.name: call for call in verdict(rep)}


def test_clear_winner_with_the_number_behind_it():
    # The demo's shape: one engine with 8 requests at 1/2/4, the slow one with 2 requests at 1/2.
    rep = report({"fast": (20, 8, 8, (1, 2, 4)), "slow": (200, 70, 2, (1, 2))})
    got = calls(rep)
    assert {name: c.winner for name, c in got.items()} == dict.fromkeys(USE, "fast")
    # The medians of the jittered requests: 8 of "fast", 2 of "slow".
    fast, slow = 20 * median(JITTER), 200 * median(JITTER[:2])
    expected = f"TTFT p50 {fast:.3g} ms (slow {slow:.3g} ms: {slow / fast:.2g}× better)"
    assert expected in got["one user, interactive"].line
    decode = median(1e3 / (8 * j) for j in JITTER)
    assert f"decode p50 {decode:.3g} tok/s" in got["long answers (reports, code)"].line
    load = got["many users at once"]
    assert load.concurrency == 2 and "at 2 concurrent" in load.line  # the highest level both engines ran
    assert load.p_value < 0.05


@pytest.mark.parametrize("first", ["a", "b"])
def test_winner_follows_the_data(first):
    second = "b" if first == "a" else "a"
    rep = report({first: (20, 8, 8, (1, 2)), second: (60, 24, 8, (1, 2))})
    assert {c.winner for c in verdict(rep)} == {first}


def test_within_noise_is_no_winner():
    # 2 % apart with a ±4 % spread per request: the permutation test cannot tell them apart.
    rep = report({"a": (20, 8, 8, (1, 2)), "b": (20.4, 8.16, 8, (1, 2))})
    for call in verdict(rep):
        assert call.winner is None and call.line.startswith("no clear winner"), call.line
        assert "within noise" in call.line and "8 vs 8" in call.line


def test_too_few_requests_to_tell_apart():
    rep = report({"a": (20, 8, 2, (1, 2)), "b": (60, 24, 2, (1, 2))})
    call = calls(rep)["one user, interactive"]
    assert call.winner is None and "too few requests to tell apart (2 vs 2 requests)" in call.line


def test_a_gap_smaller_than_a_load_change_is_not_called():
    # Every request identical (no spread): 5 % apart is significant, but under MIN_RATIO.
    rep = report({"a": (20, 8, 8, (1, 2)), "b": (21, 8.4, 8, (1, 2))})
    for run_ in rep.runs:
        for r in run_.records:  # drop the jitter: same timings for every request of a run
            first = run_.records[0]
            r.chunks = [Chunk(c.t_ns - first.scheduled_ns + r.scheduled_ns, c.text, c.tokens) for c in first.chunks]
            r.end_ns = first.end_ns - first.scheduled_ns + r.scheduled_ns
    call = calls(rep)["one user, interactive"]
    assert call.p_value < 0.05 and call.winner is None
    assert f"under {MIN_RATIO - 1:.0%} apart" in call.line


def test_a_missing_engine_is_said():
    rep = report({"a": (20, 8, 8, (1, 2))}, skipped={"b": "not installed here"})
    for call in verdict(rep):
        assert call.winner is None and call.line.startswith("no comparison: only a measured"), call.line
        assert "missing b" in call.line
    assert f"TTFT p50 {20 * median(JITTER):.3g} ms" in calls(rep)["one user, interactive"].line


def test_a_run_whose_client_fell_behind_does_not_count():
    rep = report({"a": (60, 24, 8, (1, 2)), "b": (20, 8, 8, (1, 2))}, invalid=frozenset({"b"}))
    assert all(c.winner is None and "missing b" in c.line for c in verdict(rep))


def test_no_common_level_under_load():
    rep = report({"a": (20, 8, 8, (1,)), "b": (60, 24, 8, (1,))})
    call = calls(rep)["many users at once"]
    assert call.winner is None and "no concurrency level above 1" in call.line


def test_permutation_p():
    assert permutation_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0
    # 8 vs 8, completely apart (ties inside each group too): only this split and its mirror are as extreme.
    assert permutation_p([1.0] * 8, [2.0] * 8) == pytest.approx(2 / 12870)
    # 8 vs 2 apart, as the demo's engines are: 2 of the 45 splits.
    assert permutation_p([float(x) for x in range(8)], [50.0, 60.0]) == pytest.approx(2 / 45)
    # Interleaved: nothing to tell.
    assert permutation_p([1.0, 3.0, 5.0, 7.0], [2.0, 4.0, 6.0, 8.0]) > 0.5
    # 12 vs 12 (2.7 million splits) is sampled, with a fixed seed: same answer every time, still tiny.
    a, b = [float(x) for x in range(12)], [float(x) for x in range(50, 62)]
    assert permutation_p(a, b) == permutation_p(a, b) < 0.001


def test_throughput_slices_add_up_to_the_runs_throughput():
    chat = run("a", "chat", 4, 20, 8)
    slices = throughput_windows(chat)
    assert len(slices) == WINDOWS and fmean(slices) == pytest.approx(chat.summary.output_throughput)


def test_render_is_short_and_points_at_the_report(tmp_path):
    rep = report({"fast": (20, 8, 8, (1, 2, 4)), "slow": (200, 70, 2, (1, 2))})
    text = render(rep, tmp_path / "demo")
    lines = text.splitlines()
    assert lines[0].startswith("Verdict") and len(lines) == len(USES) + 2
    assert all(name in text for name in USE)
    assert str(tmp_path / "demo" / "report.html") in lines[-1] and "also .md, .json" in lines[-1]
    assert max(map(len, lines[:-1])) <= 120


def test_demo_ends_with_the_verdict(tmp_path, monkeypatch, capsys):
    rep = report({"fast": (20, 8, 8, (1, 2, 4)), "slow": (200, 70, 2, (1, 2))})
    seen = {}

    def fake_compare(plan, engines, **kwargs):
        seen["engines"] = engines
        return rep

    monkeypatch.setattr("spark_labs.bench.compare_engines", fake_compare)
    monkeypatch.setattr("spark_labs.profiles.plan", lambda lab: object())
    monkeypatch.setattr(Report, "to_html", lambda self, path=None: path and path.write_text("<html>"))
    assert demo.main(["--out", str(tmp_path / "out"), "--engines", "llamacpp,vllm"]) == 0  # engines it knows
    out = capsys.readouterr().out.rstrip().splitlines()
    assert seen["engines"] == ["llamacpp", "vllm"]
    assert out[-len(USES) - 2].startswith("Verdict") and "report.html" in out[-1]
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.html", "report.md", "report.json"}
