"""What lab 04's checkpoints say about a learner's answers: right, or which known mistake it is.

04.1 the formulas, 04.2 the drafter and the verify rule (made-up token lists, then the loop on the lab's model),
04.3 the formula's predictions against the measured table, 04.4 the crossover under load.

Each checker calls the learner's functions (or reads the learner's column) on chosen points, catches what they
raise (a naive closed form divides by zero at alpha = 1: that is a failed answer, not a crashed checkpoint),
and compares the answers with the library's and with the answers each plausible mistake would give. The
first mistake that explains every answer is named; otherwise the message says where the answer differs.
``NotImplementedError`` passes through: the exercise is not done yet, which the notebook reports itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral

import pandas as pd

from .theory import expected_speedup, expected_tokens_per_step
from .under_load import crossover

FORMULA_GRID = [(a, k, c) for a in (0.0, 0.3, 0.6, 0.9, 1.0) for k in (1, 2, 4, 8) for c in (0.0, 0.05, 0.5)]
TOKENS_POINTS = sorted({(a, k) for a, k, _ in FORMULA_GRID})


def _sum(alpha: float, terms: int) -> float:
    return float(sum(alpha ** i for i in range(terms)))


# tokens per step: (what the learner's answer equals, what that mistake is)
TOKENS_MISTAKES: list[tuple[Callable[[float, int], float], str]] = [
    (lambda a, k: _sum(a, k),
     "no bonus token: your sum has k terms (1 + α + … + α^(k−1)), one short. When all k drafted tokens are "
     "accepted the target still adds its own next token, so a step emits up to k + 1 tokens (α^k is the "
     "last term, not α^(k−1))"),
    (lambda a, k: _sum(a, k + 1) - 1,
     "it counts only the accepted draft tokens: every step also emits the target's own token, so a step "
     "emits at least 1 token (exactly 1 at α = 0)"),
    (lambda a, k: _sum(a, k + 2),
     "one term too many (α^(k+1)): a draft of k tokens can add at most k accepted tokens to the target's one"),
    (lambda a, k: 1 + k * a,
     "1 + k·α counts draft tokens after the first rejection: a step stops there, so drafted token i counts only "
     "when every token before it was accepted too (probability α^i, not α)"),
    (lambda a, k: (k + 1) * a if a < 1 else k + 1.0,
     "(k + 1)·α is not the expectation: the step emits i + 1 tokens when exactly the first i drafts are accepted"),
]

# speed-up, given the right tokens per step E
SPEEDUP_MISTAKES: list[tuple[Callable[[float, int, float], float], str]] = [
    (lambda a, k, c: expected_tokens_per_step(a, k),
     "my_speedup returns tokens per step: a step is not free, divide by what one step costs in target passes "
     "(k drafted tokens at c each, plus the target's own pass)"),
    (lambda a, k, c: expected_tokens_per_step(a, k) / (c + 1),
     "the draft cost is counted once per step (c + 1): a step drafts k tokens, each costing c"),
    (lambda a, k, c: expected_tokens_per_step(a, k) / ((k + 1) * c + 1),
     "the draft cost is counted k + 1 times per step: the draft proposes k tokens; the extra token is the "
     "target's own"),
    (lambda a, k, c: expected_tokens_per_step(a, k) * (k * c + 1),
     "it multiplies by the step's cost: tokens per step ÷ cost per step is the gain over one token per pass"),
    (lambda a, k, c: expected_tokens_per_step(a, k) / (k * c) if c else math.inf,
     "the target pass is missing from the step's cost: k·c is only the drafting, the verification pass adds 1"),
]


def _close(x: float, y: float) -> bool:
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def _case(alpha: float, k: int, c: float | None = None) -> str:
    where = f"α = {alpha:g}, k = {k}" + ("" if c is None else f", c = {c:g}")
    if alpha == 1.0:
        where += " (every drafted token accepted)"
    elif c == 0.0:
        where += " (a free draft, as prompt lookup nearly is)"
    return where


def _call(function: Callable, name: str, args: tuple, case: str) -> tuple[float | None, str | None]:
    """(number, None), or (None, what went wrong) for an exception or a value that is not a number."""
    try:
        value = function(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exception of the learner's is a failed answer, named
        return None, f"{name} raised {type(exc).__name__} at {case}: {str(exc).splitlines()[0] if str(exc) else ''}" \
                     .rstrip(": ")
    number = _number(value)
    if number is None or math.isnan(number):
        return None, f"{name} returned {value!r} at {case}: it must return a number"
    return number, None


def _explained(answers: dict, mistakes: list, right: Callable) -> str | None:
    for mistake, says in mistakes:
        if all(_close(got, mistake(*point)) for point, got in answers.items()) and \
                any(not _close(got, right(*point)) for point, got in answers.items()):
            return says
    return None


def formula_mistakes(tokens_per_step: Callable[[float, int], float],
                     speedup: Callable[[float, int, float], float]) -> list[str]:
    """Checkpoint 04.1: what is wrong with the learner's two formulas ([] when both are right)."""
    answers, crashes = {}, []
    for alpha, k in TOKENS_POINTS:
        number, problem = _call(tokens_per_step, "my_tokens_per_step", (alpha, k), _case(alpha, k))
        if problem:
            crashes.append(problem)
        else:
            answers[(alpha, k)] = number
    if crashes:
        return crashes[:1] + ([f"(and {len(crashes) - 1} more points fail)"] if len(crashes) > 1 else [])
    wrong = [point for point, got in answers.items() if not _close(got, expected_tokens_per_step(*point))]
    if wrong:
        named = _explained(answers, TOKENS_MISTAKES, expected_tokens_per_step)
        if named:
            return [f"my_tokens_per_step: {named}"]
        at_one = [p for p in wrong if p[0] == 1.0]
        if at_one and len(at_one) == len(wrong):
            alpha, k = at_one[0]
            return [f"my_tokens_per_step gives {answers[at_one[0]]:g} at {_case(alpha, k)}: every drafted token is "
                    "kept there and the target adds its own, so the sum must hold at α = 1 too"]
        alpha, k = wrong[0]
        return [f"my_tokens_per_step gives {answers[wrong[0]]:g} at {_case(alpha, k)}, where a step emits "
                f"{expected_tokens_per_step(alpha, k):g} tokens on average ({len(wrong)} of {len(answers)} points "
                "differ)"]
    answers, crashes = {}, []
    for alpha, k, c in FORMULA_GRID:
        number, problem = _call(speedup, "my_speedup", (alpha, k, c), _case(alpha, k, c))
        if problem:
            crashes.append((c, problem))
        else:
            answers[(alpha, k, c)] = number
    if crashes:
        free = all(c == 0.0 for c, _ in crashes) and "ZeroDivisionError" in crashes[0][1]
        return [crashes[0][1] + (" — the step's cost is missing the target's own pass: even with a free draft a "
                                 "step costs one target pass" if free else "")]
    wrong = [point for point, got in answers.items() if not _close(got, expected_speedup(*point))]
    if wrong:
        named = _explained(answers, SPEEDUP_MISTAKES, expected_speedup)
        if named:
            return [named]
        alpha, k, c = wrong[0]
        return [f"my_speedup gives {answers[wrong[0]]:g} at {_case(alpha, k, c)}, where the expected speed-up is "
                f"{expected_speedup(alpha, k, c):g} ({len(wrong)} of {len(answers)} points differ)"]
    return []


