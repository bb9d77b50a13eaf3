"""The harness against the real engines on the embedded model (session fixtures from conftest)."""

from __future__ import annotations

import pytest

from spark_labs.bench import Load, Report, Target, Workload, measure, micro, new_report, run_load
from spark_labs.bench.experiments import add_engine
from spark_labs.bench.metrics import request_metrics
from spark_labs.bench.tokens import count_tokens, load_tokenizer
from spark_labs.profiles import plan


@pytest.fixture(scope="module")
def lab_plan():
    return plan("01")


@pytest.fixture(scope="module")
def tokenizer(lab_plan):
    return load_tokenizer(lab_plan.model)


@pytest.fixture(scope="module")
def two_engine_report(lab_plan, tokenizer, llamacpp_engine, vllm_engine):
    report = new_report(lab_plan, "test")
    for engine in (llamacpp_engine, vllm_engine):
        target = add_engine(report, engine, lab_plan.model)
        measure(report, target, Workload("chat", "short_chat", 4, 12), Load("concurrent", 2), tokenizer, False)
    return report


@pytest.mark.parametrize("engine_fixture", ["llamacpp_engine", "vllm_engine"])
def test_forced_output_length_is_honoured_and_counted_three_ways(engine_fixture, request, tokenizer):
    engine = request.getfixturevalue(engine_fixture)
    result = run_load(Target.from_engine(engine), Workload("long", "short_chat", 2, 40).requests(),
                      Load("concurrent", 2), progress=False)
    count_tokens(result.records, tokenizer)
    for r in result.records:
        assert r.ok, r.error
        # llama.cpp honours min_tokens, vLLM ignore_eos: either way every request decodes all 40 tokens.
        assert request_metrics(r).output_tokens == 40, r.output_tokens
        # Our tokenizer re-derives the count from text; adjacent tokens may merge, never by more than one here.
        assert abs(r.output_tokens.client - 40) <= 1, r.output_tokens
        assert r.output_tokens.disagreement() is None
    assert not [w for w in result.summary.warnings if "short of the forced length" in w]


def test_vllm_server_histograms_agree_with_our_clock(vllm_engine, tokenizer):
    target = Target.from_engine(vllm_engine)
    workload = Workload("syn", "synthetic", 8, 16, prompt_tokens=48)
    result = run_load(target, workload.requests(tokenizer), Load("concurrent", 4), progress=False)
    rows = {r["metric"]: r for r in result.server_comparison()}
    assert rows["requests"]["server_count"] == 8  # the warm-up request is outside the scrape window
    assert rows["output_tokens"]["server_count"] == 8 * 16
    for metric in ("ttft", "tpot", "e2e"):
        # Same requests, two clocks: the difference is HTTP + frontend time, a few percent at most.
        assert abs(rows[metric]["mean_diff_pct"]) < 10, rows[metric]


def test_wrong_model_name_is_reported_per_request(vllm_engine):
    target = Target("vllm", vllm_engine.url, "no-such-model")
    result = run_load(target, Workload("chat", "short_chat", 1, 4).requests(), Load("sequential", warmup=0),
                      progress=False)
    assert result.records[0].error.startswith("HTTP 404")


def test_report_roundtrips_and_renders_offline(two_engine_report, tmp_path):
    report = two_engine_report
    assert report.engine_names == ["llamacpp", "vllm"]
    frame = report.frame()
    assert (frame["completed"] == 4).all() and frame["mbu"].between(0, 1.5).all()
    again = Report.from_json(report.to_json(tmp_path / "r.json"))
    assert again.frame()["ttft_p50"].tolist() == pytest.approx(frame["ttft_p50"].tolist())
    page = report.to_html(tmp_path / "r.html")
    assert "<script src=" not in page and "Plotly.newPlot" in page  # plotly.js inlined: opens offline
    markdown = report.to_markdown()
    assert "| llamacpp |" in markdown and "Which engine for which use case" in markdown


def test_micro_pp_tg_through_the_http_api(llamacpp_engine, tokenizer):
    frame = micro(Target.from_engine(llamacpp_engine), tokenizer, pp=128, tg=16, repeats=1).set_index("test")
    assert frame.loc["pp128", "tok_s_mean"] > 0 and frame.loc["tg16", "tok_s_mean"] > 0


def test_bench_cli_run_against_a_running_server(llamacpp_engine, tmp_path):
    from spark_labs.bench.cli import main

    code = main(["run", "--url", llamacpp_engine.url, "--model", llamacpp_engine.served_name, "--name", "llamacpp",
                 "--concurrency", "2", "--num-requests", "2", "--max-tokens", "8", "--out", str(tmp_path)])
    assert code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "report.html", "report.md"}


def test_plain_http_routes_go_through_the_same_machinery(llamacpp_engine):
    """Non-streaming routes: one chunk per response, so TTFT = E2E and req/s is the throughput."""
    from spark_labs.bench import BenchRequest

    target = Target("llamacpp-http", llamacpp_engine.url, llamacpp_engine.served_name, protocol="http")
    get_models = [BenchRequest(f"m{i}", "", 0, "models", force_length=False, path="/v1/models") for i in range(4)]
    chat = {"model": llamacpp_engine.served_name, "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]}
    post_chat = [BenchRequest(f"c{i}", "", 0, "chat-json", force_length=False, path="/v1/chat/completions",
                              body=chat) for i in range(2)]
    for requests in (get_models, post_chat):
        result = run_load(target, requests, Load("concurrent", 2, warmup=0), progress=False)
        s = result.summary
        assert s.failed == 0, result.records[0].error
        assert s.request_throughput > 0
        assert s.distributions["e2e"].p50 == pytest.approx(s.distributions["ttft"].p50, rel=0.05)
        assert not s.warnings or all("single token" not in w for w in s.warnings)
    assert '"content"' in result.records[0].text
