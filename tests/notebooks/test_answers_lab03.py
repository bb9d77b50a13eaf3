"""Lab 03's checkpoints against the answers learners type: the reference's pass, each wrong one fails and its
message names the mistake. Lab 03 runs once (a rehearsal: the grader's two kernels, real builds and
measurements), then every answer goes through the real checkpoint cell on that run's data."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
)

BITS = {"F16": "16", "Q8_0": "8 + 16 / 32", "Q4_K_M": "4.5 * 5 / 6 + 6.5625 / 6", "bf16": "16", "NF4": "4 + 32 / 64"}
SIZE = "params * bits_per_weight[variant] / 8"
PREDICT = """def my_prediction(variant):
    weight_bytes = {size}
    return weight_bytes / {mb}, hardware.bandwidth_bytes_s / weight_bytes"""


def answer_03_1(size: str = SIZE, mb: str = "1e6", **bits) -> str:
    table = ", ".join(f"{name!r}: {value}" for name, value in {**BITS, **bits}.items())
    return f"bits_per_weight = {{{table}}}\n\n\n" + PREDICT.format(size=size, mb=mb)


WRONG_03_1 = {
    "bytes per weight in the table": (answer_03_1(size="params * bits_per_weight[variant]", F16="2", Q8_0="1.0625",
                                                  Q4_K_M="0.605", bf16="2", NF4="0.5625"),
                                      "is bytes per weight, not bits"),
    "bits never divided by 8": (answer_03_1(size="params * bits_per_weight[variant]"), "divide by 8"),
    "MiB instead of MB": (answer_03_1(mb="2**20"), "MiB (2²⁰ bytes)"),
    "NF4 without its absmax scales": (answer_03_1(NF4="4"), "leaves out the absmax scales"),
    "Q4_K_M as Q4_K alone": (answer_03_1(Q4_K_M="4.5"), "ignores Q4_K_M's mix"),
    "Q4_K_M as plain 4 bits": (answer_03_1(Q4_K_M="4"), "Q4_K_M's mix"),
    "Q8_0 without its scales": (answer_03_1(Q8_0="8"), "Q8_0: 8 bits counts the int8 values only"),
}

PICK = """base = table.loc[reference]
rows = {rows}
ok = rows[(rows["decode_tok_s"] {speed} 1.15 * base["decode_tok_s"]) & (rows["perplexity"] {quality} {limit})]
return None if ok.empty else ok["size_mb"].{pick}()"""
SAME_ENGINE = 'table[table["engine"] == base["engine"]]'


def answer_03_2(rows=SAME_ENGINE, speed=">=", quality="<=", limit='1.05 * base["perplexity"]', pick="idxmin"):
    return PICK.format(rows=rows, speed=speed, quality=quality, limit=limit, pick=pick)


WRONG_03_2 = {
    "every engine competes": (answer_03_2(rows="table"), "not by the reference's engine"),
    "perplexity limit the wrong way": (answer_03_2(quality=">="), "check the direction of that test"),
    "speed limit the wrong way": (answer_03_2(speed="<="), "check the direction of the speed test"),
    "largest instead of smallest": (answer_03_2(pick="idxmax"), "pick the smallest"),
}

BREAK_EVEN = """saved = {saved}
{guard}return {tokens}"""
RIGHT_SAVED = '1 / eager["decode_tok_s"] - 1 / compiled["decode_tok_s"]'
GUARD = "if saved <= 0:\n    return None\n"


def answer_03_4(saved=RIGHT_SAVED, guard=GUARD, tokens='(compiled["build_s"] - eager["build_s"]) / saved'):
    return BREAK_EVEN.format(saved=saved, guard=guard, tokens=tokens)


WRONG_03_4 = {
    "divided by the speed difference": (answer_03_4(saved='compiled["decode_tok_s"] - eager["decode_tok_s"]'),
                                        "divides by the difference in speed"),
    "the whole build, not the extra": (answer_03_4(tokens='compiled["build_s"] / saved'),
                                       "counts the compiled path's whole build"),
    "milliseconds saved per token": (answer_03_4(tokens='(compiled["build_s"] - eager["build_s"]) / (saved * 1000)'),
                                     "1000× too few tokens"),
    "a slower compile still pays back": (answer_03_4(guard=""), "never pays back — return None"),
    "tokens decoded during the build": (answer_03_4(tokens='(compiled["build_s"] - eager["build_s"]) * '
                                                           'compiled["decode_tok_s"]'),
                                        "counts the tokens the compiled path could decode during its build"),
}


def test_the_right_answers_typed_by_hand_pass(lab):
    assert lab.answer("03.1", answer_03_1()).passed
    assert lab.answer("03.2", answer_03_2()).passed
    assert lab.answer("03.4", answer_03_4()).passed


@pytest.mark.parametrize("mistake", WRONG_03_1)
def test_a_wrong_size_prediction_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "03.1", *WRONG_03_1[mistake])


@pytest.mark.parametrize("mistake", WRONG_03_2)
def test_a_wrong_pick_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "03.2", *WRONG_03_2[mistake])


@pytest.mark.parametrize("mistake", WRONG_03_4)
def test_a_wrong_break_even_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "03.4", *WRONG_03_4[mistake])
