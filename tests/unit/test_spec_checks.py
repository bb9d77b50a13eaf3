"""Lab 04's answer checks on plain functions and tables: right answers give no problem, each known mistake is
named, and a learner's exception is a named failure, not a crash (the notebook tests push the same kinds of
answers through the real checkpoint cells)."""

from __future__ import annotations

import pandas as pd
import pytest

from spark_labs.speculative import (
    crossover_mistakes,
    expected_speedup,
    expected_tokens_per_step,
    formula_mistakes,
    prediction_mistakes,
)


def _naive_tokens(alpha, k):
    return (1 - alpha ** (k + 1)) / (1 - alpha)


@pytest.mark.parametrize(("tokens", "speedup", "says"), [
    (_naive_tokens, expected_speedup, "ZeroDivisionError at α = 1"),
    (lambda a, k: sum(a ** i for i in range(k)), expected_speedup, "no bonus token"),
    (lambda a, k: 1 + k * a, expected_speedup, "after the first rejection"),
    (expected_tokens_per_step, lambda a, k, c: expected_tokens_per_step(a, k), "returns tokens per step"),
    (expected_tokens_per_step, lambda a, k, c: expected_tokens_per_step(a, k) / (k * c), "target's own pass"),
    (expected_tokens_per_step, lambda a, k, c: None, "must return a number"),
])
def test_formula_mistakes_are_named(tokens, speedup, says):
    problems = formula_mistakes(tokens, speedup)
    assert problems and says in problems[0], problems


def test_right_formulas_and_unfinished_ones():
    assert formula_mistakes(expected_tokens_per_step, expected_speedup) == []

    def unfinished(*_):
        raise NotImplementedError
    with pytest.raises(NotImplementedError):
        formula_mistakes(unfinished, unfinished)


TABLE = pd.DataFrame({"workload": ["code-edit", "code-edit", "open-chat"], "draft": ["prompt lookup", "early exit",
                      "prompt lookup"], "k": [4, 2, 4], "alpha": [0.73, 0.37, 0.31],
                      "acceptance_rate": [0.51, 0.27, 0.11], "tokens_per_step": [2.88, 1.53, 1.12],
                      "draft_cost_c": [0.0001, 0.93, 0.0007], "speedup": [1.66, 0.39, 0.82]})


@pytest.mark.parametrize(("column", "says"), [
    (lambda t: [expected_speedup(r.alpha, r.k, 0.0) for r in t.itertuples()], "ignores the draft cost"),
    (lambda t: [expected_speedup(r.acceptance_rate, r.k, r.draft_cost_c) for r in t.itertuples()],
     "`acceptance_rate`"),
    (lambda t: t.speedup, "measured speed-up copied"),
    (lambda t: [None] * len(t), "no number"),
])
def test_prediction_mistakes_are_named(column, says):
    table = TABLE.copy()
    table["predicted"] = column(table)
    problems = prediction_mistakes(table, expected_speedup)
    assert problems and says in problems[0], problems
    table["predicted"] = [expected_speedup(r.alpha, r.k, r.draft_cost_c) for r in table.itertuples()]
    assert prediction_mistakes(table, expected_speedup) == []


TABLES = [pd.DataFrame({"concurrency": c, "speedup": s}) for c, s in (
    ([8, 16, 4, 1], [0.95, 0.7, 0.9, 1.2]), ([1, 4, 16], [1.4, 1.1, 1.02]), ([1, 4, 16], [1.3, 1.0, 0.8]))]


def _losing(table, op=lambda s: s < 1):
    return table.loc[op(table.speedup), "concurrency"]


@pytest.mark.parametrize(("crossover", "says"), [
    (lambda t: int(_losing(t).min()), "never lost there"),
    (lambda t: int(_losing(t).iloc[0]) if len(_losing(t)) else None, "first losing row"),
    (lambda t: int(_losing(t, lambda s: s <= 1).min()) if len(_losing(t, lambda s: s <= 1)) else None,
     "exactly 1.0"),
    (lambda t: float(_losing(t).min()) if len(_losing(t)) else None, "plain int"),
    (lambda t: int(_losing(t).min()) if len(_losing(t)) else 0, "return None"),
])
def test_crossover_mistakes_are_named(crossover, says):
    problems = crossover_mistakes(crossover, TABLES, made_up=len(TABLES))
    assert problems and says in problems[0], problems


def test_right_crossover():
    assert crossover_mistakes(lambda t: int(_losing(t).min()) if len(_losing(t)) else None, TABLES, 3) == []


def test_the_lab_table_can_leave_the_formula_to_the_learner():
    from spark_labs.speculative import format_table
    from spark_labs.speculative.comparison import SpecRow

    rows = [SpecRow("code-edit", "-", 0, 47, 0, 0, 1, 1, 12.1, 12.1, 1, 1, 0, 1, True),
            SpecRow("code-edit", "prompt lookup", 4, 47, .73, .51, 2.88, 2.95, 20.1, 12.1, 1.66, 2.94, 1e-4, 1.73,
                    True)]
    full, lab = format_table(rows).splitlines(), format_table(rows, formula=False).splitlines()
    assert "formula" in full[0] and "2.94x" in full[3]
    assert "formula" not in lab[0] and "2.94x" not in lab[3] and "1.66x" in lab[3] and len(lab[0]) == len(full[0]) - 8


def _parted_row(k, identical=True, parted_at=None, tie_gap=None):
    from spark_labs.speculative.comparison import SpecRow

    return SpecRow("open-chat", "prompt lookup", k, 48, .5, .4, 1.8, 1.9, 20.0, 12.0, 1.6, 1.7, 1e-4, 1.5, identical,
                   parted_at, tie_gap)


def test_identical_runs_pass_the_lossless_check_silently(capsys):
    from spark_labs.speculative import check_parted_only_at_near_ties

    check_parted_only_at_near_ties([_parted_row(0), _parted_row(4)])
    assert capsys.readouterr().out == ""  # the tiny recording's cell prints nothing new


def test_a_run_that_parted_at_a_near_tie_is_named_and_passes(capsys):
    """bf16 on a GPU: open chat left the baseline where its two candidates were 0.06 logits apart."""
    from spark_labs.speculative import check_parted_only_at_near_ties

    check_parted_only_at_near_ties([_parted_row(4, False, 17, -0.0625)])
    out = capsys.readouterr().out
    assert "left the baseline at token 17, its two candidates 0.062 logits apart" in out and "near-tie" in out


@pytest.mark.parametrize("gap", [1.5, None], ids=["far apart", "one output ended first"])
def test_a_run_that_parted_elsewhere_fails_the_lossless_check(gap):
    from spark_labs.speculative import check_parted_only_at_near_ties

    with pytest.raises(AssertionError, match="must be lossless"):
        check_parted_only_at_near_ties([_parted_row(2, False, 5, 0.01), _parted_row(4, False, 9, gap)])


def test_parting_finds_the_first_difference_and_asks_the_model_there():
    from spark_labs.speculative.comparison import parting

    asked = []

    class Model:
        def logit_gap(self, prefix, kept, other):
            asked.append((prefix, kept, other))
            return 0.03

    assert parting(Model(), [1, 2], [5, 6, 7, 8], [5, 6, 9]) == (2, 0.03)
    assert asked == [([1, 2, 5, 6], 7, 9)]
    assert parting(Model(), [1], [5, 6], [5, 6, 7]) == (2, None)  # no differing token: one ended first
