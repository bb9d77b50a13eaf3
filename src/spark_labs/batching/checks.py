"""Lab 02's exercises as rules, with the mistakes learners make with them: a checkpoint that fails names the
mistake instead of printing two numbers.

Each ``check_*`` takes the learner's function (or result) and the lab's data, calls the function on the lab's
numbers and on a few small cases chosen so that every common mistake changes at least one result (a last
batch that is not full, a remainder that is not a whole block, a level that fills the cache exactly, a sweep
where nothing runs out), and returns a :class:`Verdict`. When the learner's results are those of a known
mistake on every case, the verdict says which mistake; otherwise it shows the first case that differs.

Nothing here runs a process: the checkpoint cells pass what the engine measured (block counts, the queue's
onset, the prefix-cache counters), so these functions are unit-tested on plain numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str  # what the checkpoint prints when it fails ("" when it passed)


# ---------- the rules (what the reference solutions compute) ----------

def waste_rule(lengths: Sequence[int], batch_size: int) -> float:
    """Idle share of a static schedule's slot-steps: batches in arrival order, each held for its longest."""
    batches = [list(lengths[i:i + batch_size]) for i in range(0, len(lengths), batch_size)]
    return 1 - sum(lengths) / sum(batch_size * max(b) for b in batches)


def bytes_per_token_rule(config: dict, dtype_bytes: int = 2) -> int:
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    return 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim * dtype_bytes


