"""Measure what a build bought: each GGUF variant served by llama.cpp and timed by the benchmark harness.

One row per variant: build seconds, file size, prefill and decode tok/s (``bench.experiments.micro``: a
prompt of exactly ``pp`` tokens, then ``tg`` forced output tokens, through the engine's HTTP API) and
perplexity on the fixed text. The engine is started through the launcher and stopped after its variant,
so only one llama.cpp server holds memory at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .gguf_variants import BuiltVariant
from .quality import perplexity


def serve_and_time(variant: BuiltVariant, tokenizer, pp: int = 128, tg: int = 32, repeats: int = 2) -> dict:
    """Start llama.cpp on the variant's file, time prefill and decode, stop it; one row of numbers."""
    from ..bench.clients import Target
    from ..bench.experiments import micro
    from ..engines import launch

    engine = launch("llamacpp", model=str(variant.path), port="auto", progress=False)
    try:
        timings = micro(Target.from_engine(engine, name=variant.name), tokenizer, pp=pp, tg=tg, repeats=repeats)
    finally:
        engine.stop()
    rates = dict(zip(timings["test"], timings["tok_s_mean"], strict=True))
    return {"prefill_tok_s": rates[f"pp{pp}"], "decode_tok_s": rates[f"tg{tg}"]}


def variant_table(variants: Sequence[BuiltVariant], tokenizer, pp: int = 128, tg: int = 32,
                  repeats: int = 2) -> pd.DataFrame:
    """Build time, size, speed and perplexity of every variant, in the order given."""
    rows = []
    for variant in variants:
        rows.append({"variant": variant.name, "build_s": variant.build_s, "size_mb": variant.size_bytes / 1e6,
                     **serve_and_time(variant, tokenizer, pp, tg, repeats),
                     "perplexity": perplexity(variant.path)})
    return pd.DataFrame(rows).set_index("variant")


def decoder_table(model, prompt_tokens: int = 64, new_tokens: int = 32, compiled: bool = True) -> pd.DataFrame:
    """The same static-cache loop eagerly and compiled: build (compile) seconds, prefill and decode tok/s."""
    import torch

    from .compiled import StaticCacheDecoder

    prompt = torch.randint(0, model.config.vocab_size, (prompt_tokens,)).tolist()
    rows = []
    for name, compile_ in (("static cache, eager", False), ("static cache, compiled", True))[: 2 if compiled else 1]:
        decoder = StaticCacheDecoder(model, max_cache_len=prompt_tokens + new_tokens + 8, compile=compile_)
        build_s = decoder.build()
        timing = decoder.timed(prompt, new_tokens)
        rows.append({"path": name, "build_s": build_s, "prefill_tok_s": timing.prefill_tok_s,
                     "decode_tok_s": timing.decode_tok_s})
    return pd.DataFrame(rows).set_index("path")


def pick_variant(table: pd.DataFrame, reference: str, min_speedup: float, max_perplexity_rise: float) -> str | None:
    """The smallest variant at least ``min_speedup`` times ``reference``'s decode speed whose perplexity rose
    by at most ``max_perplexity_rise`` (0.05 = 5 %) over ``reference``'s; None when none meets both."""
    base = table.loc[reference]
    fits = table[(table["decode_tok_s"] >= min_speedup * base["decode_tok_s"])
                 & (table["perplexity"] <= (1 + max_perplexity_rise) * base["perplexity"])]
    return None if fits.empty else str(fits["size_mb"].idxmin())