def prediction_mistakes(table: pd.DataFrame, speedup: Callable[[float, int, float], float]) -> list[str]:
    """Checkpoint 04.3: what is wrong with the learner's ``predicted`` column ([] when it is
    ``speedup(alpha, k, draft_cost_c)`` row by row, with the learner's own ``speedup``)."""
    if "predicted" not in table:
        return ["the table has no `predicted` column"]
    column = pd.to_numeric(table["predicted"], errors="coerce")
    if column.isna().any():
        return [f"`predicted` has no number in {int(column.isna().sum())} of {len(table)} rows: one prediction "
                "per speculative row"]
    got = [float(x) for x in column]

    def each(alpha_column: str = "alpha", c_zero: bool = False, swap: bool = False) -> list[float]:
        values = []
        for row in table.itertuples():
            alpha, k = float(getattr(row, alpha_column)), int(row.k)
            c = 0.0 if c_zero else float(row.draft_cost_c)
            try:
                values.append(float(speedup(k, alpha, c) if swap else speedup(alpha, k, c)))
            except NotImplementedError:
                raise
            except Exception:  # noqa: BLE001 - a candidate the learner's function cannot compute
                values.append(math.nan)
        return values

    right = each()
    if all(_close(g, r) for g, r in zip(got, right)):
        return []
    candidates = [
        (lambda: each(c_zero=True), "`predicted` ignores the draft cost: pass each row's measured draft cost "
                                     "`draft_cost_c` (the early-exit draft pays nearly a target pass per token)"),
        (lambda: each("acceptance_rate"), "`predicted` uses `acceptance_rate` (accepted ÷ drafted, the `accept` "
                                         "column), which counts the untested tail of every draft as misses: the "
                                         "formula's α is the `alpha` column"),
        (lambda: [float(x) for x in table.speedup], "`predicted` is the measured speed-up copied: it must be what "
                                                    "your formula predicts, so the two can be compared"),
        (lambda: [float(r.tokens_per_step) / (r.k * r.draft_cost_c + 1) for r in table.itertuples()],
         "`predicted` divides the measured tokens per step: feed your my_speedup the measured α, so that the "
         "formula's E(α, k) is what is being tested"),
        (lambda: each(swap=True),
         "`predicted` passes k where α goes and α where k goes: my_speedup takes (alpha, k, c)"),
        (lambda: [got[0]] * len(got), "`predicted` holds one value for every row: each row has its own α, k and c"),
    ]
    for values, says in candidates:
        if len(got) > 1 or values is not candidates[-1][0]:
            theirs = values()
            if all(not math.isnan(t) and _close(g, t) for g, t in zip(got, theirs)):
                return [says]
    first = next(i for i, (g, r) in enumerate(zip(got, right)) if not _close(g, r))
    row = table.iloc[first]
    return [f"`predicted` does not equal my_speedup(alpha, k, draft_cost_c) row by row: the {row.workload} / "
            f"{row.draft} row with k = {int(row.k)} has {got[first]:.4g}, your my_speedup gives {right[first]:.4g} "
            "for its measured values"]


