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
