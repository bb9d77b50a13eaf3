"""Speculative decoding: the textbook model (theory), drafts (prompt lookup), a verification loop that
counts acceptance per step (runner, accounting), and the baseline-vs-speculative table (bench)."""

from .accounting import Acceptance
from .drafts import prompt_lookup_draft
from .theory import alpha_from_tokens_per_step, expected_speedup, expected_tokens_per_step

__all__ = ["Acceptance", "alpha_from_tokens_per_step", "expected_speedup", "expected_tokens_per_step",
           "prompt_lookup_draft"]