def _first_losing_row(table: pd.DataFrame):
    losing = table.loc[table.speedup < 1, "concurrency"]
    return int(losing.iloc[0]) if len(losing) else None


def _highest_losing(table: pd.DataFrame):
    losing = table.loc[table.speedup < 1, "concurrency"]
    return int(losing.max()) if len(losing) else None


def _at_or_below_one(table: pd.DataFrame):
    losing = table.loc[table.speedup <= 1, "concurrency"]
    return int(losing.min()) if len(losing) else None


def _last_paying(table: pd.DataFrame):
    paying = table.loc[table.speedup >= 1, "concurrency"]
    return int(paying.max()) if len(paying) else None


def _losing_speedup(table: pd.DataFrame):
    rows = table[table.speedup < 1]
    return float(rows.loc[rows.concurrency.idxmin(), "speedup"]) if len(rows) else None


CROSSOVER_MISTAKES = [
    (_first_losing_row, "it returns the first losing row's concurrency: the rows are not sorted by concurrency, "
                        "the question asks for the lowest losing one"),
    (_highest_losing, "it returns the highest losing concurrency: the crossover is the lowest one"),
    (_at_or_below_one, "a speed-up of exactly 1.0 counts as slower in your answer: equal is not slower (< 1)"),
    (_last_paying, "it returns the last concurrency where speculation still paid: the question asks for the first "
                   "where it lost"),
    (_losing_speedup, "it returns a speed-up: the answer is a concurrency level"),
]


