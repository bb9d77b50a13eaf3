"""A scheduling policy on a real batched decode step: the policy decides, the library steps, stamps and counts.

An engine's scheduler is called once per engine step (vLLM's ``Scheduler.schedule()``): it sees who waits and
who runs, and says which finished requests leave and which waiting ones take a free row. The engine then runs
one step over every row in use and hands each row its token. :func:`run_policy` is that engine loop, around
any policy of this shape::

    policy(waiting, running, slots) -> {"retire": [row, ...], "admit": [(row, request_id), ...]}

    waiting  requests not admitted yet, in arrival order: [{"id": 4, "max_tokens": 40}, ...]
    running  row -> the request in it and the tokens it has: {0: {"id": 1, "made": 12, "max_tokens": 40}, ...}

Each engine step, in this order:

1. the policy is called with the state the previous step left;
2. the retired rows are freed (a request retired before it has all its tokens loses the rest);
3. one batched decode step for every row in use: each request that still needs tokens gets one; a row whose
   request is done steps too (the batch has a fixed shape) and its token is thrown away: an idle slot-step;
4. each admitted request is prefilled alone into its row, which gives its first token.

So a row produces at most one token per engine step, and a request of n tokens holds its row for at least n
steps: the slot-steps of Exercise 02.1. The step is :class:`~spark_labs.variants.batched.BatchedDecoder`, run
eagerly on the lab's model, the same for every policy: two policies compared here differ in scheduling only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

Policy = Callable[[list, dict, int], dict]
STALL_STEPS = 3  # engine steps in a row without a token before the loop gives up on the policy


class ScheduleError(RuntimeError):
    """The policy returned something the engine loop cannot carry out, or nothing can happen any more."""


@dataclass
class PolicyRun:
    """What one policy did with one workload.

    ``requests``: one row per request: ``slot``, ``admitted_step``, ``done_step`` (its last token),
    ``retired_step``, ``start_s`` / ``useful_end_s`` / ``end_s`` (admitted, last token, row freed; seconds
    since the workload arrived), ``output_tokens`` (what it got) and ``asked_tokens``.
    ``steps``: one row per engine step: rows ``busy`` (produced a token), ``held_done`` (stepped for a request
    that was already done), ``empty``, and requests ``waiting`` after the step's admissions.
    """

    requests: pd.DataFrame
    steps: pd.DataFrame
    tokens: list[list[int]]
    slots: int

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def wall_s(self) -> float:
        return float(self.requests["end_s"].max())

    def timeline(self) -> pd.DataFrame:
        """Rows for :func:`~spark_labs.batching.figures.timeline_figure` and the comparison table."""
        return self.requests[["request", "slot", "start_s", "useful_end_s", "end_s", "output_tokens"]]


def static_batching(waiting: list[dict], running: dict[int, dict], slots: int) -> dict:
    """Static batching as a policy: while anyone in the batch still needs tokens, change nothing; once all
    are done, retire them together and admit the next ``slots`` requests in arrival order."""
    if any(r["made"] < r["max_tokens"] for r in running.values()):
        return {"retire": [], "admit": []}
    return {"retire": list(running), "admit": [(row, r["id"]) for row, r in zip(range(slots), waiting)]}


def slot_decoder(lm, slots: int, prompts: Sequence[Sequence[int]], lengths: Sequence[int]):
    """The batched step on ``lm`` (a :class:`~spark_labs.speculative.runner.SpecModel`), eager, with ``slots``
    rows long enough for the longest prompt and the longest answer."""
    from ..variants.batched import BatchedDecoder

    return BatchedDecoder(lm.model, slots, max(map(len, prompts)) + max(lengths) + 2, compile=False)


def run_policy(policy: Policy, decoder, prompts: Sequence[Sequence[int]], lengths: Sequence[int],
               progress: str | None = None) -> PolicyRun:
    """Serve ``prompts`` (token ids; every request arrives at t = 0) with ``policy`` deciding each engine step,
    request ``i`` forced to ``lengths[i]`` tokens (no end-of-text stops it). ``progress``: a tqdm label.
    :class:`ScheduleError` when the policy's answer cannot be carried out or no request can progress."""
    n, slots = len(prompts), decoder.slots
    if n != len(lengths) or not n or min(lengths) < 1:
        raise ScheduleError(f"{n} prompts and lengths {list(lengths)}: give one length of at least 1 per prompt")
    lengths = [int(x) for x in lengths]
    waiting, rows = list(range(n)), {}  # rows: row -> request id
    tokens: list[list[int]] = [[] for _ in range(n)]
    marks = {key: [None] * n for key in ("slot", "admitted_step", "done_step", "retired_step",
                                         "start_s", "useful_end_s", "end_s")}
    log: list[dict] = []
    idle_in_a_row = 0
    bar = _progress(progress, sum(lengths))
    t0 = time.perf_counter()
    try:
        while waiting or rows:
            step = len(log)
            retire, admit = _carry_out(policy([{"id": i, "max_tokens": lengths[i]} for i in waiting],
                                              {row: {"id": i, "made": len(tokens[i]), "max_tokens": lengths[i]}
                                               for row, i in rows.items()}, slots),
                                       rows, waiting, slots, step)
            for row in retire:
                i = rows.pop(row)
                decoder.release(row)
                marks["retired_step"][i], marks["end_s"][i] = step, time.perf_counter() - t0
            if not waiting and not rows:
                break  # the last call only retired: no engine step follows
            busy = held = 0
            if rows:
                out = decoder.step().tolist()
                for row, i in rows.items():
                    if len(tokens[i]) < lengths[i]:
                        tokens[i].append(int(out[row]))
                        busy += 1
                    else:
                        held += 1
            for row, i in admit:
                waiting.remove(i)
                rows[row] = i
                marks["slot"][i], marks["admitted_step"][i] = row, step
                marks["start_s"][i] = time.perf_counter() - t0
                tokens[i].append(int(decoder.prefill(row, list(prompts[i]))))
                busy += 1
            # A policy that answers the same to the same state would stall for ever; one with books of its
            # own may act a call later, so a few steps without any token are let through.
            idle_in_a_row = 0 if busy else idle_in_a_row + 1
            if idle_in_a_row >= STALL_STEPS:
                raise ScheduleError(_stalled(step, rows, tokens, lengths, waiting))
            now = time.perf_counter() - t0
            for i in rows.values():
                if len(tokens[i]) == lengths[i] and marks["done_step"][i] is None:
                    marks["done_step"][i], marks["useful_end_s"][i] = step, now
            log.append({"step": step, "busy": busy, "held_done": held, "empty": slots - len(rows),
                        "waiting": len(waiting)})
            if bar is not None:
                bar.update(busy)
    finally:
        for row in list(rows):
            decoder.release(row)  # a failed run leaves the decoder ready for the next one
        if bar is not None:
            bar.close()
    requests = pd.DataFrame({"request": range(n), **marks, "output_tokens": [len(t) for t in tokens],
                             "asked_tokens": lengths})
    return PolicyRun(requests, pd.DataFrame(log, columns=["step", "busy", "held_done", "empty", "waiting"]),
                     tokens, slots)


