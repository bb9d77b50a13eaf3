"""Static and continuous batching as schedules: which request holds which slot, for which decode steps.

A *slot* is one row of the batch the engine runs each step. Static batching (what plain ``generate``
does) takes ``batch_size`` requests, runs them until the longest one is done, then takes the next batch:
a request that finished early keeps its slot, idle, until its batch ends. Continuous batching hands a
slot to the next waiting request as soon as one frees up. Both are built here from the output lengths
alone, in decode steps, so the waste of a static schedule can be counted exactly; the measured runs
(``static.run_static_batches`` and vLLM through the harness) become timelines in seconds with
:func:`measured_timeline`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .kv_capacity import KVCapacityError


def mixed_lengths(n: int, shortest: int, longest: int, seed: int = 0) -> list[int]:
    """``n`` forced output lengths spread evenly from ``shortest`` to ``longest`` tokens, in a shuffled
    (reproducible) arrival order, so every static batch mixes short and long requests."""
    if n < 1 or not 1 <= shortest <= longest:
        raise KVCapacityError(f"n={n}, shortest={shortest}, longest={longest}: give n ≥ 1 and "
                              "1 ≤ shortest ≤ longest tokens")
    lengths = np.linspace(shortest, longest, n).round().astype(int)
    return [int(x) for x in np.random.default_rng(seed).permutation(lengths)]


def mixed_prompts(tokenizer, n: int) -> list[str]:
    """``n`` short prompts (16, 20 or 24 tokens) that share nothing, for the mixed-length workload."""
    from ..bench.prompts import synthetic_prompt

    return [synthetic_prompt(tokenizer, 16 + 4 * (i % 3), seed=i) for i in range(n)]


def _check(lengths, batch_size: int) -> list[int]:
    lengths = [int(x) for x in lengths]
    if not lengths or min(lengths) < 1:
        raise KVCapacityError(f"lengths={lengths!r}: every request needs at least one output token")
    if batch_size < 1:
        raise KVCapacityError(f"batch_size={batch_size}: a batch holds at least one request")
    return lengths


def static_schedule(lengths, batch_size: int) -> pd.DataFrame:
    """One row per request: its batch, slot, and the steps it holds the slot. A batch starts when the
    previous one ends and lasts as long as its longest request; ``busy_steps`` are the steps that produce
    one of the request's tokens, the rest of ``held_steps`` is idle."""
    lengths = _check(lengths, batch_size)
    rows, start = [], 0
    for b in range(0, len(lengths), batch_size):
        batch = lengths[b:b + batch_size]
        for slot, n in enumerate(batch):
            rows.append({"request": b + slot, "batch": b // batch_size, "slot": slot, "start_step": start,
                         "busy_steps": n, "held_steps": max(batch)})
        start += max(batch)
    return pd.DataFrame(rows)


def continuous_schedule(lengths, slots: int) -> pd.DataFrame:
    """The same requests, each taking the first slot that frees up (in arrival order): nobody holds a
    slot longer than its own output."""
    lengths = _check(lengths, slots)
    free_at = [0] * slots
    rows = []
    for i, n in enumerate(lengths):
        slot = int(np.argmin(free_at))
        rows.append({"request": i, "slot": slot, "start_step": free_at[slot], "busy_steps": n, "held_steps": n})
        free_at[slot] += n
    return pd.DataFrame(rows)


def idle_slot_steps(schedule: pd.DataFrame, slots: int) -> dict[str, int]:
    """Count the schedule's slot-steps on its grid (``slots`` rows × steps until the last request ends):
    how many produced a token, and how many a slot spent without one (held idle, or empty)."""
    steps = int((schedule["start_step"] + schedule["held_steps"]).max())
    grid = np.zeros((slots, steps), dtype=bool)
    for row in schedule.itertuples():
        grid[row.slot, row.start_step:row.start_step + row.busy_steps] = True
    return {"slot_steps": grid.size, "busy": int(grid.sum()), "idle": int(grid.size - grid.sum()), "steps": steps}