def crossover_mistakes(my_crossover: Callable, tables: list[pd.DataFrame], made_up: int) -> list[str]:
    """Checkpoint 04.4: what is wrong with the learner's crossover ([] when right on every table, as a plain
    ``int`` or None). The first ``made_up`` tables are the checkpoint's own; the rest were measured."""

    def which(i: int) -> str:
        t = tables[i]
        kind = "made-up" if i < made_up else "measured"
        return (f"{kind} table {i + 1} (concurrency {list(map(int, t.concurrency))}, speed-up "
                f"{[round(float(s), 2) for s in t.speedup]})")

    mine = []
    for i, table in enumerate(tables):
        try:
            mine.append(my_crossover(table))
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - a learner's exception is a failed answer, named
            never = crossover(table) is None
            return [f"my_crossover raised {type(exc).__name__} on {which(i)}"
                    + (": speculation never lost there, so the answer is None" if never else "")]
    right = [crossover(t) for t in tables]
    for mistake, says in CROSSOVER_MISTAKES:
        theirs = [mistake(t) for t in tables]
        if theirs != right and all(_same(m, t) for m, t in zip(mine, theirs)):
            return [says]
    for i, (m, r) in enumerate(zip(mine, right)):
        if r is None and m is not None:
            return [f"my_crossover returns {m!r} on {which(i)}, where speculation never lost: return None"]
    for i, (m, r) in enumerate(zip(mine, right)):
        if m is None and r is not None:
            return [f"my_crossover returns None on {which(i)}, where speculation lost"]
        if not _same(m, r):
            return [f"my_crossover returns {m!r} on {which(i)}: not the lowest concurrency with a speed-up below 1"]
        if m is not None and type(m) is not int:
            return [f"my_crossover returns {m!r} ({type(m).__module__}.{type(m).__name__}) on {which(i)}: "
                    "the right level, but return a plain int"]
    return []


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    x, y = _number(a), _number(b)
    return x is not None and y is not None and _close(x, y)


# ---------- checkpoint 04.2: the drafter and the verify rule ----------

LOOKUP_NGRAMS = (3, 2, 1)  # the library's prompt lookup: the last 3 tokens first, then 2, then 1


def _lookup(tokens, k, ngrams=LOOKUP_NGRAMS, own=False, earliest=False, one_short=False, full=False, extra=0,
            whole=False, matched=False) -> list[int]:
    """Prompt lookup as written right (no options) or with one slip a learner makes (each option one slip)."""
    tokens = list(tokens)
    for n in ngrams:
        if len(tokens) <= n:
            continue
        tail = tokens[-n:]
        last = len(tokens) - n - (0 if own else 1) - (1 if one_short else 0)  # latest start of an earlier match
        for start in (range(0, last + 1) if earliest else range(last, -1, -1)):
            if tokens[start:start + n] == tail:
                first = start if matched else start + n
                follow = tokens[first:] if whole else tokens[first:first + k + extra]
                if full and len(follow) < k:
                    continue
                return follow
    return []


# (tokens, k, what the case holds): each slip below gives a wrong draft on at least one of them
DRAFT_CASES: list[tuple[list[int], int, str]] = [
    ([1, 2, 3, 4, 5, 3, 9, 1, 2, 3], 2, "the last 3 tokens occurred once before, at the start"),
    ([1, 2, 3, 4, 1, 2, 5, 6, 1, 2], 2, "the last 2 tokens occurred twice before, the last 3 never"),
    ([5, 6, 7, 7], 3, "the last token occurred once before, right before it"),
    ([4, 5, 6, 7], 2, "no token occurred before"),
    ([1, 2, 7, 3, 2, 9, 1, 2], 1, "the last 2 tokens occurred once before; the last one alone more recently"),
]