def capacity_rule(kv_bytes: int, bytes_per_token: int, block_size: int) -> int:
    """Tokens requests can hold: whole blocks, less vLLM's null block."""
    return (kv_bytes // (bytes_per_token * block_size) - 1) * block_size


def onset_rule(num_blocks: int, block_size: int, prompt_tokens: int, output_tokens: int,
               levels: Sequence[int]) -> int | None:
    """The lowest level whose requests, each holding whole blocks at its end, need more than the blocks
    requests can use (all but the null block); None when no level does."""
    per_request = -(-(prompt_tokens + output_tokens) // block_size)
    return next((level for level in sorted(levels) if level * per_request > num_blocks - 1), None)


def hit_rate_rule(n_requests: int, shared_tokens: int, own_tokens: int, block_size: int) -> float:
    """Share of queried prompt tokens found in the cache: every request after the first finds the shared
    prefix's whole blocks."""
    return (n_requests - 1) * (shared_tokens // block_size * block_size) / (n_requests * (shared_tokens + own_tokens))


def tradeoff_rule(small: dict, large: dict) -> tuple[float, float, str]:
    spike = large["itl_max_during_prefill_ms"] / small["itl_max_during_prefill_ms"]
    return spike, small["long_ttft_ms"] / large["long_ttft_ms"], "small" if spike > 1 else "large"


# ---------- comparing ----------

def _same(a, b, rel: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b))
    try:
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-9)
    except (TypeError, ValueError):
        return False


def _attempt(function: Callable, args: tuple):
    try:
        return function(*args), None
    except Exception as error:  # the learner's function, whatever it raised
        return None, error


def judge(function: Callable, right: Callable, mistakes: dict[str, Callable], cases: list[tuple],
          describe: Callable[[tuple], str] = repr, on_error: Callable[[Exception], str | None] | None = None,
          same: Callable = _same) -> Verdict:
    """``function`` against ``right`` on every case; a failure names the first mistake whose results match
    the learner's on every case."""
    got = []
    for args in cases:
        value, error = _attempt(function, args)
        if error is not None:
            named = on_error(error) if on_error else None
            return Verdict(False, named or f"your function raised {type(error).__name__}: {error} for "
                                           f"{describe(args)}")
        got.append(value)
    expected = [right(*args) for args in cases]
    if all(same(g, e) for g, e in zip(got, expected)):
        return Verdict(True, "")
    for what, mistake in mistakes.items():
        if all(same(g, _attempt(mistake, args)[0]) for g, args in zip(got, cases)):
            return Verdict(False, what)
    first = next(i for i, (g, e) in enumerate(zip(got, expected)) if not same(g, e))
    return Verdict(False, f"for {describe(cases[first])} the answer is {expected[first]!r}, yours is "
                          f"{got[first]!r}")


# ---------- 02.1 ----------

def _batches(lengths, size):
    return [list(lengths[i:i + size]) for i in range(0, len(lengths), size)]


WASTE_MISTAKES: dict[str, Callable] = {
    "a partial last batch still holds all its slots: count batch_size slots for every batch, empty ones "
    "included, not only the requests in it":
        lambda ls, b: 1 - sum(ls) / sum(len(x) * max(x) for x in _batches(ls, b)),
    "requests are batched in arrival order: sorting the lengths first groups similar lengths and hides "
    "the waste": lambda ls, b: waste_rule(sorted(ls), b),
    "a batch lasts as many steps as its longest request, not its average one":
        lambda ls, b: 1 - sum(ls) / sum(b * sum(x) / len(x) for x in _batches(ls, b)),
    "that is the share of slot-steps that produce a token: the question asks for the idle share":
        lambda ls, b: 1 - waste_rule(ls, b),
    "that is a count of idle slot-steps: divide it by all the slot-steps the schedule holds":
        lambda ls, b: sum(b * max(x) for x in _batches(ls, b)) - sum(ls),
    "each batch's idle share averaged: a long batch holds more slot-steps than a short one, so weigh "
    "them by slot-steps (divide the totals)":
        lambda ls, b: sum(1 - sum(x) / (b * max(x)) for x in _batches(ls, b)) / len(_batches(ls, b)),
}


def check_wasted_fraction(function: Callable, lengths: list[int], batch_size: int) -> Verdict:
    cases = [(list(lengths), batch_size), ([5, 1, 1, 1, 9, 2], 4), ([3, 3, 3], 2), ([7], 1)]
    return judge(function, waste_rule, WASTE_MISTAKES, cases,
                 describe=lambda args: f"lengths {args[0]} in batches of {args[1]}")


# ---------- 02.2: the scheduler ----------

def _ids(frame) -> str:
    shown = [int(i) for i in frame["request"]][:4]
    return ", ".join(map(str, shown)) + (" …" if len(frame) > 4 else "")


def scheduler_verdict(runs: dict) -> Verdict:
    """A continuous-batching policy judged from what it did (``{case: PolicyRun}``, runs on the real step):
    every request got all its tokens, nobody held a row after its last token, no row stood empty while a
    request waited, requests were admitted in arrival order. The first broken rule names the mistake."""
    for case, run in runs.items():
        req, steps = run.requests, run.steps
        short = req[req["output_tokens"] < req["asked_tokens"]]
        if len(short):
            first = short.iloc[0]
            return Verdict(False, f"{case}: request {int(first['request'])} was retired with "
                                  f"{int(first['output_tokens'])} of its {int(first['asked_tokens'])} tokens (requests "
                                  f"{_ids(short)} lost tokens): retire a request once `made` reaches `max_tokens`, "
                                  "not before")
        idle_waits = steps[(steps["empty"] > 0) & (steps["waiting"] > 0)]
        # after the first step, did any admission happen while some earlier request still held a row?
        refills = [s for s in req["admitted_step"].unique() if s > 0
                   and ((req["admitted_step"] < s) & (req["retired_step"] > s)).any()]
        # rows held by finished requests, or empty, while someone waited
        blocked = steps[((steps["held_done"] > 0) | (steps["empty"] > 0)) & (steps["waiting"] > 0)]
        if len(blocked) and not refills and req["admitted_step"].nunique() > 1:
            return Verdict(False, f"{case}: you admit only once every row is free — that is static batching: "
                                  f"at {len(blocked)} engine step(s) a row was idle while requests waited. "
                                  "A row freed by a finished request can take the next waiting one at once")
        late = req[req["retired_step"] > req["done_step"] + 1]
        if len(late):
            first = late.iloc[0]
            extra = int(first['retired_step'] - first['done_step'] - 1)
            return Verdict(False, f"{case}: request {int(first['request'])} held its row for {extra} engine "
                                  f"step(s) after its last token (requests {_ids(late)} did): retire a request "
                                  "in the first call that sees it has all its tokens")
        if len(idle_waits):
            first = idle_waits.iloc[0]
            freed_here = int((req["retired_step"] == first['step']).sum())
            fix = ("a row this call retires is free for a waiting request in the same call" if freed_here
                   else "give every free row a waiting request, not only some of them")
            return Verdict(False, f"{case}: at engine step {int(first['step'])} {int(first['empty'])} row(s) stood "
                                  f"empty while {int(first['waiting'])} request(s) waited: {fix}")
        by_step = [int(x) for x in req["admitted_step"]]
        jumped = [(by_step[j], j, i) for j in range(len(by_step)) for i in range(j) if by_step[i] > by_step[j]]
        if jumped:
            step, j, i = min(jumped)
            return Verdict(False, f"{case}: at engine step {step} request {j} took a row while request {i}, which "
                                  "arrived earlier, was still waiting: waiting requests take free rows in arrival "
                                  "order")
    return Verdict(True, "")


# ---------- 02.2 ----------

def _head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


BYTES_MISTAKES: dict[str, Callable] = {
    "counts K or V only: every token stores both a key and a value vector (× 2)":
        lambda c, d=2: bytes_per_token_rule(c, d) // 2,
    "counts every attention (query) head: with grouped-query attention only the KV heads "
    "(num_key_value_heads) store K and V":
        lambda c, d=2: 2 * c["num_hidden_layers"] * c["num_attention_heads"] * _head_dim(c) * d,
    "that is bits, not bytes (× 8)": lambda c, d=2: bytes_per_token_rule(c, d) * 8,
    "counts one layer: every layer keeps its own K and V (× num_hidden_layers)":
        lambda c, d=2: bytes_per_token_rule(c, d) // c["num_hidden_layers"],
    "head dim is the hidden size divided by the attention (query) heads, not by the KV heads":
        lambda c, d=2: 2 * c["num_hidden_layers"] * c["num_key_value_heads"] * d
        * (c.get("head_dim") or c["hidden_size"] // c["num_key_value_heads"]),
    "ignores dtype_bytes: multiply by the bytes one value takes (2 for bf16, 4 for fp32)":
        lambda c, d=2: bytes_per_token_rule(c, 1),
}

NO_HEAD_DIM = {"num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2, "hidden_size": 256}


def _missing_head_dim(error: Exception) -> str | None:
    if isinstance(error, KeyError) and "head_dim" in str(error):
        return ("your function needs config['head_dim'], which some configs leave out: derive it from the "
                "hidden size and the number of attention heads when it is missing")
    return None


def check_bytes_per_token(function: Callable, config: dict, engine_blocks: int, block_size: int,
                          kv_bytes: int) -> Verdict:
    """The learner's bytes per token on the lab's config and on one without ``head_dim``; the engine's block
    count is the evidence shown: ``engine_blocks`` blocks of ``block_size`` tokens fit in ``kv_bytes``."""
    verdict = judge(function, bytes_per_token_rule, BYTES_MISTAKES, [(config, 2), (NO_HEAD_DIM, 2), (NO_HEAD_DIM, 4)],
                    describe=lambda args: f"the config {args[0]} at {args[1]} bytes per value",
                    on_error=_missing_head_dim)
    if verdict.passed:
        return verdict
    mine = _attempt(function, (config, 2))[0]
    evidence = (f" (vLLM divided {kv_bytes:,} bytes into {engine_blocks} blocks of {block_size} tokens: "
                f"{bytes_per_token_rule(config):,} bytes per token; yours is {mine!r})") if mine is not None else ""
    return Verdict(False, verdict.message + evidence)


# ---------- 02.3 ----------

CAPACITY_MISTAKES: dict[str, Callable] = {
    "counts tokens in a partial block and forgets the null block: vLLM uses whole blocks only, and keeps one "
    "of them for itself": lambda kv, t, b: kv // t,
    "counts tokens in a partial block: vLLM hands out whole blocks only, and the remainder is never used":
        lambda kv, t, b: kv // t - b,
    "that is every block vLLM allocated: one of them is the null block, which no request can use":
        lambda kv, t, b: kv // (t * b) * b,
    "that is a number of blocks: the question asks for tokens (block_size tokens per block)":
        lambda kv, t, b: kv // (t * b) - 1,
    "that is a number of blocks, the null block included: the question asks for tokens":
        lambda kv, t, b: kv // (t * b),
    "rounded up: a partial block does not exist, so round the block count down":
        lambda kv, t, b: (-(-kv // (t * b)) - 1) * b,
    "not a whole number of tokens: divide with // (floor division) and count whole blocks":
        lambda kv, t, b: kv / t,
}


def check_capacity(function: Callable, kv_bytes: int, bytes_per_token: int, block_size: int,
                   engine_blocks: int) -> Verdict:
    """The learner's capacity for the engine's KV space must be the tokens of the blocks vLLM allocated, less
    its null block; a second space (with a remainder of most of a block) catches what the first may not."""
    verdict = judge(function, capacity_rule, CAPACITY_MISTAKES,
                    [(kv_bytes, bytes_per_token, block_size), (1_000_500, 1_000, 64), (640_000, 1_000, 64)],
                    describe=lambda a: f"kv_bytes={a[0]:,}, bytes_per_token={a[1]:,}, block_size={a[2]}")
    engine = (engine_blocks - 1) * block_size
    if verdict.passed and capacity_rule(kv_bytes, bytes_per_token, block_size) != engine:
        return Verdict(False, f"vLLM allocated {engine_blocks} blocks ({engine} tokens for requests), not what "
                              "the whole-block rule gives: was the engine started with these numbers?")
    if not verdict.passed:
        mine = _attempt(function, (kv_bytes, bytes_per_token, block_size))[0]
        return Verdict(False, f"{verdict.message} (you predicted {mine!r} tokens; vLLM allocated "
                              f"{engine_blocks} blocks of {block_size}, {engine} of them usable by requests)")
    return verdict


# ---------- 02.4 ----------

def _per_request(p, o, b):
    return -(-(p + o) // b)


def _first_over(levels, need, space, strict=True):
    return next((lv for lv in sorted(levels) if (lv * need > space if strict else lv * need >= space)), None)


ONSET_MISTAKES: dict[str, Callable] = {
    "counts the null block: vLLM keeps one of its blocks for itself, so requests share num_blocks − 1":
        lambda n, b, p, o, lv: _first_over(lv, _per_request(p, o, b), n),
    "a request holds whole blocks: round each request's tokens up to blocks before adding them up":
        lambda n, b, p, o, lv: _first_over(lv, p + o, (n - 1) * b),
    "counts the null block and partial blocks: requests hold whole blocks, and share all but one of them":
        lambda n, b, p, o, lv: _first_over(lv, p + o, n * b),
    "forgets the output: at its end a request holds its prompt and every token it decoded":
        lambda n, b, p, o, lv: _first_over(lv, -(-p // b), n - 1),
    "a level that needs exactly the blocks there are still fits: waiting starts when the need is more "
    "than the space": lambda n, b, p, o, lv: _first_over(lv, _per_request(p, o, b), n - 1, strict=False),
    "that is the last level at which everything still fits: the onset is the first level that does not":
        lambda n, b, p, o, lv: max((x for x in lv if x * _per_request(p, o, b) <= n - 1), default=None),
    "when no level runs out of KV the answer is None, not a level":
        lambda n, b, p, o, lv: onset_rule(n, b, p, o, lv) or max(lv),
    "when no level runs out of KV the answer is None, not 0":
        lambda n, b, p, o, lv: onset_rule(n, b, p, o, lv) or 0,
}


def check_onset(function: Callable, num_blocks: int, block_size: int, prompt_tokens: int, output_tokens: int,
                levels: list[int], measured: int | None) -> Verdict:
    """The learner's onset on the lab's sweep must be the level where vLLM's queue first filled; small sweeps
    catch a level that fills the cache exactly, a sweep where nothing runs out, and an output longer than the
    prompt."""
    cases = [(num_blocks, block_size, prompt_tokens, output_tokens, list(levels)),
             (5, 16, 20, 10, [1, 2, 3]),   # 2 blocks a request, 4 for requests: level 2 fills them exactly
             (9, 16, 20, 10, [1, 2, 3]),   # 8 blocks for requests: no level runs out
             (4, 16, 8, 40, [1, 2, 3])]    # the output is most of a request: 3 blocks, and 3 for requests
    verdict = judge(function, onset_rule, ONSET_MISTAKES, cases,
                    describe=lambda a: f"{a[0]} blocks of {a[1]} tokens, requests of {a[2]} + {a[3]} tokens, "
                                       f"levels {a[4]}")
    mine = _attempt(function, cases[0])[0]
    if not verdict.passed:
        return Verdict(False, f"{verdict.message} (on the sweep you predicted {mine!r}; requests first waited "
                              f"at {measured})")
    if mine != measured:
        return Verdict(False, f"your rule is right, but vLLM's queue first filled at {measured}, not {mine}: "
                              "was the sweep run on engine B as the lab starts it?")
    return verdict


# ---------- 02.5 ----------

HIT_RATE_MISTAKES: dict[str, Callable] = {
    "only whole blocks are cached: the shared tokens past the last whole block are recomputed by every request":
        lambda n, s, o, b: (n - 1) * s / (n * (s + o)),
    "rounded the shared prefix up: a partial block is never cached, so round down to whole blocks":
        lambda n, s, o, b: (n - 1) * (-(-s // b) * b) / (n * (s + o)),
    "the first request finds an empty cache, yet its prompt is queried too":
        lambda n, s, o, b: (s // b * b) / (s + o),
    "every request queries its whole prompt, its own question included":
        lambda n, s, o, b: (n - 1) * (s // b * b) / (n * s),
    "that is a percentage: give the hit rate as a fraction between 0 and 1":
        lambda n, s, o, b: 100 * hit_rate_rule(n, s, o, b),
    "that is the share of cached blocks, not of tokens: the counters count tokens":
        lambda n, s, o, b: (n - 1) * (s // b) / (n * -(-(s + o) // b)),
}


def check_hit_rate(function: Callable, n_requests: int, shared_tokens: int, own_tokens: int, block_size: int,
                   measured_on: float, measured_off: float) -> Verdict:
    """The learner's hit rate must match the counters of the run with the cache on (to half a point: they
    count tokens exactly); a case whose prefix is whole blocks and one with a single later request complete
    it. With the cache off nothing may hit."""
    cases = [(n_requests, shared_tokens, own_tokens, block_size), (3, 100, 10, 32), (2, 64, 20, 16)]
    verdict = judge(function, hit_rate_rule, HIT_RATE_MISTAKES, cases,
                    describe=lambda a: f"{a[0]} requests of {a[1]} shared + {a[2]} own tokens in blocks of {a[3]}",
                    same=lambda x, y: _same(x, y, rel=1e-4))
    mine = _attempt(function, cases[0])[0]
    shown = f"{mine:.1%}" if isinstance(mine, (int, float)) else repr(mine)
    if not verdict.passed:
        return Verdict(False, f"{verdict.message} (you predicted {shown}, vLLM's counters say "
                              f"{measured_on:.1%})")
    if abs(mine - measured_on) > 0.005:
        return Verdict(False, f"your rule is right, but vLLM's counters say {measured_on:.1%}, not {shown}: did "
                              "something else run on engine A during the workload?")
    if measured_off != 0:
        return Verdict(False, f"with prefix caching off vLLM still found {measured_off:.0%}: engine B must be "
                              "started with --no-enable-prefix-caching")
    return verdict


# ---------- 02.6 ----------

def _tradeoff_mistakes(small: dict, large: dict) -> dict[str, tuple]:
    spike, ttft, protects = tradeoff_rule(small, large)
    other = "large" if protects == "small" else "small"
    return {
        "the spike ratio is upside down: divide the large budget's worst gap by the small budget's":
            (1 / spike, ttft, protects),
        "the TTFT ratio is upside down: divide the long prompt's TTFT with the small budget by the one with "
        "the large budget": (spike, 1 / ttft, protects),
        "both ratios are upside down: each is the larger setting's cost over the other's, in the order the "
        "question states": (1 / spike, 1 / ttft, protects),
        "uses the median gap: the question is about the worst gap while the long prompt was being prefilled":
            (large["itl_p50_ms"] / small["itl_p50_ms"], ttft, protects),
        "the budget that protects running streams is the one under which their worst gap was shorter":
            (spike, ttft, other),
        "those are percentages: give how many times larger, a ratio such as 2.5": (100 * spike, 100 * ttft, protects),
    }


def check_tradeoff(answer, small: dict, large: dict) -> Verdict:
    """``answer``: what the learner's ``tradeoff(small, large)`` returned on the two measured rows."""
    right = tradeoff_rule(small, large)
    if not isinstance(answer, (list, tuple)) or len(answer) != 3:
        return Verdict(False, f"return three things (spike ratio, TTFT ratio, \"small\" or \"large\"); yours "
                              f"returned {answer!r}")
    if _same(tuple(answer), right):
        return Verdict(True, "")
    for what, mistake in _tradeoff_mistakes(small, large).items():
        if _same(tuple(answer), mistake):
            return Verdict(False, what)
    return Verdict(False, f"from the table: spike ratio {right[0]:.2f}, TTFT ratio {right[1]:.2f}, protecting "
                          f"budget {right[2]!r}; yours: {answer!r}")
