"""Acceptance accounting for one speculative generation: what was drafted, what the target accepted.

Counted per verification step in our own loop (:mod:`spark_labs.speculative.runner`), which is what makes the
acceptance rate measurable at all: ``transformers.generate`` and most servers report only the output.
The names follow vLLM's spec-decode counters (``num_draft_tokens``, ``num_accepted_tokens``, accepted
per position) so the lab can put the two side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Acceptance:
    k: int  # the draft length asked for; a step may draft fewer (no n-gram match, or near the end)
    steps: int = 0  # target forward passes after the prefill
    tokens: int = 0  # tokens emitted by those passes
    drafted: int = 0
    accepted: int = 0
    rejections: int = 0  # steps whose draft stopped at a rejected token (not at its end)
    accepted_per_position: list[int] = field(default_factory=list)
    drafted_per_position: list[int] = field(default_factory=list)

    def record(self, drafted: int, accepted: int, emitted: int) -> None:
        """One verification step: ``drafted`` proposed, the first ``accepted`` of them kept, ``emitted`` output."""
        if not 0 <= accepted <= drafted:
            raise ValueError(f"accepted ({accepted}) must lie between 0 and drafted ({drafted})")
        self.steps += 1
        self.tokens += emitted
        self.drafted += drafted
        self.accepted += accepted
        if accepted < drafted:
            self.rejections += 1
        width = max(drafted, len(self.drafted_per_position))
        for counts in (self.drafted_per_position, self.accepted_per_position):
            counts.extend([0] * (width - len(counts)))
        for position in range(drafted):
            self.drafted_per_position[position] += 1
            self.accepted_per_position[position] += position < accepted

    @property
    def acceptance_rate(self) -> float:
        """Accepted / drafted tokens: vLLM's "draft acceptance rate"."""
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def alpha(self) -> float:
        """Per-token acceptance probability, the alpha of the formula.

        Each step tests draft tokens one by one until the first rejection; a token accepted is a success,
        the rejected one a failure, tokens after it are never tested. The success fraction of the tested
        tokens estimates alpha (the maximum-likelihood estimate for independent acceptances); accepted /
        drafted would count the untested tail as failures and understate it.
        """
        tested = self.accepted + self.rejections
        return self.accepted / tested if tested else 0.0

    @property
    def tokens_per_step(self) -> float:
        return self.tokens / self.steps if self.steps else 0.0

    @property
    def per_position_rate(self) -> list[float]:
        """Of the steps that drafted a token at position i, the fraction that accepted it."""
        return [a / d if d else 0.0 for a, d in zip(self.accepted_per_position, self.drafted_per_position)]