DRAFT_MISTAKES: list[tuple[list[dict], str]] = [
    ([{"own": True}],
     "it finds the last tokens at their own place, at the very end of the sequence, where nothing follows them "
     "yet: only an earlier occurrence can propose a continuation"),
    ([{"earliest": True}],
     "it drafts from the oldest earlier occurrence: when the last tokens occurred more than once, the latest "
     "occurrence is the likeliest to continue the same way"),
    ([{"whole": True}, {"extra": 1}],
     "it returns more than k tokens: a draft holds at most k"),
    ([{"one_short": True}, {"full": True}],
     "no draft when the only earlier occurrence sits at the very end, right before the last tokens: that match "
     "counts too, and its draft is what follows it, even when fewer than k tokens do"),
    ([{"ngrams": (1, 2, 3)}, {"ngrams": (1,)}],
     "it does not prefer the longer n-gram: try the last 3 tokens first (a longer match predicts better), then "
     "the last 2, then the last 1"),
    ([{"ngrams": (3,)}, {"ngrams": (3, 2)}],
     "no fall-back to a shorter n-gram: when the last 3 tokens never occurred before, try the last 2, then the "
     "last 1"),
    ([{"matched": True}],
     "it returns the matching tokens themselves: the draft is what followed them"),
]


def _accepted(draft, predictions, shift=0) -> int:
    accepted = 0
    while accepted < len(draft) and draft[accepted] == predictions[accepted + shift]:
        accepted += 1
    return accepted


def _filtered(draft, predictions) -> list[int]:
    return [d for d, p in zip(draft, predictions) if d == p]


# (draft, predictions, what the case holds): predictions[i] is the target's token where draft[i] stands
VERIFY_CASES: list[tuple[list[int], list[int], str]] = [
    ([4, 7, 1, 8], [4, 7, 2, 8, 3], "the target agrees with the first 2 drafted tokens"),
    ([3, 9], [3, 9, 6], "the target agrees with the whole draft"),
    ([5, 2, 2], [8, 2, 2, 4], "the target rejects the first drafted token; the later ones happen to agree"),
    ([], [6], "nothing was drafted"),
]


def _no_bonus(d, p):
    a = _accepted(d, p)
    return d[:a] + ([p[a]] if a < len(d) else [])


VERIFY_MISTAKES: list[tuple[list[Callable], str]] = [
    ([_no_bonus],
     "no bonus token: when the target agrees with the whole draft (or nothing was drafted) the step still adds "
     "the target's own next token, the prediction after the last drafted token"),
    ([lambda d, p: d[:_accepted(d, p)]],
     "it emits only the accepted drafted tokens: every step adds one token of the target's own — its token at the "
     "first disagreement, or after a fully accepted draft the bonus token"),
    ([lambda d, p: _filtered(d, p) + [p[len(d)]], lambda d, p: _filtered(d, p) + [p[_accepted(d, p)]],
      lambda d, p: list(p), lambda d, p: list(p[:len(d)])],
     "it keeps going after the first disagreement: once the target rejects a drafted token, its predictions "
     "after that were made for a sequence holding the rejected token, so the step stops at the first mismatch"),
    ([lambda d, p: d[:_accepted(d, p, 1)] + [p[_accepted(d, p, 1) + 1]],
      lambda d, p: d[:_accepted(d, p, 1)] + [p[_accepted(d, p, 1)]],
      lambda d, p: d[:_accepted(d, p)] + [p[_accepted(d, p) + 1]],
      lambda d, p: d[:_accepted(d, p) + 1] + [p[_accepted(d, p) + 1]]],
     "off by one: the prediction at index i is the target's token for the place drafted token i fills (the pass "
     "starts at the pending token, so its first prediction already checks the first drafted token), and the "
     "target's token the step adds sits at the index of the first disagreement"),
    ([lambda d, p: d[:_accepted(d, p) + 1], lambda d, p: list(d),
      lambda d, p: d[:_accepted(d, p) + 1] if _accepted(d, p) < len(d) else d + [p[len(d)]]],
     "it emits the draft where the target's predictions belong: at the first disagreement the drafted token was "
     "wrong, so the step emits the target's own token there (the draft only proposes, the predictions decide)"),
]


