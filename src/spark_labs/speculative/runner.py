"""Greedy speculative decoding with transformers, counting acceptance per step.

One loop does both sides of every comparison: with no drafter it is plain greedy decoding (one token per
target forward pass), with one it verifies each draft in a single forward pass over ``[pending token] +
draft`` and keeps the longest prefix the target itself would have produced. Same model, same KV cache
code, same timer: the only difference between baseline and speculative is the draft, so their ratio is the
speed-up of speculation and nothing else. Greedy verification is lossless by construction: the output is
the target's own argmax sequence, which :func:`check_lossless` confirms token for token.

The two rules that make it speculation are arguments: ``drafter`` (what to propose) and ``verify`` (what a
step emits, :func:`.verify.greedy_verify` by default). The loop keeps the plumbing: the KV cache cropped to
what was accepted, the end-of-sequence token, the length asked for and the acceptance counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .accounting import Acceptance
from .drafts import prompt_lookup_draft
from .verify import StepError, Verifier, emitted_accepted, greedy_verify, token_ids

Drafter = Callable[[Sequence[int], int], list[int]]


@dataclass
class Generation:
    tokens: list[int]  # generated token ids (prompt excluded)
    decode_seconds: float  # after the prefill: every verification / decode step
    prefill_seconds: float
    draft_seconds: float  # of decode_seconds, the time spent proposing drafts
    acceptance: Acceptance

    @property
    def decode_tokens_per_second(self) -> float:
        # The first token comes from the prefill; the decode phase produced the rest.
        return (len(self.tokens) - 1) / self.decode_seconds if self.decode_seconds > 0 else 0.0

    @property
    def seconds_per_step(self) -> float:
        steps = self.acceptance.steps
        return self.decode_seconds / steps if steps else 0.0


class SpecModel:
    """A causal LM loaded once in process, with its tokenizer, for baseline and speculative runs."""

    def __init__(self, path: str | Path | None = None, dtype: str = "float32", device: str | None = None,
                 threads: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if path is None:
            from ..models.embedded import prepare_embedded_model

            path = prepare_embedded_model()
        self.torch = torch
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be at least 1, got {threads}")
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # float32 on CPU: a CPU without bf16 instructions emulates bf16 matmuls and runs them slower.
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype)).to(self.device)
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.path = Path(path)

    @classmethod
    def for_plan(cls, lab_plan, threads: int | None = None) -> SpecModel:
        """The lab plan's model: the embedded model's HF export on tiny, the HF id in bf16 on a GPU."""
        if lab_plan.model.embedded:
            return cls(None, threads=threads)
        return cls(lab_plan.model.hf_id, dtype="bfloat16", threads=threads)

    def encode_chat(self, prompt: str) -> list[int]:
        messages = [{"role": "user", "content": prompt}]
        # Qwen3 targets answer without a thinking block (templates without that switch ignore it).
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     enable_thinking=False)
        ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
        return list(ids)

    def decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)

    def _forward(self, ids: Sequence[int], cache):
        torch = self.torch
        inputs = torch.tensor([list(ids)], device=self.device)
        out = self.model(input_ids=inputs, past_key_values=cache, use_cache=True)
        return out.logits[0].argmax(dim=-1).tolist(), out.past_key_values

    def logit_gap(self, prefix_ids: Sequence[int], kept: int, other: int) -> float:
        """The logit of token ``kept`` minus that of ``other`` after ``prefix_ids``, from one full pass: how
        close the two candidates for the next token were."""
        with self.torch.inference_mode():
            logits = self.model(input_ids=self.torch.tensor([list(prefix_ids)], device=self.device)).logits[0, -1]
        return float(logits[kept].float() - logits[other].float())

    def _vocab_size(self) -> int | None:
        embeddings = getattr(self.model, "get_input_embeddings", lambda: None)()
        return getattr(embeddings, "num_embeddings", None)

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int, k: int = 0,
                 drafter: Drafter | None = None, verify: Verifier | None = None) -> Generation:
        """Greedy generation; with ``k`` > 0 each step verifies up to ``k`` drafted tokens in one pass.

        ``drafter`` proposes the draft from the sequence so far (default: prompt lookup); ``k`` = 0 is the
        baseline, one target pass per token. ``verify(draft, predictions)`` returns the tokens a step emits,
        given the target's greedy token at each position of the pass (one more than drafted); default
        :func:`greedy_verify`. A drafter's or a rule's answer that no step can use (not token ids, an empty or
        too long list, drafted tokens out of order) raises :class:`StepError` naming the step and the mistake.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if k < 0:
            raise ValueError(f"k (draft tokens per step) cannot be negative, got {k}")
        draft_fn = drafter or prompt_lookup_draft
        eos = self.tokenizer.eos_token_id
        vocab = self._vocab_size()
        stats = Acceptance(k=k)
        with self.torch.inference_mode():
            start = time.perf_counter()
            predictions, cache = self._forward(prompt_ids, None)
            prefill = time.perf_counter() - start
            out = [predictions[-1]]
            sequence = list(prompt_ids) + out
            drafting = 0.0
            start = time.perf_counter()
            while len(out) < max_new_tokens and out[-1] != eos:
                tick = time.perf_counter()
                draft = draft_fn(sequence, k) if k else []
                if draft_fn is not prompt_lookup_draft:  # another's drafter: check its answer is token ids
                    draft = token_ids(draft, f"step {stats.steps + 1}: the drafter's draft", vocab)
                # Never draft past the length asked for: those tokens would be thrown away anyway.
                draft = draft[:k][: max_new_tokens - len(out) - 1]
                drafting += time.perf_counter() - tick
                predictions, cache = self._forward([sequence[-1]] + draft, cache)
                if verify is None:
                    emitted = greedy_verify(draft, predictions)
                    accepted = len(emitted) - 1
                else:
                    try:
                        emitted, accepted = emitted_accepted(verify(list(draft), list(predictions)), draft,
                                                             predictions, vocab)
                    except StepError as exc:
                        raise StepError(f"step {stats.steps + 1} (after {len(out)} generated tokens): {exc}") \
                            from None
                # The cache now holds the pending token and the whole draft; keep the accepted part only.
                if len(draft) > accepted:
                    cache.crop(accepted - len(draft))  # negative: drop that many from the end
                if eos in emitted:
                    emitted = emitted[: emitted.index(eos) + 1]
                emitted = emitted[: max_new_tokens - len(out)]
                stats.record(len(draft), accepted, len(emitted))
                out += emitted
                sequence += emitted
            decode = time.perf_counter() - start
        return Generation(out, decode, prefill, drafting, stats)


def check_lossless(baseline: Sequence[int], speculative: Sequence[int]) -> None:
    """Raise unless the speculative output equals the baseline token for token, naming the first difference."""
    if list(baseline) == list(speculative):
        return
    shorter = min(len(baseline), len(speculative))
    first = next((i for i, (a, b) in enumerate(zip(baseline, speculative)) if a != b), shorter)
    raise AssertionError(
        f"speculative output differs from the greedy baseline at token {first} "
        f"(baseline {len(baseline)} tokens, speculative {len(speculative)}): greedy verification must be lossless, "
        "so the verification step kept a draft token the target would not have produced"
    )
