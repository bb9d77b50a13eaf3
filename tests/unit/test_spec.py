"""Speculative decoding (lab 04): the Leviathan et al. formulas, acceptance accounting, prompt-lookup drafts,
and the real verification loop on the exported HF copy of the embedded model."""

from __future__ import annotations

import math

import pytest

from spark_labs.speculative import (
    Acceptance,
    alpha_from_tokens_per_step,
    expected_speedup,
    expected_tokens_per_step,
    prompt_lookup_draft,
)

# --- theory -------------------------------------------------------------------------------------------


def test_expected_tokens_per_step_matches_the_series_it_sums():
    # E = 1 + a + a^2 + ... + a^k: the accepted prefix of length i has probability a^i.
    for alpha in (0.0, 0.3, 0.8, 0.99):
        for k in (0, 1, 2, 4, 8):
            assert math.isclose(expected_tokens_per_step(alpha, k), sum(alpha**i for i in range(k + 1)))
    assert expected_tokens_per_step(1.0, 4) == 5.0


def test_expected_speedup_divides_by_the_draft_cost():
    assert math.isclose(expected_speedup(0.8, 4, 0.0), expected_tokens_per_step(0.8, 4))
    assert math.isclose(expected_speedup(0.8, 4, 0.25), expected_tokens_per_step(0.8, 4) / 2.0)
    # A poor draft that costs something is a slowdown.
    assert expected_speedup(0.1, 8, 0.2) < 1.0


def test_alpha_is_recovered_from_tokens_per_step():
    for alpha in (0.2, 0.6, 0.9):
        assert math.isclose(alpha_from_tokens_per_step(expected_tokens_per_step(alpha, 4), 4), alpha, abs_tol=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: expected_tokens_per_step(1.5, 4), "alpha is an acceptance probability"),
    (lambda: expected_tokens_per_step(0.5, -1), "k is the number of drafted tokens"),
    (lambda: expected_speedup(0.5, 4, -0.1), "c is the draft's cost"),
    (lambda: alpha_from_tokens_per_step(7.0, 4), r"between 1 and k\+1 = 5"),
])
def test_bad_formula_input_says_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- accounting and drafts --------------------------------------------------------------------------


def test_acceptance_counts_tested_tokens_for_alpha_and_positions():
    acc = Acceptance(k=4)
    acc.record(drafted=4, accepted=4, emitted=5)  # whole draft kept, plus the bonus token
    acc.record(drafted=4, accepted=1, emitted=2)  # second draft token rejected; tokens 3-4 never tested
    acc.record(drafted=0, accepted=0, emitted=1)  # no n-gram match: a plain decode step
    assert (acc.steps, acc.tokens, acc.drafted, acc.accepted, acc.rejections) == (3, 8, 8, 5, 1)
    assert acc.alpha == 5 / 6
    assert acc.acceptance_rate == 5 / 8
    assert acc.tokens_per_step == 8 / 3
    assert acc.per_position_rate == [1.0, 0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="accepted"):
        acc.record(drafted=2, accepted=3, emitted=4)


def test_prompt_lookup_proposes_what_followed_the_latest_longest_match():
    #           0  1  2  3  4  5  6  7  8  9
    tokens = [5, 6, 7, 8, 9, 5, 6, 1, 2, 5, 6]
    # Last bigram (5, 6) occurs at 0 and 5: the latest (5) wins, followed by 1, 2.
    assert prompt_lookup_draft(tokens, 2) == [1, 2]
    # Trigram (9, 5, 6) would be tried first but only matches itself at the end.
    assert prompt_lookup_draft([9, 5, 6, 7, 9, 5, 6], 3) == [7, 9, 5]
    assert prompt_lookup_draft([1, 2, 3], 4) == []
    with pytest.raises(ValueError, match="k >= 1"):
        prompt_lookup_draft(tokens, 0)


# --- the real verification loop on the embedded model --------------------------------------------------


@pytest.mark.parametrize("layers", [0, 31, 2.5])
def test_early_exit_refuses_a_layer_count_the_model_does_not_have(layers):
    from types import SimpleNamespace

    from spark_labs.speculative.early_exit import truncated_model

    model = SimpleNamespace(config=SimpleNamespace(num_hidden_layers=30))
    with pytest.raises(ValueError, match="keeps between 1 and 30 of the model's 30 decoder layers"):
        truncated_model(model, layers)