def measured_timeline(requests: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows for the timeline figure from a measured run: ``request``, ``slot``, ``start_s``, ``useful_end_s``,
    ``end_s`` (seconds since the workload arrived), labelled with ``kind``. Between ``useful_end_s`` and
    ``end_s`` the request holds its slot without producing anything (static batching's staircase)."""
    missing = {"request", "slot", "start_s", "useful_end_s", "end_s"} - set(requests.columns)
    if missing:
        raise KVCapacityError(f"a timeline needs the columns {sorted(missing)}")
    return requests.assign(kind=kind)[["kind", "request", "slot", "start_s", "useful_end_s", "end_s",
                                       *(c for c in ("output_tokens",) if c in requests.columns)]]


def vllm_timeline(records, lengths) -> pd.DataFrame:
    """A closed-loop harness run (``RunResult.records``) as timeline rows: each stream is a slot, a request
    holds it from send to its last token. Times are seconds since the first request was sent."""
    t0 = min(r.sent_ns for r in records)
    rows = [{"request": int(r.request_id.rsplit("-", 1)[-1]), "slot": r.stream, "start_s": (r.sent_ns - t0) / 1e9,
             "useful_end_s": (r.end_ns - t0) / 1e9, "end_s": (r.end_ns - t0) / 1e9,
             "output_tokens": r.output_tokens.best, "ok": r.ok}
            for r in records]
    frame = pd.DataFrame(rows).sort_values("request", ignore_index=True)
    frame["asked_tokens"] = [lengths[i] for i in frame["request"]]
    return frame


def batching_summary(timeline: pd.DataFrame) -> dict[str, float]:
    """Output throughput over the whole workload and the E2E distribution, E2E counted from the moment
    the workload arrived (every request is queued at t = 0) to the moment its answer is returned."""
    e2e = timeline["end_s"]
    tokens = timeline["output_tokens"].sum()
    return {"requests": len(timeline), "output_tokens": int(tokens), "wall_s": float(e2e.max()),
            "output_tok_per_s": float(tokens / e2e.max()), "e2e_p50_s": float(e2e.quantile(0.5)),
            "e2e_p99_s": float(e2e.quantile(0.99))}


def compare_timelines(timelines: dict[str, pd.DataFrame], steps: dict[str, int | None]) -> pd.DataFrame:
    """One row per run: throughput, E2E, how long requests held a slot and the part of it they were already
    done (``idle_share``), and the engine steps the run took (None where the engine does not report it)."""
    rows = {}
    for name, timeline in timelines.items():
        held = (timeline["end_s"] - timeline["start_s"]).sum()
        idle = (timeline["end_s"] - timeline["useful_end_s"]).sum()
        rows[name] = {**batching_summary(timeline), "held_slot_s": held, "idle_share": idle / held,
                      "engine_steps": steps.get(name)}
    return pd.DataFrame.from_dict(rows, orient="index")


def policy_comparison(static_run, your_run, engine_records, lengths,
                      engine: str) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Lab 02's side-by-side: two policies on the same batched step (:class:`~.slot_loop.PolicyRun`s), then
    ``engine`` (its harness records) serving the same workload with as many requests in flight."""
    slots = static_run.slots
    runs = {f"static batches of {slots} (same step)": static_run, f"your scheduler, {slots} rows (same step)": your_run}
    timelines = {name: measured_timeline(run.timeline(), name) for name, run in runs.items()}
    timelines[f"{engine}, {slots} at a time"] = measured_timeline(vllm_timeline(engine_records, lengths), engine)
    return compare_timelines(timelines, {name: run.n_steps for name, run in runs.items()}), timelines


def batching_comparison(static_run: pd.DataFrame, continuous_records, lengths,
                        batch_size: int) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Lab 02 before its scheduler exercise: transformers ``generate`` in static batches against vLLM (kept for
    learners' saved copies of that notebook); ``schedule_steps`` are the schedules' steps for these lengths."""
    timelines = {f"static: transformers generate, batches of {batch_size}": measured_timeline(static_run, "static"),
                 f"continuous: vLLM, {batch_size} at a time": measured_timeline(
                     vllm_timeline(continuous_records, lengths), "continuous")}
    steps = [idle_slot_steps(static_schedule(lengths, batch_size), batch_size)["steps"],
             idle_slot_steps(continuous_schedule(lengths, batch_size), batch_size)["steps"]]
    table = compare_timelines(timelines, dict(zip(timelines, steps)))
    return table.rename(columns={"engine_steps": "schedule_steps"}), timelines
