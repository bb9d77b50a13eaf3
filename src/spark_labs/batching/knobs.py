"""Two scheduler knobs, measured: ``--max-num-seqs`` (how many requests run at once) and
``--max-num-batched-tokens`` (how many tokens one engine step may compute, which cuts a long prompt into
chunks when chunked prefill is on — the default in vLLM's V1 engine, CPU build included).

The chunked-prefill experiment keeps a few short streams decoding and sends one long prompt while they
run. A step that prefills the whole prompt at once delays every running stream's next token (an
inter-token-latency spike); a small token budget spreads the prompt over many steps, so the streams barely
notice it, and the long prompt waits longer for its first token.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..bench.clients import BenchRequest, Target
from ..bench.load import Load, run_load
from ..bench.metrics import request_metrics
from ..bench.prompts import synthetic_prompt
from .kv_capacity import KVCapacityError


def injection_requests(tokenizer, streams: int, stream_output: int, long_prompt_tokens: int,
                       seed: int = 0) -> list[BenchRequest]:
    """``streams`` short requests that decode ``stream_output`` tokens, then one long prompt (one output
    token: only its prefill matters). Prompts share nothing, so prefix caching plays no part."""
    short = [BenchRequest(f"stream-{seed}-{i}", synthetic_prompt(tokenizer, 8, seed=50_000 + 100 * seed + i),
                          stream_output, workload="short streams", prompt_tokens=8) for i in range(streams)]
    long = BenchRequest(f"long-{seed}", synthetic_prompt(tokenizer, long_prompt_tokens, seed=60_000 + seed), 1,
                        workload=f"{long_prompt_tokens}-token prompt", prompt_tokens=long_prompt_tokens)
    return [*short, long]


def run_injection(target: Target, tokenizer, streams: int = 3, stream_output: int = 64,
                  long_prompt_tokens: int = 512, inject_after_s: float = 1.5, max_model_len: int | None = None,
                  seed: int = 0) -> dict:
    """Start the short streams, send the long prompt ``inject_after_s`` later, and return the long prompt's
    TTFT with the running streams' inter-token latency: median, and the largest gap while the long
    prompt was being prefilled (from its send to its first token)."""
    if max_model_len is not None and long_prompt_tokens + 1 > max_model_len:
        raise KVCapacityError(f"a {long_prompt_tokens}-token prompt does not fit max_model_len={max_model_len}: "
                              "lower long_prompt_tokens or start the engine with a larger --max-model-len")
    requests = injection_requests(tokenizer, streams, stream_output, long_prompt_tokens, seed)
    # One long prompt first, unmeasured: on a CPU the first step of a new size pays one-time kernel set-up.
    warm = injection_requests(tokenizer, 0, 1, long_prompt_tokens, seed + 1)
    run_load(target, warm, Load("sequential", warmup=0), progress=False, server_metrics=False)
    # A closed loop with one stream per request: stream k starts at k/N of the ramp, the long prompt last.
    ramp = inject_after_s * (streams + 1) / streams
    run = run_load(target, requests, Load("concurrent", streams + 1, warmup=0, ramp_up=ramp), progress=False,
                   server_metrics=False)
    by_id = {r.request_id: r for r in run.records}
    failed = [r.request_id for r in run.records if not r.ok]
    if failed:
        raise KVCapacityError(f"requests {failed} failed: {by_id[failed[0]].error}")
    long = by_id[requests[-1].request_id]
    window = (long.sent_ns, long.content_chunks[0].t_ns)
    gaps, spikes = [], []
    for request in requests[:-1]:
        times = np.array([c.t_ns for c in by_id[request.request_id].content_chunks])
        gap = np.diff(times) / 1e6
        gaps.extend(gap)
        inside = gap[(times[1:] > window[0]) & (times[:-1] < window[1])]  # gaps overlapping the prefill
        spikes.append(inside.max() if inside.size else np.nan)
    return {"long_ttft_ms": request_metrics(long).ttft_s * 1e3, "itl_p50_ms": float(np.median(gaps)),
            "itl_max_during_prefill_ms": float(np.nanmax(spikes)) if not np.isnan(spikes).all() else None,
            "streams_overlapped": int(np.sum(~np.isnan(spikes)))}


def chunked_prefill_table(rows: dict[str, dict]) -> pd.DataFrame:
    """One row per token budget (``--max-num-batched-tokens``)."""
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "max-num-batched-tokens"
    return table


def knee(levels: pd.DataFrame) -> int | None:
    """The first concurrency at which the engine ran fewer requests than were sent (the rest waited)."""
    held_back = levels[levels["max_running"] < levels["concurrency"]]
    return int(held_back["concurrency"].min()) if not held_back.empty else None


def chunked_tradeoff(small: dict, large: dict) -> dict[str, float | str]:
    """The library's reading of the two runs (checkpoint 02.6 compares the learner's with it)."""
    spike = large["itl_max_during_prefill_ms"] / small["itl_max_during_prefill_ms"]
    return {"spike_ratio": spike, "ttft_ratio": small["long_ttft_ms"] / large["long_ttft_ms"],
            "protects": "small" if spike > 1 else "large"}
