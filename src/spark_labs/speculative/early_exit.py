"""A cheaper draft of the same model: its first L decoder layers, then its final norm and lm_head.

An early-exit (truncated-layer) draft needs no second checkpoint and no training: it shares every weight
with the target and simply stops after layer L. Drafting one token then costs about L / N of the decoder
plus the whole lm_head (on a 135M model the vocabulary projection is a fifth of the work), so the cost ratio
c does not fall to zero however few layers are kept. Nothing ever asked the intermediate layers to predict
the next token (LayerSkip, Elhoushi et al. 2024, fine-tunes for exactly that), so acceptance is low unless
L is close to N: the formula, fed the measured alpha and c, says in advance whether that can pay.

The draft keeps its own KV cache across the steps of one generation and crops it back to the part of the
sequence the target accepted, so each step drafts only the new tokens, never the whole prefix again.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence


def truncated_model(model, layers: int):
    """A view of a causal LM that runs only its first ``layers`` decoder layers (weights shared, not copied).

    transformers' decoder loops over ``self.layers[: config.num_hidden_layers]``, so a shallow copy with
    its own config saying ``layers`` is the truncated model; the final norm and lm_head are the target's.
    """
    total = model.config.num_hidden_layers
    if int(layers) != layers or not 1 <= layers <= total:
        raise ValueError(f"an early-exit draft keeps between 1 and {total} of the model's {total} decoder layers, "
                         f"got {layers!r}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = int(layers)
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:layers]
    inner = copy.copy(model.model)
    inner.config = config
    outer = copy.copy(model)
    # A shallow copy shares the submodule dict too; give the copy its own before swapping in `inner`.
    outer._modules = dict(model._modules)
    outer.model = inner
    outer.config = config
    return outer


class EarlyExitDraft:
    """Drafter for :meth:`SpecModel.generate`: ``k`` greedy tokens from the first ``layers`` layers."""

    def __init__(self, spec_model, layers: int):
        self.spec_model = spec_model
        self.total_layers = spec_model.model.config.num_hidden_layers
        self.model = truncated_model(spec_model.model, layers)
        self.layers = int(layers)
        self._cached: list[int] = []  # the tokens the draft's KV cache holds, in order
        self._cache = None

    @property
    def name(self) -> str:
        return f"early exit {self.layers}/{self.total_layers}"

    def _forward(self, ids: Sequence[int]) -> int:
        torch = self.spec_model.torch
        inputs = torch.tensor([list(ids)], device=self.spec_model.device)
        out = self.model(input_ids=inputs, past_key_values=self._cache, use_cache=True, logits_to_keep=1)
        self._cache = out.past_key_values
        self._cached += list(ids)
        return int(out.logits[0, -1].argmax())

    def __call__(self, sequence: Sequence[int], k: int) -> list[int]:
        if k < 1:
            return []
        sequence = list(sequence)
        common = 0
        for a, b in zip(self._cached, sequence):
            if a != b:
                break
            common += 1
        # Keep what still matches the sequence (the accepted tokens); at least the last token is fed again
        # so its logits exist. A new prompt shares nothing, or only the chat template's opening.
        common = min(common, len(sequence) - 1)
        if common == 0:
            self._cache, self._cached = None, []
        elif common < len(self._cached):
            self._cache.crop(common - len(self._cached))  # negative: drop that many from the end
            self._cached = self._cached[:common]
        with self.spec_model.torch.inference_mode():
            draft = [self._forward(sequence[common:])]
            while len(draft) < k:
                draft.append(self._forward(draft[-1:]))
        return draft
