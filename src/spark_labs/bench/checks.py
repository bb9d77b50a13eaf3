"""What a checkpoint can verify about a learner's report: that it holds *real* measurements."""

from __future__ import annotations


def real_measurement_problems(report, min_engines: int = 2) -> list[str]:
    """Reasons the report is not a set of real measurements for ``min_engines`` engines (empty = fine).

    Real means: requests that completed, streamed chunks with increasing timestamps after they were
    sent, and output tokens counted by the server or by the tokenizer — things a hand-typed table or a
    simulated run does not have.
    """
    problems = []
    measured = set()
    for run in getattr(report, "runs", []):
        good = [r for r in run.records if r.ok]
        if not good:
            continue
        for r in good:
            stamps = [c.t_ns for c in r.content_chunks]
            if not stamps or stamps != sorted(stamps) or stamps[0] < r.sent_ns or r.end_ns < stamps[-1]:
                problems.append(f"{run.target}: request {r.request_id} has no consistent chunk timestamps")
                break
            if not (r.output_tokens.server or r.output_tokens.client):
                problems.append(f"{run.target}: request {r.request_id} has no counted output tokens")
                break
        else:
            measured.add(run.target)
    if len(measured) < min_engines:
        problems.append(f"real measurements for {len(measured)} engine(s) ({', '.join(sorted(measured)) or 'none'}); "
                        f"the comparison needs at least {min_engines}")
    return problems


def measuring_loop_problems(report, micro_results, plan, min_engines: int = 2) -> list[str]:
    """Exercise 01.2: besides real measurements (:func:`real_measurement_problems`), every measured engine ran
    the profile's workloads — prefill-heavy and decode-heavy at concurrency 1, the chat sweep at the levels
    :func:`.experiments.engine_workloads` gives it — and ``micro`` at the profile's sizes (pp = the long prompt,
    tg = the output length). Each problem names the engine and what is missing or mis-sized."""
    from ..engines.registry import ENGINES
    from .experiments import engine_workloads

    problems = real_measurement_problems(report, min_engines)
    measured = list(getattr(report, "engine_names", []))
    if len(measured) < min_engines:
        others = [name for name in plan.engines if name not in measured and ENGINES[name].availability()]
        if others:
            problems.append(f"only {', '.join(measured) or 'no engine'} measured: the loop must measure every engine "
                            f"of the profile that can run here — also {', '.join(others)}")
    runs: dict[str, dict[str, set]] = {}
    for run in getattr(report, "runs", []):
        level = run.load.concurrency if run.load.mode != "sequential" else 1
        runs.setdefault(run.target, {}).setdefault(run.workload, set()).add(level)
    tests: dict[str, set] = {}
    for frame in micro_results or []:
        for _, row in frame.iterrows():
            tests.setdefault(str(row["engine"]), set()).add(str(row["test"]))
    sizes = plan.sizes
    wanted_tests = {f"pp{sizes.long_prompt_tokens}", f"tg{sizes.max_tokens}"}
    for engine in measured:
        _, levels, _ = engine_workloads(engine, plan)
        done = runs.get(engine, {})
        for workload in ("prefill-heavy", "decode-heavy"):
            if 1 not in done.get(workload, set()):
                problems.append(f"{engine}: no {workload} run at concurrency 1 (measure it with Load('concurrent', 1))")
        swept = sorted(done.get("chat", set()))
        if swept != sorted(levels):
            problems.append(f"{engine}: the chat sweep ran at concurrency {swept or 'none'}, but this engine's levels "
                            f"are {list(levels)} (the `levels` engine_workloads gave it)")
        if not tests.get(engine):
            problems.append(f"{engine}: no micro (pp/tg) results in micro_results")
        elif tests[engine] != wanted_tests:
            problems.append(f"{engine}: micro ran {sorted(tests[engine])}, but the profile's sizes are "
                            f"{sorted(wanted_tests)}: pass pp=lab.sizes.long_prompt_tokens and tg=lab.sizes.max_tokens")
    return problems
