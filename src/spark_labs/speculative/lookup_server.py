"""Prompt-lookup speculation inside a server that counts nothing: llama.cpp's speed-up and output identity.

llama-cpp-python's server drafts with ``LlamaPromptLookupDecoding`` when started with ``--draft_model``
(the registry's ``speculative_args("ngram", k)``): it looks the last two tokens (else the last one) up in the
prompt and the answer so far and proposes the k tokens that followed their first occurrence. Every request kind goes
through the same ``Llama.generate`` loop, so chat completions, streamed or not, are drafted. Requests are
sent greedy with the repeat penalty off (``EngineSpec.greedy_request_fields``: the server's default is 1.1). The server
keeps no acceptance counts, so α and tokens per step cannot be read from it: what can be measured is the
speed-up and whether the answer is the plain server's answer.

One server per setting, each started once (llama.cpp starts in seconds on the tiny model): plain, then one
per k, then plain again, so a machine that slows down during the sweep shows as a gap between the two plain
runs (``baseline drift``) rather than as a fake speed-up. Each workload's prompt is sent greedy, one request
at a time, through the course harness (:func:`spark_labs.bench.run_load`, one warm-up request first).
What a drafted step costs there is measured separately (:func:`verify_cost`): a pass over k + 1 tokens in
one-token passes, the number the speed-up has to beat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ..bench.clients import Target
from .comparison import DEFAULT_WORKLOADS, _check_ks
from .under_load import LevelRun, measure_level, side_summary
from .workloads import workload_prompt

LOOKUP_KS = (2, 4, 8)


def lookup_table(plain: Sequence[Sequence[LevelRun]], speculative: dict[int, Sequence[LevelRun]]) -> pd.DataFrame:
    """One row per (workload, k): decode tok/s (1 / TPOT, first token excluded) of the plain server (mean of
    its runs in ``plain``) and the speculative one, their ratio, the same for E2E, and the share of
    speculative answers identical to the plain server's answer."""
    if not plain:
        raise ValueError("no plain-server runs to compare with")
    by_workload: dict[str, list[dict]] = {}
    for runs in plain:
        for run in runs:
            by_workload.setdefault(run.workload, []).append(side_summary(run))
    rows = []
    for k, runs in speculative.items():
        for run in runs:
            if run.workload not in by_workload:
                raise ValueError(f"no plain-server run for workload {run.workload}")
            bases, s = by_workload[run.workload], side_summary(run)
            base_tok_s = float(np.mean([b["per_stream_tok_s"] for b in bases]))
            base_e2e = float(np.mean([b["e2e_s"] for b in bases]))
            plain_texts = {t for b in bases for t in b["texts"]}
            rows.append({
                "workload": run.workload, "k": k, "requests": len(s["texts"]), "tokens": s["tokens"],
                "plain tok/s": base_tok_s, "spec tok/s": s["per_stream_tok_s"],
                "speed-up": s["per_stream_tok_s"] / base_tok_s,
                "plain E2E s": base_e2e, "spec E2E s": s["e2e_s"], "E2E speed-up": base_e2e / s["e2e_s"],
                "same output": sum(t in plain_texts for t in s["texts"]) / len(s["texts"]),
                "plain answers agree": len(plain_texts) == 1,
                "baseline drift": (bases[-1]["per_stream_tok_s"] / bases[0]["per_stream_tok_s"] - 1
                                   if len(bases) > 1 else float("nan")),
            })
    return pd.DataFrame(rows)


