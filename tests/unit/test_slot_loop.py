"""Lab 02's engine loop around a scheduling policy: its books (steps, idle slot-steps, stamps) and the verdict
on a learner's policy. The step here is a stand-in that hands out counters instead of a model's tokens: the
loop's bookkeeping does not depend on what the model says, and the real step (``BatchedDecoder`` on the lab's
model) runs in lab 02's notebook tests and its wrong-answer suite."""

from __future__ import annotations

import pytest

from spark_labs.batching import ScheduleError, run_policy, scheduler_verdict, static_batching
from spark_labs.batching.schedules import continuous_schedule, idle_slot_steps, static_schedule


class StandInStep:
    """``prefill`` / ``step`` / ``release`` with the shapes of BatchedDecoder, tokens made up (100 × row + n)."""

    def __init__(self, slots: int):
        self.slots = slots
        self.made = [0] * slots
        self.prefilled: list[int] = []

    def prefill(self, row, input_ids):
        self.prefilled.append(row)
        self.made[row] = 1
        return 100 * row + 1

    def step(self):
        self.made = [n + 1 if n else 0 for n in self.made]
        made = list(self.made)

        class Tokens:
            def tolist(self):
                return [100 * row + n for row, n in enumerate(made)]
        return Tokens()

    def release(self, row):
        self.made[row] = 0


def continuous(waiting, running, slots):
    retire = [row for row, r in running.items() if r["made"] >= r["max_tokens"]]
    free = [row for row in range(slots) if row not in running or row in retire]
    return {"retire": retire, "admit": [(row, r["id"]) for row, r in zip(free, waiting)]}


def one_step_late():
    """Retires a request one call after the call that first saw it done (a stand-in for a scheduler whose
    books lag a step)."""
    seen: set[int] = set()

    def policy(waiting, running, slots):
        done = {row for row, r in running.items() if r["made"] >= r["max_tokens"]}
        retire = sorted(row for row in done if running[row]["id"] in seen)
        seen.update(running[row]["id"] for row in done)
        free = [row for row in range(slots) if row not in running or row in retire]
        return {"retire": retire, "admit": [(row, r["id"]) for row, r in zip(free, waiting)]}
    return policy


LENGTHS = [5, 1, 1, 1, 9, 2]
PROMPTS = [[1, 2, 3]] * len(LENGTHS)


@pytest.mark.parametrize(("policy", "schedule"), [(static_batching, static_schedule),
                                                  (continuous, continuous_schedule)])
def test_the_loop_takes_as_many_engine_steps_as_the_schedule_counts(policy, schedule):
    run = run_policy(policy, StandInStep(4), PROMPTS, LENGTHS)
    counted = idle_slot_steps(schedule(LENGTHS, 4), 4)
    assert run.n_steps == counted["steps"]
    assert run.steps["busy"].sum() == sum(LENGTHS) == counted["busy"]
    assert list(run.requests["output_tokens"]) == LENGTHS
    assert (run.requests["useful_end_s"] <= run.requests["end_s"]).all()


def test_a_request_gets_its_prefill_token_then_one_token_per_step_of_its_own_row():
    run = run_policy(continuous, StandInStep(2), PROMPTS[:3], [3, 1, 2])
    assert run.tokens[0] == [1, 2, 3]           # row 0: prefill, then two steps
    assert run.tokens[1] == [101]               # row 1: done at its prefill
    assert run.tokens[2] == [101, 102]          # row 1 again, the step after request 1 left it


def test_static_batching_holds_finished_rows_and_the_verdict_names_it():
    run = run_policy(static_batching, StandInStep(4), PROMPTS, LENGTHS)
    assert run.steps["held_done"].sum() > 0
    verdict = scheduler_verdict({"case": run})
    assert not verdict.passed and "that is static batching" in verdict.message


def test_a_policy_that_retires_a_step_late_fails_naming_the_extra_step():
    verdict = scheduler_verdict({"case": run_policy(one_step_late(), StandInStep(4), PROMPTS, LENGTHS)})
    assert not verdict.passed and "held its row for 1 engine step(s) after its last token" in verdict.message


def test_the_continuous_policy_passes():
    assert scheduler_verdict({"case": run_policy(continuous, StandInStep(4), PROMPTS, LENGTHS)}).passed


@pytest.mark.parametrize(("answer", "says"), [
    (None, "return a dict"),
    ({"retire": [3]}, "row 3 was retired but holds no request"),
    ({"admit": [(0, 0), (0, 1)]}, "which is not free"),
    ({"admit": [(0, 9)]}, "request 9 was admitted but is not waiting"),
    ({"admit": [("a", 0)]}, "'admit' (row, request id) pairs"),
    ({}, "would produce no token: no row is in use"),
])
def test_an_answer_the_loop_cannot_carry_out_stops_it_with_a_sentence(answer, says):
    step = StandInStep(2)
    with pytest.raises(ScheduleError, match=says.replace("(", r"\(").replace(")", r"\)")):
        run_policy(lambda waiting, running, slots: answer, step, PROMPTS[:2], [2, 2])
    assert step.made == [0, 0]  # whatever was admitted is released again


def test_a_policy_that_never_retires_stops_the_loop_naming_the_finished_requests():
    never = lambda waiting, running, slots: {"admit": [(row, r["id"]) for row, r in  # noqa: E731
                                                       zip([x for x in range(slots) if x not in running], waiting)]}
    with pytest.raises(ScheduleError, match=r"requests \[0, 1\] have all their tokens"):
        run_policy(never, StandInStep(2), PROMPTS, LENGTHS)


def test_a_row_left_empty_with_nothing_retired_is_named_apart_from_a_late_refill():
    one_at_a_time = lambda waiting, running, slots: {  # noqa: E731
        "retire": [row for row, r in running.items() if r["made"] >= r["max_tokens"]],
        "admit": [(row, r["id"]) for row, r in zip([x for x in range(slots) if x not in running], waiting[:1])]}
    verdict = scheduler_verdict({"case": run_policy(one_at_a_time, StandInStep(4), PROMPTS, LENGTHS)})
    assert not verdict.passed and "give every free row a waiting request" in verdict.message
    assert "at engine step 0 3 row(s) stood empty while 5 request(s) waited" in verdict.message


def test_newest_first_is_named_at_the_first_request_that_jumped_the_queue():
    def newest_first(waiting, running, slots):
        retire = [row for row, r in running.items() if r["made"] >= r["max_tokens"]]
        free = [row for row in range(slots) if row not in running or row in retire]
        return {"retire": retire, "admit": [(row, r["id"]) for row, r in zip(free, waiting[::-1])]}
    verdict = scheduler_verdict({"case": run_policy(newest_first, StandInStep(4), PROMPTS, LENGTHS)})
    assert not verdict.passed and "at engine step 0 request 2 took a row while request 0" in verdict.message
