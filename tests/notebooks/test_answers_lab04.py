"""Lab 04's checkpoints against the answers learners type: the reference's pass, each wrong one fails and its
message names the mistake. Lab 04 runs once (a rehearsal: the grader's two kernels, the real model, llama.cpp
and vLLM where installed), then every answer goes through the real checkpoint cell on that run's data.

04.1 has two solution blocks (the body of ``my_tokens_per_step``, then of ``my_speedup``); so has 04.2 (the body
of ``my_draft``, then of ``my_verify``), checked on made-up token lists and then in the loop on the lab's model;
04.3 fills the ``predicted`` column of the run's measured ``speculative`` table; 04.4 is the body of
``my_crossover``, run on the checkpoint's made-up tables and this run's measured ones."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
)

RIGHT_TOKENS = "if alpha == 1:\n    return k + 1.0\nreturn (1 - alpha ** (k + 1)) / (1 - alpha)"
RIGHT_SPEEDUP = "return my_tokens_per_step(alpha, k) / (k * c + 1)"
WRONG_04_1 = {
    "the course's formula": (["from spark_labs.speculative import expected_tokens_per_step as course\n"
                              "return course(alpha, k)", RIGHT_SPEEDUP], "Exercise 04.1 is yours to write"),
    "closed form without the alpha = 1 case": (["return (1 - alpha ** (k + 1)) / (1 - alpha)", RIGHT_SPEEDUP],
                                               "ZeroDivisionError at α = 1"),
    "no bonus token (k terms)": (["return sum(alpha ** i for i in range(k))", RIGHT_SPEEDUP], "no bonus token"),
    "alpha^k off by one in the closed form": (
        ["if alpha == 1:\n    return float(k)\nreturn (1 - alpha ** k) / (1 - alpha)", RIGHT_SPEEDUP],
        "no bonus token"),
    "accepted draft tokens only": (["return sum(alpha ** i for i in range(1, k + 1))", RIGHT_SPEEDUP],
                                   "only the accepted draft tokens"),
    "1 + k alpha": (["return 1 + k * alpha", RIGHT_SPEEDUP], "after the first rejection"),
    "alpha = 1 gives k": (["if alpha == 1:\n    return float(k)\nreturn (1 - alpha ** (k + 1)) / (1 - alpha)",
                           RIGHT_SPEEDUP], "must hold at α = 1"),
    "speed-up not divided by the step's cost": ([RIGHT_TOKENS, "return my_tokens_per_step(alpha, k)"],
                                                "returns tokens per step"),
    "one draft pass per step (c + 1)": ([RIGHT_TOKENS, "return my_tokens_per_step(alpha, k) / (c + 1)"],
                                        "counted once per step"),
    "no target pass (k c)": ([RIGHT_TOKENS, "return my_tokens_per_step(alpha, k) / (k * c)"],
                             "missing the target's own pass"),
    "k + 1 draft passes": ([RIGHT_TOKENS, "return my_tokens_per_step(alpha, k) / ((k + 1) * c + 1)"],
                           "counted k + 1 times"),
}
# 04.2: typed by hand, unlike the reference (a list of matches, a zip)
RIGHT_DRAFT = """for n in (3, 2, 1):
    tail = tokens[-n:]
    starts = [i for i in range(len(tokens) - n) if tokens[i:i + n] == tail]
    if starts:
        return tokens[starts[-1] + n:starts[-1] + n + k]
return []"""
RIGHT_VERIFY = """out = []
for guess, target in zip(draft, predictions):
    if guess != target:
        return out + [target]
    out.append(guess)
