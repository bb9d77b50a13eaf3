"""Measure what a build bought: one row per variant, the same columns for every engine.

GGUF variants are served by llama.cpp and timed by the benchmark harness (``bench.experiments.micro``: a
prompt of exactly ``pp`` tokens, then ``tg`` forced output tokens, through the engine's HTTP API); the
engine is started through the launcher and stopped after its variant, so only one server holds memory at a
time. Weight-only variants (bf16, bitsandbytes NF4) run in this process through transformers and are timed
on the same synthetic prompts (same seeds, same token counts), without HTTP or a chat template. Size is the
file for a GGUF and the weights in memory for a transformers variant. Perplexity is computed the same way
for both (:mod:`.quality`).
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
    from ..engines import ENGINES, launch

    # The registry's first GGUF engine (llama.cpp) serves the file as it is; the next (Ollama) imports it first.
    gguf_engine = next(name for name, spec in ENGINES.items() if spec.model_format == "gguf")
    engine = launch(gguf_engine, model=str(variant.path), port="auto", progress=False)
    try:
        timings = micro(Target.from_engine(engine, name=variant.name), tokenizer, pp=pp, tg=tg, repeats=repeats)
    finally:
        engine.stop()
    rates = dict(zip(timings["test"], timings["tok_s_mean"], strict=True))
    return {"prefill_tok_s": rates[f"pp{pp}"], "decode_tok_s": rates[f"tg{tg}"]}


def variant_table(variants: Sequence[BuiltVariant], tokenizer, pp: int = 128, tg: int = 32,
                  repeats: int = 2, progress: bool = False) -> pd.DataFrame:
    """Build time, size, speed and perplexity of every variant, in the order given."""
    rows = []
    for variant in _progress(variants, "serving GGUF variants", progress):
        rows.append({"variant": variant.name, "engine": "llama.cpp server", "build_s": variant.build_s,
                     "size_mb": variant.size_bytes / 1e6,
                     **serve_and_time(variant, tokenizer, pp, tg, repeats),
                     "perplexity": perplexity(variant.path)})
    return pd.DataFrame(rows).set_index("variant")


def time_in_process(model, tokenizer, pp: int = 128, tg: int = 32, repeats: int = 2) -> dict:
    """Prefill and decode tok/s of a transformers model, eager, batch 1, on ``micro``'s prompts: ``pp`` tokens
    (seeds 1000 + i) for prefill; 16 tokens (seeds 2000 + i) then ``tg`` forced tokens for decode."""
    import numpy as np

    from ..bench.prompts import synthetic_prompt
    from .compiled import StaticCacheDecoder

    decoder = StaticCacheDecoder(model, max_cache_len=max(pp + 1, 16 + tg), compile=False)
    decoder.build()  # first-call costs (allocating the cache, warming kernels) stay out of the timings

    def ids(n: int, seed: int) -> list[int]:
        return tokenizer(synthetic_prompt(tokenizer, n, seed=seed), add_special_tokens=False)["input_ids"]

    prefill = [decoder.timed(ids(pp, 1000 + i), 1).prefill_tok_s for i in range(repeats)]
    decode = [decoder.timed(ids(16, 2000 + i), tg).decode_tok_s for i in range(repeats)]
    return {"prefill_tok_s": float(np.mean(prefill)), "decode_tok_s": float(np.mean(decode))}


def weight_only_table(path, tokenizer, variants: Sequence[str] | None = None, pp: int = 128, tg: int = 32,
                      repeats: int = 2, progress: bool = False) -> pd.DataFrame:
    """Load time, weights in memory, speed and perplexity of each weight-only variant (one loaded at a time)."""
    from .quality import transformers_perplexity
    from .weight_only import WEIGHT_ONLY_VARIANTS, load_variant

    rows = []
    for name in _progress(variants or list(WEIGHT_ONLY_VARIANTS), "loading weight-only variants", progress):
        loaded = load_variant(path, name)
        rows.append({"variant": name, "engine": "transformers in-process", "build_s": loaded.load_s,
                     "size_mb": loaded.weight_bytes / 1e6,
                     **time_in_process(loaded.model, tokenizer, pp, tg, repeats),
                     "perplexity": transformers_perplexity(loaded.model, tokenizer)})
        del loaded
    return pd.DataFrame(rows).set_index("variant")


def decoder_table(model, prompt_tokens: int = 64, new_tokens: int = 32, compiled: bool = True, repeats: int = 2,
                  cold_cache: bool = True) -> pd.DataFrame:
    """The same static-cache loop eagerly and compiled: build (compile) seconds, prefill and decode tok/s
    (means of ``repeats`` timed generations after the build). ``cold_cache``: compile with an empty inductor
    cache (a temporary directory), so the build time is a first build, not a cache hit."""
    import contextlib

    import numpy as np
    import torch

    from .compiled import StaticCacheDecoder, fresh_compile_cache

    prompt = torch.randint(0, model.config.vocab_size, (prompt_tokens,)).tolist()
    rows = []
    for name, compile_ in (("static cache, eager", False), ("static cache, compiled", True))[: 2 if compiled else 1]:
        decoder = StaticCacheDecoder(model, max_cache_len=prompt_tokens + new_tokens + 8, compile=compile_)
        with fresh_compile_cache() if cold_cache and compile_ else contextlib.nullcontext():
            build_s = decoder.build()
        timings = [decoder.timed(prompt, new_tokens) for _ in range(repeats)]
        rows.append({"path": name, "build_s": build_s,
                     "prefill_tok_s": float(np.mean([t.prefill_tok_s for t in timings])),
                     "decode_tok_s": float(np.mean([t.decode_tok_s for t in timings]))})
    return pd.DataFrame(rows).set_index("path")


def _progress(items, description: str, show: bool):
    if not show:
        return items
    from ..progress import progress_bar

    return progress_bar(items, desc=description, unit="variant", leave=False)


def pick_variant(table: pd.DataFrame, reference: str, min_speedup: float, max_perplexity_rise: float) -> str | None:
    """The smallest variant at least ``min_speedup`` times ``reference``'s decode speed whose perplexity rose
    by at most ``max_perplexity_rise`` (0.05 = 5 %) over ``reference``'s; None when none meets both.
    With an ``engine`` column, only rows of the reference's engine compete (speeds of a server and of an
    in-process loop are not comparable)."""
    base = table.loc[reference]
    if "engine" in table.columns:  # like with like: only rows measured by the reference's engine
        table = table[table["engine"] == base["engine"]]
    fits = table[(table["decode_tok_s"] >= min_speedup * base["decode_tok_s"])
                 & (table["perplexity"] <= (1 + max_perplexity_rise) * base["perplexity"])]
    return None if fits.empty else str(fits["size_mb"].idxmin())
