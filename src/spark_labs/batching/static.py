"""Static batching, run for real: transformers ``generate`` on fixed batches, each waiting for its longest member.

Every request of a batch is forced to decode the batch's longest length (``min_new_tokens`` =
``max_new_tokens``, so EOS cannot end anyone early) and keeps only its own first ``n`` tokens: exactly
what a static server does with a request that is done — it holds its slot until the batch ends. A
stopping criterion that never stops stamps the clock after every decode step, so the moment each request
had its own tokens is measured, not estimated. Prompts are left-padded (decoder-only models continue from
the last position; right padding would put pad tokens between a prompt and its answer).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd

from .schedules import _check


def _step_clock(torch, stamps: list[float]):
    from transformers import StoppingCriteria

    class StepClock(StoppingCriteria):
        """Records when each decode step finished; never stops generation."""

        def __call__(self, input_ids, scores, **kwargs):
            stamps.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StepClock()


def run_static_batches(lm, prompts: Sequence[str], lengths, batch_size: int, progress: bool = True) -> pd.DataFrame:
    """Serve ``prompts`` in arrival order as static batches of ``batch_size`` on ``lm`` (a
    :class:`~spark_labs.speculative.runner.SpecModel`: model, tokenizer, device). One row per request: ``batch``,
    ``slot``, ``start_s`` (its batch started), ``useful_end_s`` (its own last token), ``end_s`` (its batch
    returned), ``output_tokens``, seconds since the workload arrived."""
    lengths = _check(lengths, batch_size)
    if len(prompts) != len(lengths):
        raise ValueError(f"{len(prompts)} prompts but {len(lengths)} output lengths: give one length per prompt")
    torch, tokenizer = lm.torch, lm.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batches = range(0, len(prompts), batch_size)
    if progress:
        from ..progress import progress_bar

        batches = progress_bar(batches, desc=f"static batches of {batch_size}", unit="batch", leave=False)
    rows, t0 = [], time.perf_counter()
    with torch.inference_mode():
        for b in batches:
            batch_lengths = lengths[b:b + batch_size]
            longest = max(batch_lengths)
            inputs = tokenizer(list(prompts[b:b + batch_size]), return_tensors="pt", padding=True).to(lm.device)
            stamps: list[float] = []
            start = time.perf_counter()
            lm.model.generate(**inputs, do_sample=False, max_new_tokens=longest, min_new_tokens=longest,
                              stopping_criteria=[_step_clock(torch, stamps)], pad_token_id=tokenizer.pad_token_id)
            end = time.perf_counter()
            for slot, n in enumerate(batch_lengths):
                rows.append({"request": b + slot, "batch": b // batch_size, "slot": slot, "start_s": start - t0,
                             "useful_end_s": stamps[n - 1] - t0, "end_s": end - t0, "output_tokens": n,
                             "held_tokens": longest})
    return pd.DataFrame(rows)