def test_check_lossless_names_the_first_difference():
    from spark_labs.speculative.runner import check_lossless

    with pytest.raises(AssertionError, match="differs from the greedy baseline at token 2"):
        check_lossless([1, 2, 3, 4], [1, 2, 9, 4])


# --- the command users type ----------------------------------------------------------------------------


@pytest.mark.parametrize("argv, message", [
    (["--engine", "vllm", "--threads", "1"], "--threads applies to --engine transformers (our loop), not to vLLM"),
    (["--engine", "vllm", "--early-exit", "8"], "--early-exit applies to --engine transformers"),
    (["--engine", "vllm", "--k", "2,4"], "--engine vllm starts one speculative server: give one --k"),
    (["--concurrency", "1,4,16"], "--concurrency applies to --engine vllm"),
    (["--engine", "llamacpp", "--early-exit", "8"], "--early-exit applies to --engine transformers (our loop), not "
                                                    "to llama.cpp"),
    (["--engine", "llamacpp", "--concurrency", "4"], "llama.cpp's server here answers one request at a time"),
    (["--max-tokens", "1"], "--max-tokens must be at least 2"),
])
def test_bench_spec_refuses_flags_that_do_not_apply(argv, message, capsys):
    from spark_labs.cli import bench as main  # `spark-labs bench`, spec included

    assert main(["spec", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--k", "0"], "argument --k: 0 is too small; give 1 to 64"),
    (["--concurrency", "0,4"], "argument --concurrency: 0 is too small; give 1 to 4096"),
    (["--engine", "ollama"], "invalid choice: 'ollama'"),
    (["--workloads", "poetry"], "unknown workload(s) poetry; choose from code-edit"),
])
def test_bench_spec_bad_flags_say_what_to_type(argv, message, capsys):
    from spark_labs.cli import bench as main  # `spark-labs bench`, spec included

    with pytest.raises(SystemExit):
        main(["spec", *argv])
    assert message in capsys.readouterr().err


# --- engines: speculative flags from the registry ------------------------------------------------------


def test_engine_speculative_flags_are_the_engines_own():
    import json

    from spark_labs.engines.registry import ENGINES

    flags = ENGINES["vllm"].speculative_args("ngram", 4)
    assert flags[0] == "--speculative-config"
    assert json.loads(flags[1]) == {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 3,
                                    "prompt_lookup_min": 1}
    assert ENGINES["llamacpp"].speculative_args("ngram", 2) == [
        "--draft_model", "prompt-lookup", "--draft_model_num_pred_tokens", "2"]


