"""Baseline against speculative runs on the same model and prompts: the table of ``spark-labs bench spec``.

Per workload: one warm-up, then the greedy baseline, one run per draft (prompt lookup by default, an
early-exit draft of the same model on request) and draft length k, then the baseline again (the mean of
the two baselines is the reference, so a machine that slows down during the sweep shows up as a gap between
them rather than as a fake speed-up). Every speculative output is
checked against the baseline token for token (the ``identical`` column; the command fails when one
differs). The formula column is Leviathan et al.'s speed-up fed this run's measured alpha and draft cost c,
so the learner can see how far the textbook model is from the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .drafts import prompt_lookup_draft
from .runner import Drafter, Generation, SpecModel, check_lossless
from .theory import expected_speedup, expected_tokens_per_step
from .workloads import workload_prompt

DEFAULT_KS = (1, 2, 4, 8)
# Two candidates this close are a numerical tie: bf16 keeps 8 significant bits, so a logit near 20 is stored
# to within 0.06, and a verify pass over k + 1 tokens sums in another order than a one-token step. On a GPU in
# bf16 such a tie can fall either way; in float32 on a CPU the runs stay identical.
NEAR_TIE_LOGITS = 0.25
DEFAULT_WORKLOADS = ("code-edit", "extraction", "open-chat")


@dataclass(frozen=True)
class Draft:
    """One way of drafting, swept over its draft lengths ``ks`` against the shared baseline."""

    name: str
    ks: tuple[int, ...] = DEFAULT_KS
    drafter: Drafter = prompt_lookup_draft


@dataclass
class SpecRow:
    workload: str
    draft: str  # "prompt lookup", "early exit 24/30", or "-" for the baseline
    k: int
    tokens: int
    alpha: float
    acceptance_rate: float
    tokens_per_step: float
    formula_tokens_per_step: float
    decode_tok_s: float
    baseline_tok_s: float
    speedup: float
    formula_speedup: float
    draft_cost_c: float  # drafting one token, in baseline decode steps
    verify_cost: float  # one verification pass, in baseline decode steps (the formula assumes 1)
    identical: bool
    parted_at: int | None = None  # the first token where the output left the baseline's (None: identical)
    tie_gap: float | None = None  # there, the baseline token's logit minus this run's (None: one ended first)


def _row(workload: str, draft: str, k: int, run: Generation, baseline: Generation, baseline_tok_s: float,
         baseline_step_s: float) -> SpecRow:
    acc = run.acceptance
    c = (run.draft_seconds / acc.drafted) / baseline_step_s if acc.drafted and baseline_step_s else 0.0
    verify = ((run.decode_seconds - run.draft_seconds) / acc.steps) / baseline_step_s if acc.steps else 0.0
    return SpecRow(
        workload=workload, draft=draft, k=k, tokens=len(run.tokens), alpha=acc.alpha,
        acceptance_rate=acc.acceptance_rate,
        tokens_per_step=acc.tokens_per_step, formula_tokens_per_step=expected_tokens_per_step(acc.alpha, k),
        decode_tok_s=run.decode_tokens_per_second, baseline_tok_s=baseline_tok_s,
        speedup=run.decode_tokens_per_second / baseline_tok_s if baseline_tok_s else 0.0,
        formula_speedup=expected_speedup(acc.alpha, k, c), draft_cost_c=c, verify_cost=verify,
        identical=run.tokens == baseline.tokens,
    )


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    bad = [k for k in ks if int(k) != k or k < 1]
    if not ks or bad:
        raise ValueError(f"draft lengths must be whole numbers >= 1 (e.g. 1,2,4,8); got {list(ks)}")
    return ks


def measure_workload(model: SpecModel, workload: str, ks: Sequence[int] = DEFAULT_KS,
                     max_new_tokens: int = 96, drafts: Sequence[Draft] | None = None) -> list[SpecRow]:
    """The baseline row (k = 0) and one row per draft and k for one workload.

    ``drafts`` default to prompt lookup over ``ks``; every draft is compared with the same two baselines."""
    drafts = list(drafts) if drafts is not None else [Draft("prompt lookup", tuple(ks))]
    for draft in drafts:
        _check_ks(draft.ks)
    prompt = model.encode_chat(workload_prompt(workload))
    model.generate(prompt, 8)  # warm-up: first-call allocations stay out of the timings
    first = model.generate(prompt, max_new_tokens)
    runs = [(d.name, k, model.generate(prompt, max_new_tokens, k=k, drafter=d.drafter)) for d in drafts for k in d.ks]
    last = model.generate(prompt, max_new_tokens)
    check_lossless(first.tokens, last.tokens)  # greedy baseline must repeat itself, or nothing here compares
    base_tok_s = (first.decode_tokens_per_second + last.decode_tokens_per_second) / 2
    base_step_s = (first.seconds_per_step + last.seconds_per_step) / 2
    rows = [_row(workload, "-", 0, first, first, base_tok_s, base_step_s)]
    rows[0].decode_tok_s, rows[0].speedup = base_tok_s, 1.0
    rows += [_row(workload, name, k, run, first, base_tok_s, base_step_s) for name, k, run in runs]
    for row, (_, _, run) in zip(rows[1:], runs):
        if not row.identical:
            row.parted_at, row.tie_gap = parting(model, prompt, first.tokens, run.tokens)
    return rows


def parting(model: SpecModel, prompt: Sequence[int], baseline: Sequence[int],
            other: Sequence[int]) -> tuple[int, float | None]:
    """Where ``other`` first leaves ``baseline``, and how far apart the two tokens' logits were there (None when
    one output simply ended first)."""
    shorter = min(len(baseline), len(other))
    at = next((i for i in range(shorter) if baseline[i] != other[i]), shorter)
    if at == shorter:
        return at, None
    return at, model.logit_gap(list(prompt) + list(baseline[:at]), baseline[at], other[at])


def check_parted_only_at_near_ties(rows: Sequence[SpecRow]) -> None:
    """Say which speculative runs left the baseline, where, and how close the two candidate tokens were; raise
    unless each parted at a numerical near-tie (``NEAR_TIE_LOGITS``): anything else means the verification kept
    a token the target would not have produced."""
    parted = [r for r in rows if r.k and not r.identical]
    for r in parted:
        apart = ("one output ended first" if r.tie_gap is None
                 else f"its two candidates {abs(r.tie_gap):.3f} logits apart")
        print(f"{r.workload}, {r.draft}, k={r.k}: left the baseline at token {r.parted_at}, {apart}")
    wrong = [r for r in parted if r.tie_gap is None or abs(r.tie_gap) > NEAR_TIE_LOGITS]
    if wrong:
        raise AssertionError(f"speculation changed the output of {len(wrong)} run(s) away from a near-tie: greedy "
                             "verification must be lossless")
    if parted:
        print(f"each at a near-tie (≤ {NEAR_TIE_LOGITS} logits apart) that reduced precision rounds either way: the "
              "verify pass over k + 1 tokens and the one-token step sum in another order")


def measure(model: SpecModel, workloads: Sequence[str] = DEFAULT_WORKLOADS, ks: Sequence[int] = DEFAULT_KS,
            max_new_tokens: int = 96, drafts: Sequence[Draft] | None = None) -> list[SpecRow]:
    return [row for w in workloads for row in measure_workload(model, w, ks, max_new_tokens, drafts)]


def to_frame(rows: Sequence[SpecRow]):
    import pandas as pd

    return pd.DataFrame([vars(r) for r in rows])


def format_table(rows: Sequence[SpecRow], formula: bool = True) -> str:
    """Plain-text table: one line per (workload, draft, k); k = 0 is the baseline. ``formula=False`` leaves out
    the formula's speed-up (where the learner computes it)."""
    width = max([len(r.draft) for r in rows] + [5])
    fields = ["workload", "draft", "k", "tokens", "alpha", "accept", "tok/step", "E(a,k)", "tok/s", "speed-up",
              "formula", "c", "verify", "same"]
    shape = {"workload": "<11", "draft": f"<{width}", "k": ">2", "tokens": ">6", "alpha": ">5", "accept": ">6",
             "tok/step": ">8", "E(a,k)": ">6", "tok/s": ">6", "speed-up": ">8", "formula": ">7", "c": ">6",
             "verify": ">6", "same": ">4"}
    if not formula:
        fields.remove("formula")

    def line(values: dict) -> str:
        return " ".join(f"{values[f]:{shape[f]}}" for f in fields)

    head = line({f: f for f in fields})
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.k == 0:
            lines.append(line({"workload": r.workload, "draft": "-", "k": "-", "tokens": r.tokens, "alpha": "",
                               "accept": "", "tok/step": f"{1.0:.2f}", "E(a,k)": "", "tok/s": f"{r.decode_tok_s:.1f}",
                               "speed-up": f"{1.0:.2f}x", "formula": "", "c": "", "verify": f"{1.0:.2f}",
                               "same": "ref"}))
            continue
        lines.append(line({"workload": r.workload, "draft": r.draft, "k": r.k, "tokens": r.tokens,
                           "alpha": f"{r.alpha:.2f}", "accept": f"{r.acceptance_rate:.2f}",
                           "tok/step": f"{r.tokens_per_step:.2f}", "E(a,k)": f"{r.formula_tokens_per_step:.2f}",
                           "tok/s": f"{r.decode_tok_s:.1f}", "speed-up": f"{r.speedup:.2f}x",
                           "formula": f"{r.formula_speedup:.2f}x", "c": f"{r.draft_cost_c:.4f}",
                           "verify": f"{r.verify_cost:.2f}", "same": "yes" if r.identical else "NO"}))
    return "\n".join(lines)
