"""Lab 04's drafter and verify rule (Exercise 04.2): the loop runs a learner's rule and refuses a wrong answer
with a sentence, and the checkpoint names each slip on its made-up token lists, then runs the loop.

The loop here runs on a stand-in model (no process, no weights): its greedy token after a sequence is the
next one of a fixed text, so prompt lookup finds the text repeating and drafts get accepted and rejected."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest

from spark_labs.speculative import SpecModel, StepError, greedy_verify, mechanism_mistakes, prompt_lookup_draft

TEXT = [10, 11, 12, 13, 14, 10, 11, 12, 15, 16]  # 10 11 12 repeats: then the text goes on two ways
PROMPT = TEXT * 2 + [10, 11]
EOS = 99


class _Cache:
    def __init__(self):
        self.tokens: list[int] = []

    def crop(self, drop: int) -> None:
        assert drop < 0, "the loop crops by a negative count"
        del self.tokens[drop:]


class StandIn(SpecModel):
    """A SpecModel without weights: the greedy token after a sequence is TEXT's next token after its length
    (then EOS after ``length`` generated tokens), computed from what the cache holds, so a cache the loop
    failed to crop shows up as wrong tokens."""

    def __init__(self, length: int = 40):
        self.torch = SimpleNamespace(inference_mode=contextlib.nullcontext)
        self.tokenizer = SimpleNamespace(eos_token_id=EOS)
        self.model = SimpleNamespace(get_input_embeddings=lambda: SimpleNamespace(num_embeddings=100))
        self.length = length
        self.passes = 0

    def encode_chat(self, prompt: str) -> list[int]:
        return list(PROMPT)

    def _next(self, tokens: list[int]) -> int:
        if len(tokens) >= len(PROMPT) + self.length:
            return EOS
        return TEXT[len(tokens) % len(TEXT)] if tokens[len(PROMPT):] == self._greedy(len(tokens)) else 0

    def _greedy(self, length: int) -> list[int]:
        return [TEXT[i % len(TEXT)] for i in range(len(PROMPT), length)]

    def _forward(self, ids, cache):
        self.passes += 1
        cache = cache or _Cache()
        predictions = []
        for token in ids:
            cache.tokens.append(token)
            predictions.append(self._next(cache.tokens))
        return predictions, cache


def right_draft(tokens, k):
    for n in (3, 2, 1):
        if len(tokens) <= n:
            continue
        tail = tokens[-n:]
        for start in range(len(tokens) - n - 1, -1, -1):
            if tokens[start:start + n] == tail:
                return tokens[start + n:start + n + k]
    return []


def right_verify(draft, predictions):
    kept = 0
    while kept < len(draft) and draft[kept] == predictions[kept]:
        kept += 1
    return draft[:kept] + [predictions[kept]]


# ---------- the loop runs the learner's rule ----------

def test_the_default_rule_and_a_learners_right_rule_give_the_greedy_output_and_the_same_counts():
    model = StandIn()
    plain = model.generate(PROMPT, 30)
    assert plain.tokens == model._greedy(len(PROMPT) + 30)
    default = model.generate(PROMPT, 30, k=4)
    theirs = model.generate(PROMPT, 30, k=4, drafter=right_draft, verify=right_verify)
    assert default.tokens == theirs.tokens == plain.tokens
    assert vars(default.acceptance) == vars(theirs.acceptance)
    assert 0 < default.acceptance.alpha < 1 and default.acceptance.steps < 30  # drafts accepted and rejected
    assert model.generate(PROMPT, 30, k=4, verify=greedy_verify).tokens == plain.tokens


def test_the_loop_stops_at_eos_and_the_length_asked_for_with_a_learners_rule():
    model = StandIn(length=9)
    run = model.generate(PROMPT, 30, k=4, verify=right_verify)
    assert run.tokens[-1] == EOS and len(run.tokens) == 10
    assert len(model.generate(PROMPT, 7, k=4, verify=right_verify).tokens) == 7


@pytest.mark.parametrize(("verify", "says"), [
    (lambda d, p: [], "returned []: every step emits at least one token"),
    (lambda d, p: list(p) + [p[-1]], "a draft of"),
    (lambda d, p: [p[0] + 1] + list(p[1:]) if d else [p[0]], "only its last token may differ from the draft"),
    (lambda d, p: [float(p[0])], "token ids are ints"),
    (lambda d, p: None, "must be a list of token ids"),
    (lambda d, p: [-1], "the model's token ids run from 0 to 99"),
])
def test_a_learners_rule_that_no_step_can_use_stops_the_loop_naming_the_mistake(verify, says):
    with pytest.raises(StepError, match=r"step \d+ \(after \d+ generated tokens\)") as raised:
        StandIn().generate(PROMPT, 20, k=4, verify=verify)
    assert says in str(raised.value)


@pytest.mark.parametrize(("drafter", "says"), [
    (lambda t, k: None, "must be a list of token ids"),
    (lambda t, k: [True], "token ids are ints"),
    (lambda t, k: [500], "the model's token ids run from 0 to 99"),
])
def test_a_drafter_answer_that_is_no_draft_stops_the_loop_naming_it(drafter, says):
    with pytest.raises(StepError, match="the drafter's draft") as raised:
        StandIn().generate(PROMPT, 20, k=4, drafter=drafter)
    assert says in str(raised.value)


def test_a_draft_longer_than_k_is_cut_to_k():
    model = StandIn()
    run = model.generate(PROMPT, 30, k=2, drafter=lambda t, k: prompt_lookup_draft(t, 8))
    assert run.tokens == model.generate(PROMPT, 30).tokens and len(run.acceptance.drafted_per_position) == 2


# ---------- checkpoint 04.2 on the made-up lists ----------

def _scan(tokens, k, ngrams=(3, 2, 1), starts=lambda length, n: range(length - n - 1, -1, -1), take=None):
    for n in ngrams:
        tail = tokens[-n:]
        for start in starts(len(tokens), n):
            if tokens[start:start + n] == tail:
                return take(tokens, start + n, k) if take else tokens[start + n:start + n + k]
    return []


def _draft_only(kept_list):
    def verify(draft, predictions):
        return kept_list(draft, predictions, right_verify(draft, predictions))
    return verify


@pytest.mark.parametrize(("drafter", "says"), [
    (lambda t, k: _scan(t, k, starts=lambda length, n: range(length - n, -1, -1)), "at their own place"),
    (lambda t, k: _scan(t, k, starts=lambda length, n: range(length - n)), "oldest earlier occurrence"),
    (lambda t, k: _scan(t, k, take=lambda tokens, at, k: tokens[at:]), "more than k tokens"),
    (lambda t, k: _scan(t, k, starts=lambda length, n: reversed(range(length - n - 1))),
     "only earlier occurrence sits at the very end"),
    (lambda t, k: _scan(t, k, take=lambda tokens, at, k: tokens[at:at + k] if at + k <= len(tokens) else []),
     "only earlier occurrence sits at the very end"),
    (lambda t, k: _scan(t, k, ngrams=(1, 2, 3)), "does not prefer the longer n-gram"),
    (lambda t, k: _scan(t, k, ngrams=(3,)), "no fall-back to a shorter n-gram"),
    (lambda t, k: _scan(t, k, take=lambda tokens, at, k: tokens[at - 1:at - 1 + k]), "my_draft("),
    (lambda t, k: None, "it must return a list of token ids"),
    (lambda t, k: t[len(t)], "raised IndexError"),
])
def test_a_wrong_drafter_is_named_on_the_made_up_lists(drafter, says):
    problems = mechanism_mistakes(drafter, right_verify)
    assert len(problems) == 1 and problems[0].startswith("my_draft") and says in problems[0], problems
    assert "where the draft is" in problems[0] or "token ids" in problems[0]


def _stops_nowhere(draft, predictions):
    return [d for d, p in zip(draft, predictions) if d == p] + [predictions[len(draft)]]


def _shifted(draft, predictions):
    out = []
    for i, token in enumerate(draft):
        if token != predictions[i + 1]:
            return out + [predictions[i + 1]]
        out.append(token)
    return out + [predictions[len(draft)]]


@pytest.mark.parametrize(("verify", "says"), [
    (lambda d, p: right_verify(d, p)[:-1] if right_verify(d, p)[:-1] == d and d else right_verify(d, p),
     "no bonus token"),
    (lambda d, p: right_verify(d, p)[:-1], "only the accepted drafted tokens"),
    (_stops_nowhere, "keeps going after the first disagreement"),
    (lambda d, p: list(p), "keeps going after the first disagreement"),
    (_shifted, "off by one"),
    (lambda d, p: right_verify(d, p)[:-1] + [p[len(right_verify(d, p))]] if len(right_verify(d, p)) < len(p)
     else right_verify(d, p), "off by one"),
    (lambda d, p: d[:len(right_verify(d, p))] if len(right_verify(d, p)) <= len(d) else right_verify(d, p),
     "emits the draft where the target's predictions belong"),
    (lambda d, p: list(d), "emits the draft where the target's predictions belong"),
    (lambda d, p: "no", "it must return a list of token ids"),
])
def test_a_wrong_verify_rule_is_named_on_the_made_up_lists(verify, says):
    problems = mechanism_mistakes(right_draft, verify)
    assert len(problems) == 1 and problems[0].startswith("my_verify") and says in problems[0], problems


def test_both_wrong_gives_one_message_each_and_right_ones_pass():
    assert mechanism_mistakes(right_draft, right_verify) == []
    assert mechanism_mistakes(prompt_lookup_draft, greedy_verify) == []
    problems = mechanism_mistakes(lambda t, k: [], lambda d, p: [])
    assert [p.split(":")[0].split("(")[0] for p in problems] == ["my_draft", "my_verify"]


def test_an_unfinished_exercise_passes_through():
    def unfinished(*_):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        mechanism_mistakes(unfinished, right_verify)
    with pytest.raises(NotImplementedError):
        mechanism_mistakes(right_draft, unfinished, model=StandIn())


def test_the_made_up_lists_tell_every_slip_apart():
    """Each slip the checkpoint knows gives a wrong answer on some made-up case (else it could not name it)."""
    from spark_labs.speculative.checks import (
        DRAFT_CASES,
        DRAFT_MISTAKES,
        VERIFY_CASES,
        VERIFY_MISTAKES,
        _attempt,
        _lookup,
    )

    for variants, says in DRAFT_MISTAKES:
        for options in variants:
            assert any(_lookup(t, k, **options) != prompt_lookup_draft(t, k) for t, k, _ in DRAFT_CASES), says
    for variants, says in VERIFY_MISTAKES:
        for variant in variants:
            assert any(_attempt(variant, (d, p)) != greedy_verify(d, p) for d, p, _ in VERIFY_CASES), says


# ---------- checkpoint 04.2 in the loop ----------

def test_right_functions_match_greedy_in_the_loop_and_report_the_counted_alpha():
    problems = mechanism_mistakes(right_draft, right_verify, model=StandIn(), k=4, max_new_tokens=30)
    assert problems == [] and not problems.note
    assert problems.run.tokens == problems.plain.tokens and 0 < problems.run.acceptance.alpha < 1
    assert problems.cases == 9


def test_a_rule_wrong_only_on_the_models_tokens_fails_in_the_loop():
    # Right on the made-up lists (token ids below 10), wrong on the stand-in's (10 and up).
    def sneaky(draft, predictions):
        return right_verify(draft, predictions) if max(draft, default=0) < 10 else draft[:1] + [predictions[1]] \
            if len(draft) > 1 and draft[0] == predictions[0] else right_verify(draft, predictions)

    problems = mechanism_mistakes(right_draft, sneaky, model=StandIn(), max_new_tokens=30)
    assert len(problems) == 1 and "on the lab's model (code-edit, k = 4): my_verify(draft=" in problems[0], problems


def test_a_drafter_wrong_only_on_long_sequences_fails_in_the_loop():
    problems = mechanism_mistakes(lambda t, k: right_draft(t, k) if len(t) < 20 else [], right_verify,
                                  model=StandIn(), max_new_tokens=30)
    assert len(problems) == 1 and "my_draft proposed [] where prompt lookup drafts" in problems[0], problems


def test_a_rule_that_breaks_the_step_in_the_loop_is_named():
    def empty_on_long_drafts(draft, predictions):
        return [] if len(draft) == 4 and draft[0] >= 10 else right_verify(draft, predictions)

    problems = mechanism_mistakes(right_draft, empty_on_long_drafts, model=StandIn(), max_new_tokens=30)
    assert len(problems) == 1 and "returned []: every step emits at least one token" in problems[0], problems
