"""Lab 02's checks on plain numbers: each exercise's rule passes, and every known mistake fails with the message
that names it (the notebook test pushes the same mistakes through the real checkpoints)."""

from __future__ import annotations

import pytest

from spark_labs.batching import checks
from spark_labs.batching.checks import (
    BYTES_MISTAKES,
    CAPACITY_MISTAKES,
    HIT_RATE_MISTAKES,
    ONSET_MISTAKES,
    WASTE_MISTAKES,
    check_bytes_per_token,
    check_capacity,
    check_hit_rate,
    check_onset,
    check_tradeoff,
    check_wasted_fraction,
)

LENGTHS = [15, 49, 19, 45, 8, 23, 34, 27, 60, 53, 30, 42, 57, 38, 12, 64]
SMOLLM2 = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576,
           "head_dim": 64}
TOKEN_BYTES = 23_040
KV_A = 16 * 128 * TOKEN_BYTES + 100 * TOKEN_BYTES  # the lab's engine A: 16 whole blocks and 100 tokens more
SMALL = {"long_ttft_ms": 1223.1, "itl_p50_ms": 39.6, "itl_max_during_prefill_ms": 152.1}
LARGE = {"long_ttft_ms": 1054.3, "itl_p50_ms": 42.2, "itl_max_during_prefill_ms": 1018.2}


def test_the_rules_on_the_labs_numbers():
    assert checks.bytes_per_token_rule(SMOLLM2) == TOKEN_BYTES
    assert checks.capacity_rule(KV_A, TOKEN_BYTES, 128) == 15 * 128  # the null block is not lent out
    assert checks.capacity_rule(KV_A, TOKEN_BYTES, 128) != KV_A // TOKEN_BYTES  # a remainder that is not a block
    assert checks.onset_rule(6, 128, 100, 50, [2, 3, 4, 5]) == 3
    assert checks.onset_rule(9, 16, 20, 10, [1, 2, 3]) is None
    assert checks.hit_rate_rule(6, 300, 16, 128) == pytest.approx(5 * 256 / (6 * 316))


def test_the_mistakes_change_the_labs_own_results():
    """The lab's numbers are chosen so that the common mistakes give another answer there, not only on the
    extra cases: no block rounding, the null block, forgetting the output."""
    assert len({m(KV_A, TOKEN_BYTES, 128) for m in CAPACITY_MISTAKES.values()} | {15 * 128}) >= 4
    lab = (6, 128, 100, 50, [2, 3, 4, 5])
    named = [what for what, m in ONSET_MISTAKES.items() if m(*lab) != checks.onset_rule(*lab)]
    assert any("null block" in w for w in named) and any("whole blocks" in w for w in named)
    assert any("forgets the output" in w for w in named)
    unrounded = next(m for what, m in HIT_RATE_MISTAKES.items() if what.startswith("only whole blocks"))
    assert abs(unrounded(6, 300, 16, 128) - checks.hit_rate_rule(6, 300, 16, 128)) > 0.05


def test_the_right_functions_pass():
    assert check_wasted_fraction(checks.waste_rule, LENGTHS, 4).passed
    assert check_bytes_per_token(checks.bytes_per_token_rule, SMOLLM2, 16, 128, KV_A).passed
    assert check_capacity(checks.capacity_rule, KV_A, TOKEN_BYTES, 128, 16).passed
    assert check_onset(checks.onset_rule, 6, 128, 100, 50, [2, 3, 4, 5], 3).passed
    assert check_hit_rate(checks.hit_rate_rule, 6, 300, 16, 128, 1280 / 1896, 0.0).passed
    assert check_tradeoff(checks.tradeoff_rule(SMALL, LARGE), SMALL, LARGE).passed


@pytest.mark.parametrize("what", WASTE_MISTAKES)
def test_a_wasted_fraction_mistake_is_named(what):
    verdict = check_wasted_fraction(WASTE_MISTAKES[what], LENGTHS, 4)
    assert not verdict.passed and verdict.message == what


@pytest.mark.parametrize("what", BYTES_MISTAKES)
def test_a_bytes_per_token_mistake_is_named(what):
    verdict = check_bytes_per_token(BYTES_MISTAKES[what], SMOLLM2, 16, 128, KV_A)
    assert not verdict.passed and verdict.message.startswith(what)


def test_a_config_without_head_dim_that_breaks_the_function_is_named():
    def needs_head_dim(config, dtype_bytes=2):
        return 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * config["head_dim"] * dtype_bytes

    verdict = check_bytes_per_token(needs_head_dim, SMOLLM2, 16, 128, KV_A)
    assert not verdict.passed and "some configs leave out" in verdict.message


@pytest.mark.parametrize("what", CAPACITY_MISTAKES)
def test_a_capacity_mistake_is_named(what):
    verdict = check_capacity(CAPACITY_MISTAKES[what], KV_A, TOKEN_BYTES, 128, 16)
    assert not verdict.passed and verdict.message.startswith(what) and "vLLM allocated 16 blocks" in verdict.message


@pytest.mark.parametrize("what", ONSET_MISTAKES)
def test_an_onset_mistake_is_named(what):
    verdict = check_onset(ONSET_MISTAKES[what], 6, 128, 100, 50, [2, 3, 4, 5], 3)
    assert not verdict.passed and verdict.message.startswith(what)


def test_an_onset_of_none_is_an_answer_not_a_missing_one():
    verdict = check_onset(lambda *args: None, 6, 128, 100, 50, [2, 3, 4, 5], 3)
    assert not verdict.passed and "you predicted None" in verdict.message


@pytest.mark.parametrize("what", HIT_RATE_MISTAKES)
def test_a_hit_rate_mistake_is_named(what):
    verdict = check_hit_rate(HIT_RATE_MISTAKES[what], 6, 300, 16, 128, 1280 / 1896, 0.0)
    assert not verdict.passed and verdict.message.startswith(what)


def test_a_tradeoff_mistake_is_named():
    for what, answer in checks._tradeoff_mistakes(SMALL, LARGE).items():
        verdict = check_tradeoff(answer, SMALL, LARGE)
        assert not verdict.passed and verdict.message == what
    assert "return three things" in check_tradeoff(6.7, SMALL, LARGE).message


def test_a_function_that_raises_fails_with_what_it_raised():
    def broken(lengths, batch_size):
        raise ZeroDivisionError("division by zero")

    verdict = check_wasted_fraction(broken, LENGTHS, 4)
    assert not verdict.passed and "ZeroDivisionError" in verdict.message and "in batches of 4" in verdict.message