def _carry_out(decision, rows: dict, waiting: list, slots: int, step: int) -> tuple[list[int], list[tuple]]:
    """The policy's answer as (rows to free, (row, request) pairs), or a ScheduleError that says what is wrong."""
    where = f"engine step {step}"
    if not isinstance(decision, dict) or not set(decision) <= {"retire", "admit"}:
        raise ScheduleError(f"{where}: the policy returned {decision!r}; return a dict "
                            "{'retire': [row, ...], 'admit': [(row, request id), ...]}")
    try:
        retire = [int(row) for row in decision.get("retire", [])]
        admit = [(int(row), int(i)) for row, i in decision.get("admit", [])]
    except (TypeError, ValueError):
        raise ScheduleError(f"{where}: 'retire' must list rows and 'admit' (row, request id) pairs; got "
                            f"{decision!r}") from None
    for row in retire:
        if row not in rows:
            raise ScheduleError(f"{where}: row {row} was retired but holds no request (rows in use: "
                                f"{sorted(rows)})")
    if len(set(retire)) < len(retire):
        raise ScheduleError(f"{where}: a row is retired twice: {retire}")
    free = set(range(slots)) - (set(rows) - set(retire))
    taken_rows, taken_ids = set(), set()
    for row, i in admit:
        if row not in free or row in taken_rows:
            raise ScheduleError(f"{where}: request {i} was admitted to row {row}, which is not free "
                                f"(free after this step's retirements: {sorted(free - taken_rows)})")
        if i not in waiting or i in taken_ids:
            raise ScheduleError(f"{where}: request {i} was admitted but is not waiting (waiting: {waiting[:8]}"
                                f"{' …' if len(waiting) > 8 else ''})")
        taken_rows.add(row)
        taken_ids.add(i)
    return retire, admit


def _stalled(step: int, rows: dict, tokens: list, lengths: list, waiting: list) -> str:
    done = [i for i in rows.values() if len(tokens[i]) >= lengths[i]]
    held = (f"requests {done} have all their tokens (made == max_tokens) but still hold their rows, " if done
            else "no row is in use, ")
    return (f"engine step {step} would produce no token: {held}{len(waiting)} request(s) wait, and the policy "
            "retired and admitted nothing — it will answer the same at every step. Retire the requests that "
            "have all their tokens and give free rows to waiting ones.")


def _progress(label: str | None, total: int):
    if label is None:
        return None
    from ..progress import progress_bar

    return progress_bar(total=total, desc=label, unit="tok", leave=False)


# The small cases every checkpoint adds to the lab's workload: a request of one token (done at its prefill)
# and a partial last batch; then equal lengths, where a right policy and static batching coincide.
CHECK_CASES = {"lengths [1, 6, 2, 2, 5, 1]": [1, 6, 2, 2, 5, 1], "lengths [3, 3, 3, 3, 3]": [3, 3, 3, 3, 3]}


def check_scheduler(policy: Policy, decoder, prompts: Sequence[Sequence[int]], lab_run: PolicyRun | None = None):
    """Run ``policy`` on the small cases (on ``decoder``, the lab's real step: seconds) and judge those runs, and
    ``lab_run`` if given, with :func:`~spark_labs.batching.checks.scheduler_verdict`. A policy whose answer the
    loop cannot carry out fails with the loop's sentence; NotImplementedError (an unfinished exercise)
    propagates. Lab 02 checks the small cases before it spends half a minute on its own 16 requests."""
    from .checks import Verdict, scheduler_verdict

    runs = {} if lab_run is None else {"the lab's workload": lab_run}
    for case, lengths in CHECK_CASES.items():
        try:
            runs[case] = run_policy(policy, decoder, prompts[:len(lengths)], lengths)
        except ScheduleError as error:
            return Verdict(False, f"{case}: {error}")
    return scheduler_verdict(runs)
