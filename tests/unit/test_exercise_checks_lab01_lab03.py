"""The checks behind labs 01 and 03's checkpoints, without a notebook: the right function passes, each usual
mistake is named (the notebook tests push the same mistakes through the real checkpoint cells)."""

from __future__ import annotations

import pandas as pd
import pytest

from spark_labs import sizing
from spark_labs.bench import knee_problems, ttft_tpot_problems, use_case_problems
from spark_labs.bench.learner_functions import (
    KNEE_MISTAKES,
    TTFT_TPOT_MISTAKES,
    USE_CASE_FRAMES,
    USE_CASE_RULES,
    _apply_rule,
)
from spark_labs.variants import break_even_problems, pick_problems, prediction_problems
from spark_labs.variants.checks import BREAK_EVEN_MISTAKES


def right_ttft_tpot(record):
    ttft = (record.content_chunks[0].t_ns - record.scheduled_ns) / 1e9
    e2e = (record.end_ns - record.scheduled_ns) / 1e9
    return ttft, (e2e - ttft) / (record.output_tokens.best - 1)


def test_the_right_ttft_tpot_passes():
    assert ttft_tpot_problems(right_ttft_tpot) == []


@pytest.mark.parametrize("mistake", TTFT_TPOT_MISTAKES)
def test_each_ttft_tpot_mistake_is_named(mistake):
    function, message = TTFT_TPOT_MISTAKES[mistake]
    assert message in ttft_tpot_problems(function)[0]


def right_knee(levels, throughput):
    points = sorted(zip(levels, throughput))
    for (c0, t0), (c1, t1) in zip(points, points[1:]):
        if t0 > 0 and (t1 / t0 - 1) / (c1 / c0 - 1) < 0.25:
            return c0
    return None


def test_the_right_knee_passes_and_a_division_by_zero_is_named():
    assert knee_problems(right_knee, {"x": ([1, 2, 4], [5.0, 9.0, 9.5])}) == []

    def unguarded(levels, throughput):
        points = sorted(zip(levels, throughput))
        for (c0, t0), (c1, t1) in zip(points, points[1:]):
            if (t1 / t0 - 1) / (c1 / c0 - 1) < 0.25:
                return c0
        return None
    assert "divided by zero" in knee_problems(unguarded)[0]


@pytest.mark.parametrize("mistake", KNEE_MISTAKES)
def test_each_knee_mistake_is_named(mistake):
    function, message = KNEE_MISTAKES[mistake]
    assert message in knee_problems(function)[0]


def test_the_made_up_results_tell_every_slip_the_notebook_tests_apart():
    frame = USE_CASE_FRAMES[0]
    right = {use: _apply_rule(frame, rule) for use, rule in USE_CASE_RULES.items()}
    assert use_case_problems(lambda f: {use: _apply_rule(f, rule) for use, rule in USE_CASE_RULES.items()}, frame) == []
    slips = {"Many users at once": ("chat", "one", "output_throughput", "max"),
             "Interactive chat, one user": ("chat", "all", "ttft_p50", "min"),
             "Long documents (summarise, RAG)": ("prefill-heavy", "all", "ttft_p50", "min"),
             "Long answers (reports, code)": ("decode-heavy", "all", "output_throughput", "max")}
    for use, slip in slips.items():
        assert _apply_rule(frame, slip) != right[use], use


PARAMS = sizing.param_count(sizing.SMOLLM2_135M)
FORMATS = {"F16": "fp16", "Q8_0": "q8_0", "Q4_K_M": "q4_k_m", "bf16": "bf16", "NF4": "nf4"}
BITS = {"F16": 16, "Q8_0": 8 + 16 / 32, "Q4_K_M": (5 * 4.5 + 6.5625) / 6, "bf16": 16, "NF4": 4 + 32 / 64}


def predictor(bits, divisor=8, mb=1e6):
    return lambda v: (PARAMS * bits[v] / divisor / mb, 24e9 / (PARAMS * bits[v] / divisor))


@pytest.mark.parametrize("bits, predict, says", [
    (BITS, predictor(BITS), None),
    ({**BITS, "NF4": 4}, None, "leaves out the absmax scales"),
    ({**BITS, "Q4_K_M": 4.5}, None, "ignores Q4_K_M's mix"),
    ({**BITS, "Q8_0": 8}, None, "Q8_0: 8 bits counts the int8 values only"),
    ({k: v / 8 for k, v in BITS.items()}, None, "is bytes per weight, not bits"),
    (BITS, predictor(BITS, divisor=1), "divide by 8"),
    (BITS, predictor(BITS, mb=2**20), "MiB"),
])
def test_bits_and_sizes(bits, predict, says):
    problems = prediction_problems(bits, predict or predictor(bits), FORMATS, PARAMS, 24e9)
    assert (problems == []) if says is None else says in "; ".join(problems)


TABLE = pd.DataFrame({"engine": ["s", "s", "s", "t", "t"], "size_mb": [270.0, 145, 105, 269, 116],
                      "decode_tok_s": [56.0, 67, 60, 11, 12.4], "perplexity": [9.73, 9.81, 10.48, 9.82, 11.24]},
                     index=["F16", "Q8_0", "Q4_K_M", "bf16", "NF4"])


def picker(same_engine=True, speed=1, quality=1, pick="idxmin"):
    def my_pick(table, reference):
        base = table.loc[reference]
        rows = table[table["engine"] == base["engine"]] if same_engine else table
        ok = rows[(speed * rows["decode_tok_s"] >= speed * 1.15 * base["decode_tok_s"])
                  & (quality * rows["perplexity"] <= quality * 1.05 * base["perplexity"])]
        return None if ok.empty else getattr(ok["size_mb"], pick)()
    return my_pick


@pytest.mark.parametrize("kwargs, says", [({}, None), ({"same_engine": False}, "not by the reference's engine"),
                                          ({"quality": -1}, "check the direction of that test"),
                                          ({"speed": -1}, "check the direction of the speed test"),
                                          ({"pick": "idxmax"}, "pick the smallest")])
def test_picks(kwargs, says):
    problems = pick_problems(picker(**kwargs), TABLE)
    assert (problems == []) if says is None else says in "; ".join(problems)


def right_break_even(eager, compiled):
    saved = 1 / eager["decode_tok_s"] - 1 / compiled["decode_tok_s"]
    return None if saved <= 0 else (compiled["build_s"] - eager["build_s"]) / saved


def test_the_right_break_even_passes_and_a_slower_compile_must_give_none():
    measured = ({"build_s": 0.3, "decode_tok_s": 13.0}, {"build_s": 54.0, "decode_tok_s": 19.4})
    assert break_even_problems(right_break_even, measured) == []
    unguarded = lambda e, c: (c["build_s"] - e["build_s"]) / (1 / e["decode_tok_s"] - 1 / c["decode_tok_s"])  # noqa: E731
    assert "never pays back" in break_even_problems(unguarded, measured)[0]


@pytest.mark.parametrize("mistake", BREAK_EVEN_MISTAKES)
def test_each_break_even_mistake_is_named(mistake):
    function, message = BREAK_EVEN_MISTAKES[mistake]

    def guarded(eager, compiled):
        return None if compiled["decode_tok_s"] <= eager["decode_tok_s"] else function(eager, compiled)
    assert message in break_even_problems(guarded)[0]
