"""Workloads: the course's own prompt set, synthetic prompts of exact token lengths, and salting.

Salting puts a unique tag at the *start* of every prompt. Prefix caches key on the leading tokens, so
a run repeated against a warm server cannot get free hits from the previous run's identical prompts.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .clients import BenchRequest

KINDS = ("short_chat", "long_context", "code")


@lru_cache(maxsize=1)
def prompt_set() -> dict[str, list[dict]]:
    """The shipped prompt set: ``short_chat``, ``long_context`` and ``code``, each a list of {id, prompt}."""
    text = resources.files("spark_labs.data").joinpath("prompts.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return {kind: data[kind] for kind in KINDS}


def salt(prompt: str, tag: str) -> str:
    return f"[{tag}] {prompt}"


@dataclass(frozen=True)
class Workload:
    """A named request mix: which prompts, how many, how long the answers."""

    name: str
    kind: str  # a prompt-set kind, or "synthetic"
    num_requests: int
    max_tokens: int
    prompt_tokens: int | None = None  # synthetic only: exact prompt length
    force_length: bool = True

    def requests(self, tokenizer=None, salted: bool = True, protocol: str = "openai-chat") -> list[BenchRequest]:
        run_tag = secrets.token_hex(3)
        if self.kind == "synthetic":
            if tokenizer is None:
                raise ValueError(f"workload {self.name!r} needs a tokenizer to build {self.prompt_tokens}-token "
                                 "prompts; pass tokenizer=load_tokenizer(model)")
            bodies = [synthetic_prompt(tokenizer, self.prompt_tokens, seed=i) for i in range(self.num_requests)]
        else:
            pool = [p["prompt"] for p in prompt_set()[self.kind]]
            bodies = [pool[i % len(pool)] for i in range(self.num_requests)]
        out = []
        for i, body in enumerate(bodies):
            # Synthetic prompts are already unique and exactly sized; a salt would change their length.
            prompt = salt(body, f"{run_tag}-{i}") if salted and self.kind != "synthetic" else body
            out.append(BenchRequest(f"{self.name}-{run_tag}-{i}", prompt, self.max_tokens, self.name,
                                    self.force_length, self.prompt_tokens))
        return out


def standard_workloads(sizes) -> dict[str, Workload]:
    """The three workloads Lab 01 compares engines on, scaled by the profile's :class:`Sizes`."""
    n = sizes.num_requests
    return {
        "chat": Workload("chat", "short_chat", n, sizes.max_tokens),
        # Long prompt, short answer: time goes into prefill, so TTFT and prefill tok/s tell the story.
        "prefill-heavy": Workload("prefill-heavy", "long_context", n, max(4, sizes.max_tokens // 4)),
        # Short prompt, long answer: time goes into decode, so TPOT and decode tok/s tell the story.
        "decode-heavy": Workload("decode-heavy", "short_chat", n, sizes.max_tokens * 2),
        "code": Workload("code", "code", n, sizes.max_tokens * 2),
    }


_FILLER = ["the", "model", "reads", "every", "weight", "once", "per", "step", "so", "memory", "bandwidth",
           "sets", "the", "pace", "of", "decoding", "while", "prefill", "is", "limited", "by", "arithmetic",
           "and", "a", "cache", "of", "keys", "and", "values", "grows", "with", "each", "token", "of",
           "context", "batching", "shares", "the", "weight", "reads", "across", "many", "sequences", "and",
           "raises", "throughput", "at", "some", "cost", "in", "latency"]


def synthetic_prompt(tokenizer, n_tokens: int, seed: int = 0) -> str:
    """Text that the tokenizer encodes to exactly ``n_tokens`` tokens (no special tokens)."""
    import random

    if n_tokens < 1:
        raise ValueError("a prompt needs at least one token")
    rng = random.Random(seed)
    words = [rng.choice(_FILLER) for _ in range(n_tokens * 2 + 8)]
    words[0] = f"#{seed}"  # every prompt differs from the first token on: no shared prefix
    ids = tokenizer(" ".join(words), add_special_tokens=False)["input_ids"][:n_tokens]
    text = tokenizer.decode(ids)
    # Decoding then re-encoding can merge tokens at the cut; trim or pad a word until it is exact.
    for _ in range(20):
        length = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        if length == n_tokens:
            return text
        text = text.rsplit(" ", 1)[0] if length > n_tokens else text + " " + rng.choice(_FILLER)
    raise ValueError(f"could not build a prompt of exactly {n_tokens} tokens with this tokenizer")
