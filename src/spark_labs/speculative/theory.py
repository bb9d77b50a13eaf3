"""The textbook model of speculative decoding (Leviathan, Kalman & Matias, 2023, "Fast Inference from
Transformers via Speculative Decoding", ICML): what a draft of ``k`` tokens, accepted each with
probability ``alpha``, buys per verification step and in wall time when drafting one token costs ``c``
target steps. The lab's learner writes these two formulas; the library keeps its own copy to check them
and to fit alpha from a measured tokens-per-step figure.
"""

from __future__ import annotations


def _check(alpha: float, k: int) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha is an acceptance probability and must lie in [0, 1], got {alpha}")
    if int(k) != k or k < 0:
        raise ValueError(f"k is the number of drafted tokens per step and must be a whole number >= 0, got {k}")


def expected_tokens_per_step(alpha: float, k: int) -> float:
    """E = (1 - alpha^(k+1)) / (1 - alpha): tokens one verification step emits on average.

    The accepted prefix of the draft plus the one token the target always adds (the correction, or the
    bonus token when the whole draft is accepted). At alpha = 1 every draft is accepted: k + 1.
    """
    _check(alpha, k)
    if alpha == 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def expected_speedup(alpha: float, k: int, c: float) -> float:
    """Wall-time speed-up E / (k*c + 1): one step costs k draft passes (c each) plus one target pass."""
    if c < 0:
        raise ValueError(f"c is the draft's cost relative to one target step and cannot be negative, got {c}")
    return expected_tokens_per_step(alpha, k) / (k * c + 1.0)


def alpha_from_tokens_per_step(tokens_per_step: float, k: int) -> float:
    """The alpha for which E(alpha, k) equals a measured tokens-per-step figure (bisection; E rises with alpha)."""
    _check(0.0, k)
    if not 1.0 <= tokens_per_step <= k + 1:
        raise ValueError(f"tokens per step lies between 1 and k+1 = {k + 1}, got {tokens_per_step}")
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if expected_tokens_per_step(mid, k) < tokens_per_step:
            low = mid
        else:
            high = mid
    return (low + high) / 2
