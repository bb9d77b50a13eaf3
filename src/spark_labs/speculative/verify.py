"""The verify rule of greedy speculative decoding, and what the loop needs from any rule's answer.

One verification pass over ``[pending token] + draft`` gives the target's greedy token at every position:
``predictions[i]`` follows the pending token and ``draft[:i]``, so there is one more prediction than drafted
tokens. A rule returns the tokens the step emits; whatever the rule, a step emits some accepted drafted tokens
in order and then one token of its own, and the loop (:meth:`SpecModel.generate`) keeps its KV cache by that
count. :func:`emitted_accepted` checks a rule's answer against that shape before the loop uses it, so a
learner's wrong list stops the run with a sentence instead of a broken cache or a crash in the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral

Verifier = Callable[[list[int], list[int]], list[int]]


class StepError(ValueError):
    """A drafter or a verify rule returned something no speculative step can use; the message names it."""


def greedy_verify(draft: Sequence[int], predictions: Sequence[int]) -> list[int]:
    """The longest prefix of ``draft`` that agrees with the target's greedy ``predictions``, then the target's
    own token at the first disagreement (after a fully accepted draft: the bonus token)."""
    accepted = 0
    while accepted < len(draft) and draft[accepted] == predictions[accepted]:
        accepted += 1
    return list(draft[:accepted]) + [predictions[accepted]]


def token_ids(value, what: str, vocab: int | None = None) -> list[int]:
    """``value`` as a list of plain ints, or :class:`StepError` saying why it is not a list of token ids."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise StepError(f"{what} is {type(value).__name__} {value!r:.80}: it must be a list of token ids (ints)")
    tokens = []
    for position, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, Integral):
            raise StepError(f"{what} holds {token!r} ({type(token).__name__}) at position {position}: "
                            "token ids are ints")
        if token < 0 or (vocab is not None and token >= vocab):
            raise StepError(f"{what} holds {int(token)} at position {position}: the model's token ids run from 0 "
                            f"to {vocab - 1 if vocab else 'its vocabulary size'}")
        tokens.append(int(token))
    return tokens


def emitted_accepted(emitted, draft: Sequence[int], predictions: Sequence[int], vocab: int | None = None) \
        -> tuple[list[int], int]:
    """(the emitted tokens as ints, how many drafted tokens they accept), or :class:`StepError` naming why
    ``emitted`` cannot be a step's output for this draft."""
    call = f"verify(draft={list(draft)}, predictions={list(predictions)})"
    tokens = token_ids(emitted, f"{call} returned a value that", vocab)
    if not tokens:
        raise StepError(f"{call} returned []: every step emits at least one token, the target's own, even when "
                        "it rejects the first drafted token")
    if len(tokens) > len(draft) + 1:
        raise StepError(f"{call} returned {len(tokens)} tokens {tokens}: a draft of {len(draft)} can give at most "
                        f"{len(draft) + 1} (every drafted token accepted, then one token of the target's own)")
    accepted = len(tokens) - 1
    for position in range(accepted):
        if tokens[position] != draft[position]:
            raise StepError(f"{call} returned {tokens}, whose token {position} ({tokens[position]}) is not the "
                            f"drafted one ({draft[position]}): a step emits accepted drafted tokens in order and "
                            "only its last token may differ from the draft")
    return tokens, accepted