return out + [predictions[len(draft)]]"""


def _draft(starts: str = "range(len(tokens) - n - 1, -1, -1)", ngrams: str = "(3, 2, 1)",
           follow: str = "tokens[start + n:start + n + k]") -> str:
    return (f"for n in {ngrams}:\n    tail = tokens[-n:]\n    for start in {starts}:\n"
            f"        if tokens[start:start + n] == tail:\n            return {follow}\nreturn []")


WRONG_04_2 = {
    "the oldest earlier match": ([_draft(starts="range(len(tokens) - n)"), RIGHT_VERIFY], "oldest earlier occurrence"),
    "the tail found at its own place": ([_draft(starts="range(len(tokens) - n, -1, -1)"), RIGHT_VERIFY],
                                        "at their own place"),
    "more than k tokens": ([_draft(follow="tokens[start + n:]"), RIGHT_VERIFY], "more than k tokens"),
    "the match right before the tail missed": ([_draft(starts="reversed(range(len(tokens) - n - 1))"), RIGHT_VERIFY],
                                               "only earlier occurrence sits at the very end"),
    "shortest n-gram first": ([_draft(ngrams="(1, 2, 3)"), RIGHT_VERIFY], "does not prefer the longer n-gram"),
    "no bonus token": ([RIGHT_DRAFT, "out = []\nfor guess, target in zip(draft, predictions):\n"
                                     "    if guess != target:\n        return out + [target]\n"
                                     "    out.append(guess)\nreturn out"], "no bonus token"),
    "keeps tokens after the first mismatch": (
        [RIGHT_DRAFT, "return [d for d, p in zip(draft, predictions) if d == p] + [predictions[-1]]"],
        "keeps going after the first disagreement"),
    "off by one": ([RIGHT_DRAFT, "out = []\nfor i, guess in enumerate(draft):\n    if guess != predictions[i + 1]:\n"
                                 "        return out + [predictions[i + 1]]\n    out.append(guess)\n"
                                 "return out + [predictions[-1]]"], "off by one"),
    "the drafted token instead of the target's": (
        [RIGHT_DRAFT, "out = []\nfor guess, target in zip(draft, predictions):\n    out.append(guess)\n"
                      "    if guess != target:\n        return out\nreturn out + [predictions[-1]]"],
        "emits the draft where the target's predictions belong"),
}
WRONG_04_3 = {
    "draft cost left out": ('speculative["predicted"] = [my_speedup(r.alpha, r.k, 0)\n'
                            '                            for r in speculative.itertuples()]',
                            "ignores the draft cost"),
    "acceptance rate instead of alpha": (
        'speculative["predicted"] = [my_speedup(r.acceptance_rate, r.k, r.draft_cost_c) '
        'for r in speculative.itertuples()]', "`acceptance_rate`"),
    "measured speed-up copied": ('speculative["predicted"] = speculative.speedup', "measured speed-up copied"),
    "measured tokens per step divided": (
        'speculative["predicted"] = speculative.tokens_per_step / (speculative.k * speculative.draft_cost_c + 1)',
        "divides the measured tokens per step"),
    "alpha and k swapped": ('speculative["predicted"] = [my_speedup(r.k, r.alpha, r.draft_cost_c) '
                            'for r in speculative.itertuples()]', "passes k where α goes"),
    "one value for all rows": ('speculative["predicted"] = my_speedup(speculative.alpha.mean(), 4, 0.0)',
                               "one value for every row"),
}
RIGHT_04_3 = ('speculative["predicted"] = speculative.apply(lambda row: my_speedup(row["alpha"], int(row["k"]), '
              'row["draft_cost_c"]), axis=1)')
RIGHT_04_4 = "slower = table[table['speedup'] < 1]\nreturn None if slower.empty else int(slower['concurrency'].min())"
LOSING = "losing = table[table.speedup < 1]\n"
WRONG_04_4 = {
    "raises where it never lost": ("return int(table.loc[table.speedup < 1, 'concurrency'].min())",
                                   "never lost there, so the answer is None"),
    "first losing row": (LOSING + "return int(losing.concurrency.iloc[0]) if len(losing) else None",
                         "first losing row"),
    "highest losing level": (LOSING + "return int(losing.concurrency.max()) if len(losing) else None",
                             "highest losing concurrency"),
    "a speed-up of 1 counted as slower": (
        "losing = table[table.speedup <= 1]\nreturn int(losing.concurrency.min()) if len(losing) else None",
        "exactly 1.0 counts as slower"),
    "a float": (LOSING + "return float(losing.concurrency.min()) if len(losing) else None", "return a plain int"),
    "0 instead of None": (LOSING + "return int(losing.concurrency.min()) if len(losing) else 0", "return None"),
    "last level that paid": (
        "paying = table[table.speedup >= 1]\nreturn int(paying.concurrency.max()) if len(paying) else None",
        "still paid"),
}


def test_the_right_answers_typed_by_hand_pass(lab):
    assert lab.answer("04.1", [RIGHT_TOKENS, RIGHT_SPEEDUP]).passed
    assert lab.answer("04.2", [RIGHT_DRAFT, RIGHT_VERIFY]).passed
    assert lab.answer("04.3", RIGHT_04_3).passed
    assert lab.answer("04.4", RIGHT_04_4).passed


@pytest.mark.parametrize("mistake", WRONG_04_1)
def test_a_wrong_formula_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "04.1", *WRONG_04_1[mistake])


@pytest.mark.parametrize("mistake", WRONG_04_2)
def test_a_wrong_drafter_or_verify_rule_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "04.2", *WRONG_04_2[mistake])


@pytest.mark.parametrize("mistake", WRONG_04_3)
def test_a_wrong_prediction_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "04.3", *WRONG_04_3[mistake])


@pytest.mark.parametrize("mistake", WRONG_04_4)
def test_a_wrong_crossover_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "04.4", *WRONG_04_4[mistake])