def verify_cost(gguf: str, ks: Sequence[int] = LOOKUP_KS, repeats: int = 7, context: int = 60) -> dict[int, float]:
    """What llama.cpp's verification pass of k + 1 tokens costs, in one-token decode passes: the fastest of
    ``repeats`` evaluations of k + 1 tokens after ``context`` prompt tokens ÷ the fastest for one token (other
    processes on a shared box only ever add time, and a batch pass spread over every core suffers most from
    them: a median once read 73 one-token passes on a loaded 2-core box). Measured in process
    with llama-cpp-python's own defaults, which its server uses too (logits for every position; one thread
    per token, all cores for a batch of several), so it is the price a drafted step pays there."""
    import time

    from llama_cpp import Llama

    ks = _check_ks(ks)
    llm = Llama(gguf, n_ctx=512, logits_all=True, verbose=False)
    try:
        tokens = llm.tokenize(workload_prompt("code-edit").encode())
        if len(tokens) < context + max(ks) + 1:
            raise ValueError(f"k up to {len(tokens) - context - 1} only (the prompt has {len(tokens)} tokens)")
        seconds: dict[int, list[float]] = {n: [] for n in (1, *(k + 1 for k in ks))}
        for _ in range(repeats):
            for n, times in seconds.items():
                llm.reset()
                llm.eval(tokens[:context])
                started = time.perf_counter()
                llm.eval(tokens[context:context + n])
                times.append(time.perf_counter() - started)
    finally:
        llm.close()
    one = min(seconds[1])
    return {k: min(seconds[k + 1]) / one for k in ks}


def run_lookup_sweep(plan, ks: Sequence[int] = LOOKUP_KS, workloads: Sequence[str] = DEFAULT_WORKLOADS,
                     max_tokens: int = 48, requests: int = 3, engine: str | None = None,
                     extra_args: Sequence[str] = (), progress=True, timeout: float = 180,
                     log: Callable[[str], None] = print) -> pd.DataFrame:
    """Start ``engine`` plain, with prompt lookup at each k, then plain again (one start each, stopped after
    its runs); send every workload ``requests`` times at concurrency 1. Returns :func:`lookup_table`, for
    a GGUF engine with a ``verify cost`` column (:func:`verify_cost`, measured after the sweep). ``engine``
    defaults to the first engine whose speculation is prompt lookup without counts (llama.cpp).
    ``extra_args`` go to every start (e.g. thread counts), so both sides run the same configuration.

    ``progress``: True for one tqdm bar over the (server, workload) runs."""
    from ..engines import engine_args, launch, resolve_engine
    from .modes import LOOKUP, engines_measured_by

    engine = engine or engines_measured_by(LOOKUP)[0]
    spec = resolve_engine(engine)
    ks = _check_ks(ks)
    flags = {k: spec.speculative_args("ngram", k) for k in ks}  # refuses an engine without it before any start
    settings = [0, *ks, 0]  # 0: plain
    bar = None
    if progress is True:
        from ..progress import progress_bar

        bar = progress_bar(total=len(settings) * len(workloads), desc=f"{spec.display_name}: plain / prompt lookup",
                   unit="run")
    plain: list[list[LevelRun]] = []
    speculative: dict[int, list[LevelRun]] = {}
    try:
        for k in settings:
            handle = launch(engine, plan.model, port="auto", lab=plan.lab, timeout=timeout, progress=False,
                            extra_args=engine_args(engine, plan.sizes.max_model_len, plan.profile.device)
                            + list(extra_args) + flags.get(k, []))
            try:
                log(f"{spec.display_name} {'with prompt lookup, k = ' + str(k) if k else 'plain'} ready in "
                    f"{handle.ready_after_s:.1f} s")
                target = Target.from_engine(handle)
                target = replace(target, chat_extras={**target.chat_extras, **spec.greedy_request_fields})
                runs = []
                for workload in workloads:
                    runs.append(measure_level(target, workload, 1, max_tokens, requests, progress=False))
                    if bar is not None:
                        bar.update(1)
            finally:
                handle.stop()
            if k:
                speculative[k] = runs
            else:
                plain.append(runs)
    finally:
        if bar is not None:
            bar.close()
    table = lookup_table(plain, speculative)
    if spec.model_format == "gguf":  # the price of a drafted step (llama-cpp-python runs any GGUF), for every k
        table["verify cost"] = table.k.map(verify_cost(spec.model_arg(plan.model), ks))
    return table