@pytest.mark.parametrize("engine, method, k, message", [
    ("vllm", "medusa", 4, "'medusa' is not available for vLLM: the methods spark-labs can start it with are: "
                          "ngram, eagle3, draft"),
    ("trtllm", "ngram", 4, "the methods spark-labs can start it with are: eagle3, draft"),
    ("ollama", "ngram", 4, "spark-labs starts it without speculation only"),
    ("sglang", "eagle3", 4, "needs its draft: the draft model or EAGLE-3 head"),
    ("llamacpp", "ngram", 0, "draft length k must be a whole number >= 1"),
])
def test_unsupported_speculative_config_names_what_the_engine_supports(engine, method, k, message):
    from spark_labs.engines.registry import ENGINES
    from spark_labs.errors import EngineError

    with pytest.raises(EngineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ENGINES[engine].speculative_args(method, k)


def _served(workload: str, text: str, tpot_ms: float, tokens: int = 11):
    """A one-request level as the harness records it: first token after 100 ms, then one every ``tpot_ms``."""
    from spark_labs.bench.load import ClientHealth, Load, RunResult
    from spark_labs.bench.records import Chunk, RequestRecord, TokenCounts
    from spark_labs.speculative.under_load import LevelRun

    ms = 1_000_000
    chunks = [Chunk(100 * ms + int(i * tpot_ms * ms), text if i == 0 else "", 1) for i in range(tokens)]
    record = RequestRecord("r0", "llamacpp", workload, 0, 0, chunks[-1].t_ns, chunks,
                           output_tokens=TokenCounts(tokens, tokens))
    result = RunResult("llamacpp", workload, Load("concurrent", 1), [record], ClientHealth(0, 0, 0, 0, 1.0, None, 1.0),
                       chunks[-1].t_ns / 1e9)
    return LevelRun(workload, 1, result, None)


def test_lookup_table_compares_with_the_mean_of_both_plain_runs():
    from spark_labs.speculative.lookup_server import lookup_table

    plain = [[_served("code-edit", "same", 10)], [_served("code-edit", "same", 30)]]  # drifted: 100 -> 33 tok/s
    table = lookup_table(plain, {4: [_served("code-edit", "same", 5)], 8: [_served("code-edit", "other", 40)]})
    fast, slow = table.iloc[0], table.iloc[1]
    assert (fast.k, fast.requests, fast.tokens) == (4, 1, 11)
    assert fast["plain tok/s"] == pytest.approx((100 + 100 / 3) / 2) and fast["spec tok/s"] == pytest.approx(200)
    assert fast["speed-up"] == pytest.approx(200 / fast["plain tok/s"]) and fast["same output"] == 1.0
    assert fast["E2E speed-up"] == pytest.approx(((0.2 + 0.4) / 2) / 0.15)
    assert slow["same output"] == 0.0 and slow["speed-up"] < 1 and slow["plain answers agree"]
    assert fast["baseline drift"] == pytest.approx(-2 / 3)
    with pytest.raises(ValueError, match="no plain-server run for workload open-chat"):
        lookup_table(plain, {4: [_served("open-chat", "x", 5)]})


def test_bench_spec_llamacpp_prints_the_table_and_fails_on_a_changed_answer(monkeypatch, capsys):
    import pandas as pd

    from spark_labs.cli import bench as main  # `spark-labs bench`, spec included
    from spark_labs.speculative import lookup_server

    asked = {}

    def sweep(plan, ks, workloads, max_tokens, progress, engine=None):
        asked.update(ks=ks, workloads=workloads, max_tokens=max_tokens)
        return pd.DataFrame({"workload": ["code-edit", "open-chat"], "k": [4, 4], "speed-up": [1.5, 0.9],
                             "same output": [1.0, 0.5]})

    monkeypatch.setattr(lookup_server, "run_lookup_sweep", sweep)
    assert main(["spec", "--engine", "llamacpp", "--k", "4", "--workloads", "code-edit,open-chat"]) == 1
    out = capsys.readouterr()
    assert asked == {"ks": (4,), "workloads": ["code-edit", "open-chat"], "max_tokens": 48}
    assert "code-edit" in out.out and "no alpha" in out.out
    assert "differs from the plain server's for open-chat k=4" in out.err


@pytest.mark.parametrize("engine, ks, error", [("llamacpp", (0,), "draft lengths must be whole numbers >= 1"),
                                               ("trtllm", (4,), "not available for TensorRT-LLM")])
def test_lookup_sweep_refuses_bad_input_before_starting_anything(engine, ks, error, monkeypatch):
    import spark_labs.engines
    from spark_labs import plan
    from spark_labs.errors import EngineError
    from spark_labs.speculative.lookup_server import run_lookup_sweep

    monkeypatch.setattr(spark_labs.engines, "launch", lambda *a, **k: pytest.fail("started an engine"))
    with pytest.raises((ValueError, EngineError), match=error):
        run_lookup_sweep(plan("04"), ks=ks, engine=engine, progress=False)


# --- when it stops paying: the concurrency sweep's table -------------------------------------------------


def test_crossover_is_the_lowest_concurrency_where_speculation_lost():
    import pandas as pd

    from spark_labs.speculative.under_load import crossover

    table = pd.DataFrame({"workload": ["code-edit"] * 3 + ["open-chat"] * 3, "concurrency": [16, 1, 4] * 2,
                          "speedup": [0.8, 1.9, 0.95, 0.7, 0.9, 0.6]})
    assert crossover(table, "code-edit") == 4
    assert crossover(table, "open-chat") == 1
    assert crossover(table[table.speedup > 1], "code-edit") is None


def test_level_requests_repeat_the_prompt_per_stream_and_run_to_the_end():
    from spark_labs.speculative.under_load import level_requests
    from spark_labs.speculative.workloads import workload_prompt

    requests = level_requests("code-edit", 4, 48, requests_per_stream=2)
    assert len(requests) == 8 and {r.prompt for r in requests} == {workload_prompt("code-edit")}
    assert not any(r.force_length for r in requests)  # greedy to EOS: both sides generate the same tokens
    with pytest.raises(ValueError, match="at least one request"):
        level_requests("code-edit", 4, 48, requests_per_stream=0)


def test_server_counters_refuse_an_engine_without_them():
    from spark_labs.engines.registry import ENGINES
    from spark_labs.speculative.server_counters import ServerAcceptance

    with pytest.raises(ValueError, match="llama.cpp server reports no spec-decode counters"):
        ServerAcceptance.parse("", ENGINES["llamacpp"])