def _attempt(function: Callable, args: tuple):
    """The answer as a list of ints, ('raised', exception) or ('not a list', value)."""
    try:
        value = function(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - a learner's exception is a failed answer, named
        return ("raised", exc)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or \
            not all(isinstance(t, Integral) and not isinstance(t, bool) for t in value):
        return ("not a list", value)
    return [int(t) for t in value]


def _same_answer(mine, theirs) -> bool:
    if isinstance(mine, tuple) or isinstance(theirs, tuple):
        return isinstance(mine, tuple) and isinstance(theirs, tuple) and mine[0] == theirs[0] == "raised" \
            and type(mine[1]) is type(theirs[1])
    return mine == theirs


def _named(answers: list, right: list, mistakes: list, cases: list, call: Callable) -> str | None:
    """The message of the slip that explains the learner's answers: one explaining every case, else one that
    gives the learner's answer where it is first wrong (the cases are ordered so that the first wrong one
    tells the slips apart)."""
    def slip_answers(variant):
        return [_attempt(variant, call(case)) for case in cases]

    wrong = [i for i, (a, r) in enumerate(zip(answers, right)) if a != r]
    first = wrong[0]
    for variants, says in mistakes:
        for variant in variants:
            theirs = slip_answers(variant)
            if all(_same_answer(a, t) for a, t in zip(answers, theirs)):
                return says
    for variants, says in mistakes:
        for variant in variants:
            if _same_answer(answers[first], _attempt(variant, call(cases[first]))):
                return says
    return None


def _shown(answer) -> str:
    if isinstance(answer, tuple) and answer[0] == "raised":
        exc = answer[1]
        return f"raised {type(exc).__name__}" + (f" ({str(exc).splitlines()[0][:120]})" if str(exc) else "")
    return f"returned {answer}"


def _function_mistakes(name: str, function: Callable, cases: list, right_of: Callable, call: Callable,
                       described: Callable, mistakes: list) -> list[str]:
    answers = [_attempt(function, call(case)) for case in cases]
    right = [right_of(*call(case)) for case in cases]
    wrong = [i for i, (a, r) in enumerate(zip(answers, right)) if a != r]
    if not wrong:
        return []
    first = wrong[0]
    example = (f"{name}({described(cases[first])}) {_shown(answers[first])} where the draft is {right[first]}"
               if name == "my_draft" else
               f"{name}({described(cases[first])}) {_shown(answers[first])} where the step emits {right[first]}")
    example += f" — {cases[first][2]}"
    mine = answers[first]
    if isinstance(mine, tuple) and mine[0] == "not a list":
        return [f"{name}({described(cases[first])}) returned {mine[1]!r:.80}: it must return a list of token ids "
                "(ints)" + (", [] when there is nothing to draft" if name == "my_draft" else "")]
    named = _named(answers, right, mistakes, cases, call)
    if named:
        return [f"{name}: {named} ({example})"]
    if isinstance(mine, tuple):
        extra = ""
        if isinstance(mine[1], IndexError) and name == "my_verify":
            extra = ": predictions holds one token more than the draft, the last one follows the whole draft"
        return [f"{example}{extra}"]
    if name == "my_verify" and not mine:
        return [f"{example}: a step always emits at least one token, the target's own"]
    return [f"{example} ({len(wrong)} of {len(cases)} made-up cases differ)"]


class MechanismMistakes(list):
    """What :func:`mechanism_mistakes` found (a list of messages, [] when right), with the real run's numbers:
    ``run`` (the speculative generation with the learner's functions, its acceptance as the library counted
    it) and ``plain`` (greedy without a draft), None without a model; ``note`` says when the output differed
    from greedy only by the arithmetic (the learner's functions agreed with the rule at every step)."""

    def __init__(self, problems=(), cases: int = 0):
        super().__init__(problems)
        self.cases = cases
        self.run = None
        self.plain = None
        self.note = ""


def mechanism_mistakes(my_draft: Callable[[list[int], int], list[int]],
                       my_verify: Callable[[list[int], list[int]], list[int]], model=None,
                       workload: str = "code-edit", k: int = 4, max_new_tokens: int = 48) -> MechanismMistakes:
    """Checkpoint 04.2: what is wrong with the learner's drafter and verify rule ([] when both are right).

    First on made-up token lists (each slip a learner makes changes at least one answer, and the message names
    the slip); then, when ``model`` (a :class:`SpecModel`) is given, the real loop: the model generates from
    the workload's prompt with the learner's two functions at ``k`` and must give plain greedy's tokens, token
    for token. ``NotImplementedError`` passes through (the exercise is not done yet)."""
    from .drafts import prompt_lookup_draft
    from .runner import check_lossless
    from .verify import StepError, greedy_verify
    from .workloads import workload_prompt

    problems = MechanismMistakes(cases=len(DRAFT_CASES) + len(VERIFY_CASES))
    problems += _function_mistakes(
        "my_draft", my_draft, DRAFT_CASES, prompt_lookup_draft, lambda case: (list(case[0]), case[1]),
        lambda case: f"{case[0]}, k={case[1]}",
        [([lambda t, k, o=options: _lookup(t, k, **o) for options in variants], says)
         for variants, says in DRAFT_MISTAKES])
    problems += _function_mistakes(
        "my_verify", my_verify, VERIFY_CASES, greedy_verify, lambda case: (list(case[0]), list(case[1])),
        lambda case: f"draft={case[0]}, predictions={case[1]}", VERIFY_MISTAKES)
    if problems or model is None:
        return problems

    prompt = model.encode_chat(workload_prompt(workload))
    first = {}  # the first step where the learner's function disagreed with the library's rule

    def drafter(tokens, k):
        answer = my_draft(list(tokens), k)
        expected = prompt_lookup_draft(tokens, k)
        if "draft" not in first and _attempt(lambda: answer, ()) != expected:
            first["draft"] = (len(tokens), list(tokens[-6:]), answer, expected)
        return answer

    def verify(draft, predictions):
        answer = my_verify(list(draft), list(predictions))
        expected = greedy_verify(draft, predictions)
        if "verify" not in first and _attempt(lambda: answer, ()) != expected:
            first["verify"] = (list(draft), list(predictions), answer, expected)
        return answer

    where = f"on the lab's model ({workload}, k = {k})"
    problems.plain = model.generate(prompt, max_new_tokens)
    try:
        problems.run = model.generate(prompt, max_new_tokens, k=k, drafter=drafter, verify=verify)
    except NotImplementedError:
        raise
    except StepError as exc:
        problems.append(f"{where}: {exc}")
        return problems
    except Exception as exc:  # noqa: BLE001 - a learner's exception in the loop is a failed answer, named
        said = str(exc).splitlines()[0] if str(exc) else ""
        problems.append(f"{where}: your function raised {type(exc).__name__}" + (f": {said}" if said else ""))
        return problems
    if "draft" in first:
        length, tail, answer, expected = first["draft"]
        problems.append(f"{where}: after {length} tokens (ending {tail}) my_draft proposed {answer!r:.80} where "
                        f"prompt lookup drafts {expected}")
    try:
        check_lossless(problems.plain.tokens, problems.run.tokens)
        differs = ""
    except AssertionError as exc:
        differs = str(exc)
    if "verify" in first:
        draft, predictions, answer, expected = first["verify"]
        problems.append(f"{where}: my_verify(draft={draft}, predictions={predictions}) returned {answer!r:.80} "
                        f"where the step emits {expected}"
                        + (f": {differs}" if differs else " (the output stayed plain greedy's, but a step emits "
                                                          "every token the rule allows)"))
    elif differs:
        problems.note = (f"{differs} — but your functions gave the rule's answer at every step: a near-tie the "
                         "verification pass rounded the other way (section 2 explains it), not your code")
    return problems
