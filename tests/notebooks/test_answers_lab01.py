"""Lab 01's checkpoints against the answers learners type: the reference's pass, each wrong one fails and its
message names the mistake. Lab 01 runs once (a rehearsal: the grader's two kernels, real engines), then every
answer goes through the real checkpoint cell on that run's data. The measuring loop's wrong answers (01.2)
run last and measure the profile's first engine only, so they cost about a minute each."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
)

TTFT = "(record.content_chunks[0].t_ns - record.scheduled_ns) / 1e9"
E2E = "(record.end_ns - record.scheduled_ns) / 1e9"
TPOT = "(e2e - ttft) / (record.output_tokens.best - 1)"


def answer_01_1(ttft=TTFT, e2e=E2E, tpot=TPOT) -> str:
    return f"ttft = {ttft}\ne2e = {e2e}\ntpot = {tpot}"


WRONG_01_1 = {
    "TTFT from sent, not scheduled": (answer_01_1(ttft="(record.content_chunks[0].t_ns - record.sent_ns) / 1e9",
                                                  e2e="(record.end_ns - record.sent_ns) / 1e9"),
                                      "TTFT is counted from sent_ns"),
    "TPOT over n tokens, not n - 1": (answer_01_1(tpot="(e2e - ttft) / record.output_tokens.best"),
                                      "TPOT divides by n output tokens"),
    "milliseconds": (answer_01_1(ttft="(record.content_chunks[0].t_ns - record.scheduled_ns) / 1e6",
                                 e2e="(record.end_ns - record.scheduled_ns) / 1e6"), "milliseconds"),
    "the first chunk, though it carried no text": (
        answer_01_1(ttft="(record.chunks[0].t_ns - record.scheduled_ns) / 1e9"), "first chunk with content"),
    "chunks counted as tokens": (answer_01_1(tpot="(e2e - ttft) / (len(record.content_chunks) - 1)"),
                                 "TPOT divides by the number of chunks"),
}

USE_CASES = """chat_one = frame[(frame["workload"] == "chat") & ({one})]
chat_top = frame[(frame["workload"] == "chat") & (frame["concurrency"] == {top})]
prefill = frame[frame["workload"] == "prefill-heavy"]
decode = frame[frame["workload"] == "decode-heavy"]
return {{
    "Interactive chat, one user": chat_one.loc[chat_one["ttft_p50"].idxmin(), "engine"],
    "Long documents (summarise, RAG)": prefill.loc[prefill["{prefill}"].{prefill_way}(), "engine"],
    "Long answers (reports, code)": decode.loc[decode["{decode}"].idxmax(), "engine"],
    "Many users at once": chat_top.loc[chat_top["output_throughput"].idxmax(), "engine"],
}}"""


def answer_01_3(one='frame["concurrency"] == 1', top='frame["concurrency"].max()', prefill="prefill_tok_s_p50",
                prefill_way="idxmax", decode="decode_tok_s_p50") -> str:
    return USE_CASES.format(one=one, top=top, prefill=prefill, prefill_way=prefill_way, decode=decode)


WRONG_01_3 = {
    "many users read at concurrency 1": (answer_01_3(top="1"), "reads concurrency 1 instead of the highest"),
    "one user read at every level": (answer_01_3(one="True"), "reads every concurrency level instead of concurrency 1"),
    "long documents ranked by TTFT": (answer_01_3(prefill="ttft_p50", prefill_way="idxmin"),
                                      "ranks by ttft_p50 instead of prefill_tok_s_p50"),
    "long documents: the slowest prefill": (answer_01_3(prefill_way="idxmin"), "takes the lowest prefill_tok_s_p50"),
    "long answers ranked by output throughput": (answer_01_3(decode="output_throughput"),
                                                 "instead of decode_tok_s_p50"),
}

KNEE = """points = {points}
for (c0, t0), (c1, t1) in zip(points, points[1:]):
    if t0 > 0 and {efficiency} {test}:
        return {at}
return None"""


def answer_01_4(points="sorted(zip(concurrency, throughput))", efficiency="(t1 / t0 - 1) / (c1 / c0 - 1)",
                test="< 0.25", at="c0") -> str:
    return KNEE.format(points=points, efficiency=efficiency, test=test, at=at)


WRONG_01_4 = {
    "off by one: the end of the step": (answer_01_4(at="c1"), "off by one"),
    "the test the wrong way round": (answer_01_4(test=">= 0.25"), "the wrong way round"),
    "no minus one": (answer_01_4(efficiency="(t1 / t0) / (c1 / c0)"), "without the − 1"),
    "throughput gain alone": (answer_01_4(efficiency="(t1 / t0 - 1)"), "throughput gain alone"),
    "levels not sorted": (answer_01_4(points="list(zip(concurrency, throughput))"), "sort them"),
    "25 for 25 %": (answer_01_4(test="< 25"), "the threshold is 0.25"),
}

FIRST_ENGINE_ONLY = "if name != lab.engines[0]:\n    continue\n"
LOOP = """with launch(name, lab.model, port="auto", lab=lab.lab,
            extra_args=engine_args(name, lab.sizes.max_model_len)) as engine:
    target = add_engine(report, engine, lab.model)
    for workload in {workloads}:
        measure(report, target, workloads[workload], Load("concurrent", 1), tokenizer)
    sweep(report, target, workloads["chat"], levels, tokenizer)
    micro_results.append(micro(target, tokenizer, {micro}repeats=2))"""
SIZES = "pp=lab.sizes.long_prompt_tokens, tg=lab.sizes.max_tokens, "


def answer_01_2(workloads='("prefill-heavy", "decode-heavy")', micro=SIZES) -> str:
    return FIRST_ENGINE_ONLY + LOOP.format(workloads=workloads, micro=micro)


WRONG_01_2 = {  # each measures the first engine only: one minute instead of four
    "one engine only": (answer_01_2(), "the loop must measure every engine"),
    "micro without the profile's sizes": (answer_01_2(micro=""), "the profile's sizes are"),
    "decode-heavy left out": (answer_01_2(workloads='("prefill-heavy",)'), "no decode-heavy run"),
}


def test_the_right_answers_typed_by_hand_pass(lab):
    assert lab.answer("01.1", answer_01_1()).passed
    assert lab.answer("01.3", answer_01_3()).passed
    assert lab.answer("01.4", answer_01_4()).passed


@pytest.mark.parametrize("mistake", WRONG_01_1)
def test_a_wrong_ttft_tpot_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "01.1", *WRONG_01_1[mistake])


@pytest.mark.parametrize("mistake", WRONG_01_3)
def test_a_wrong_use_case_pick_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "01.3", *WRONG_01_3[mistake])


@pytest.mark.parametrize("mistake", WRONG_01_4)
def test_a_wrong_knee_finder_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "01.4", *WRONG_01_4[mistake])


@pytest.mark.parametrize("mistake", WRONG_01_2)
def test_a_wrong_measuring_loop_fails_naming_the_mistake(lab, mistake):
    """Last in the file: these leave their one-engine report in place (re-running the reference's loop after
    each would cost four minutes), and no later answer needs the reference's report."""
    assert_fails_naming(lab, "01.2", *WRONG_01_2[mistake], restore=False)
