"""The course harness on a split engine: the same greedy requests, one at a time, against each engine; per-token
latency (TPOT) and TTFT side by side."""

from __future__ import annotations

from collections.abc import Sequence


def decode_run(target, requests: int = 4, max_tokens: int = 32, prompt_tokens: int = 64) -> dict:
    """``requests`` sequential requests (batch 1: the case the split is about) through the harness; mean TTFT and
    time per output token in ms, and the first answer's text."""
    from ..bench import BenchRequest, Load, run_load, summarize

    prompts = ["What is the capital of France? Answer in one sentence."] + [
        f"Write {n + 3} short facts about the number {n + 7}." for n in range(requests - 1)]
    batch = [BenchRequest(f"split-{i}", prompt, max_tokens, "split", prompt_tokens=prompt_tokens)
             for i, prompt in enumerate(prompts)]
    result = run_load(target, batch, Load("sequential"), progress=False, server_metrics=False)
    first = next((r for r in result.records if r.ok), None)
    if first is None:  # no latency to report: say why instead of a table of NaNs
        from ..errors import EngineError

        raise EngineError(f"{target.name}: all {requests} requests failed; the first said: "
                          f"{result.records[0].error}")
    row = summarize(result.records).row()
    return {"engine": target.name, "requests_ok": sum(r.ok for r in result.records),
            "ttft_ms": row["ttft_mean"] * 1000, "tpot_ms": row["tpot_mean"] * 1000,
            "answer": "".join(c.text for c in first.chunks if not c.reasoning)}


def compare_runs(rows: Sequence[dict]):
    """A DataFrame of :func:`decode_run` rows, with each row's TPOT relative to the first's."""
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    frame["tpot_vs_first"] = frame.tpot_ms / frame.tpot_ms.iloc[0]
    return frame
