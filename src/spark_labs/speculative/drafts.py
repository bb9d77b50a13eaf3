"""Prompt-lookup drafting: propose the tokens that followed the last n-gram where it occurred before.

No draft model at all: when the output copies from the prompt (editing code, quoting a document) the
continuation of an earlier match is often exactly right, and finding it costs a list scan, not a forward
pass. When nothing matches there is no draft, and that step is a plain decode step.
"""

from __future__ import annotations

from collections.abc import Sequence


def prompt_lookup_draft(tokens: Sequence[int], k: int, max_ngram: int = 3, min_ngram: int = 1) -> list[int]:
    """Up to ``k`` tokens that followed the most recent earlier occurrence of the sequence's last n-gram.

    Longer n-grams are tried first (a longer match predicts better); among matches of one length the most
    recent wins. Returns [] when no n-gram from ``max_ngram`` down to ``min_ngram`` occurs earlier.
    """
    if k < 1 or min_ngram < 1 or max_ngram < min_ngram:
        raise ValueError(f"need k >= 1 and 1 <= min_ngram <= max_ngram (got k={k}, {min_ngram}..{max_ngram})")
    length = len(tokens)
    for n in range(min(max_ngram, length - 1), min_ngram - 1, -1):
        tail = list(tokens[length - n:])
        # Scan right to left: the latest occurrence is the likeliest continuation.
        for start in range(length - n - 1, -1, -1):
            if list(tokens[start:start + n]) == tail:
                follow = list(tokens[start + n:start + n + k])
                if follow:
                    return follow
    return []
