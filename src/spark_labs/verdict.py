"""The few lines ``make demo`` ends with: which engine for which use, the one measured number behind each, and
where the full report is. The tables, cross-checks and sample-size warnings stay in the written report.

Everything is computed from the report's per-request records. A use gets a winner only when the gap is larger
than the runs' own noise (a rank test on the requests, or on time slices of the run for throughput) and than
what a change of machine load between the engines' runs could explain; otherwise, or when an engine has no
valid run, the line says so.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from .bench import Report, request_metrics

# A gap must be this unlikely under "both engines are the same" (two-sided rank-test p-value) to be called.
ALPHA = 0.05
# The engines run one after the other, not interleaved: a change of load on the machine between their runs
# shifts one engine's numbers wholesale, which no within-run spread shows. A smaller gap is not called.
MIN_RATIO = 1.10
# Exact test up to this many splits of the pooled requests (8 vs 8 is 12,870); random splits beyond.
EXACT_SPLITS = 20_000
RANDOM_SPLITS = 5_000
# Throughput is one number per run; its spread comes from time slices of the run. Of 10 slices the first and
# last are left out (streams still starting, the last requests draining: the run's ends, not its noise), and
# 8 vs 8 slices can reach p = 2/12,870 while each slice of a demo run still holds a few requests' tokens.
WINDOWS = 10


@dataclass(frozen=True)
class Use:
    name: str
    workload: str
    metric: str  # a RequestMetrics field, or "throughput" (the run's output tok/s)
    label: str  # how the number is named on the line
    higher_is_better: bool
    under_load: bool = False  # False: the lowest concurrency every engine ran; True: the highest


USES = (
    Use("one user, interactive", "chat", "ttft_s", "TTFT p50", higher_is_better=False),
    Use("long prompts (summarise, RAG)", "prefill-heavy", "prefill_tok_s", "prefill p50", higher_is_better=True),
    Use("long answers (reports, code)", "decode-heavy", "decode_tok_s", "decode p50", higher_is_better=True),
    Use("many users at once", "chat", "throughput", "output", higher_is_better=True, under_load=True),
)


@dataclass
class Measured:
    engine: str
    value: float  # the number the line shows: the p50, or the run's output tok/s
    samples: list[float]  # what the rank test compares: one per completed request, or per slice of the run


@dataclass
class Call:
    use: Use
    winner: str | None  # None: no clear winner, and ``line`` says why
    line: str
    measured: list[Measured]
    concurrency: int | None = None
    p_value: float | None = None


def _runs_by_level(report: Report, workload: str) -> dict[str, dict[int, object]]:
    """engine -> concurrency -> its last valid closed-loop run of ``workload`` with a completed request."""
    out: dict[str, dict[int, object]] = {}
    for run in report.runs:
        if run.workload != workload or run.load.open_loop or not run.health.valid or not run.summary.completed:
            continue
        level = 1 if run.load.mode == "sequential" else run.load.concurrency
        out.setdefault(run.target, {})[level] = run
    return out


def throughput_windows(run, windows: int = WINDOWS) -> list[float]:
    """Output tok/s in ``windows`` equal slices of the run, from each chunk's arrival time (a request's tokens
    spread evenly over its chunks). Their mean is the run's output throughput; their spread is how steady it was.
    Per-request rates would not do: behind a server that serves one request at a time, a request's rate says
    where it stood in the queue, not how fast the server went."""
    start = min(r.scheduled_ns for r in run.records)
    width = max(max(r.end_ns for r in run.records) - start, 1) / windows
    tokens = [0.0] * windows
    for record in run.records:
        chunks = record.content_chunks
        if record.ok and chunks:
            share = request_metrics(record).output_tokens / len(chunks)
            for chunk in chunks:
                tokens[min(windows - 1, int((chunk.t_ns - start) / width))] += share
    return [count / (width / 1e9) for count in tokens]


def _measure(run, use: Use) -> Measured | None:
    if use.metric == "throughput":
        return Measured(run.target, run.summary.output_throughput, throughput_windows(run)[1:-1])
    samples = [v for r in run.records if r.ok and (v := getattr(request_metrics(r), use.metric)) is not None]
    # median = the report's p50 (numpy's linear interpolation gives the same at the 50th percentile)
    return Measured(run.target, median(samples), samples) if samples else None


def permutation_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value that ``a`` and ``b`` come from one distribution: the exact Mann-Whitney rank-sum test,
    i.e. the share of all splits of the pooled requests into groups of len(a) and len(b) whose rank sum lies as
    far from its expectation as ``a``'s. Ranks, not medians: a median moves in steps on a handful of requests."""
    pooled = sorted([*a, *b])
    rank = {}
    for value in set(pooled):  # ties share the mean of their ranks
        first = pooled.index(value) + 1
        rank[value] = first + (pooled.count(value) - 1) / 2
    ranks = [rank[x] for x in [*a, *b]]
    expected = len(a) * (len(ranks) + 1) / 2
    observed = abs(sum(ranks[: len(a)]) - expected) - 1e-9  # a split exactly as far counts as "as far"
    splits = math.comb(len(ranks), len(a))
    if splits <= EXACT_SPLITS:
        return sum(abs(sum(c) - expected) >= observed for c in itertools.combinations(ranks, len(a))) / splits
    rng = random.Random(0)  # the same report always gives the same verdict
    hits = sum(abs(sum(rng.sample(ranks, len(a))) - expected) >= observed for _ in range(RANDOM_SPLITS))
    return (hits + 1) / (RANDOM_SPLITS + 1)


def _fmt(value: float, use: Use) -> str:
    number, unit = (value * 1e3, "ms") if use.metric == "ttft_s" else (value, "tok/s")
    return f"{number:,.0f} {unit}" if number >= 100 else f"{number:.3g} {unit}"  # 9,950 rather than 9.95e+03


def _label(use: Use, level: int) -> str:
    return f"{use.label} at {level} concurrent" if use.under_load else use.label


def _level(by_engine: dict[str, dict[int, object]], use: Use) -> int | None:
    common = set.intersection(*(set(levels) for levels in by_engine.values())) if by_engine else set()
    if not common:
        return None
    return max(common) if use.under_load else min(common)


def judge(report: Report, use: Use) -> Call:
    """One use's call from the report's runs."""
    by_engine = _runs_by_level(report, use.workload)
    missing = sorted(set(report.engines) - set(by_engine)) + sorted(report.meta.get("skipped") or {})
    if not by_engine:
        return Call(use, None, f"not measured: no valid {use.workload} run", [])
    if len(by_engine) == 1:
        (engine, levels), = by_engine.items()
        level = max(levels) if use.under_load else min(levels)
        m = _measure(levels[level], use)
        number = f"{_label(use, level)} {_fmt(m.value, use)}" if m else "no usable requests"
        return Call(use, None, f"no comparison: only {engine} measured ({number}); "
                               f"missing {', '.join(missing) or 'a second engine'}", [m] if m else [], level)
    level = _level(by_engine, use)
    if level is None or (use.under_load and level <= 1):
        return Call(use, None, "no comparison: the engines share no concurrency level above 1", [])
    measured = [m for levels in by_engine.values() if (m := _measure(levels[level], use))]
    measured.sort(key=lambda m: m.value, reverse=use.higher_is_better)
    label = _label(use, level)
    if len(measured) < 2:
        return Call(use, None, f"no comparison: only {len(measured)} engine has usable requests", measured, level)
    best, second = measured[:2]
    ratio = best.value / second.value if use.higher_is_better else second.value / best.value
    numbers = f"{best.engine} {_fmt(best.value, use)} vs {second.engine} {_fmt(second.value, use)}"
    p = permutation_p(best.samples, second.samples)
    unit = "time slices" if use.metric == "throughput" else "requests"
    counts = f"{len(best.samples)} vs {len(second.samples)} {unit}"
    if p >= ALPHA:
        least = 2 / math.comb(len(best.samples) + len(second.samples), len(best.samples))
        why = (f"too few {unit} to tell apart ({counts})" if least >= ALPHA
               else f"within noise (p = {p:.2f}, {counts})")
        return Call(use, None, f"no clear winner — {label}: {numbers}; {why}", measured, level, p)
    if ratio < MIN_RATIO:
        return Call(use, None, f"no clear winner — {label}: {numbers}; under {MIN_RATIO - 1:.0%} apart, which "
                               "a change of machine load between the runs could explain", measured, level, p)
    line = (f"{best.engine} — {label} {_fmt(best.value, use)} ({second.engine} {_fmt(second.value, use)}: "
            f"{ratio:.2g}× better)")
    return Call(use, best.engine, line, measured, level, p)


def verdict(report: Report, uses: Sequence[Use] = USES) -> list[Call]:
    return [judge(report, use) for use in uses]


def render(report: Report, report_dir: str | Path | None, calls: list[Call] | None = None) -> str:
    """The closing lines: a call per use, then where the detail is."""
    calls = verdict(report) if calls is None else calls
    width = max(len(c.use.name) for c in calls)
    lines = ["Verdict (measured in this run):"]
    lines += [f"  {c.use.name:<{width}}  {c.line}" for c in calls]
    warnings = sum(len(run.summary.warnings + run.health.notes) for run in report.runs)
    detail = f"{len(report.runs)} runs, {len(report.diagnosis())} diagnosis lines, {warnings} warnings"
    if report_dir is None:
        lines.append(f"Detail ({detail}) is in the report; nothing was written (no output folder).")
    else:
        where = Path(report_dir)
        lines.append(f"Full report: {where / 'report.html'} (also .md, .json): {detail}, figures, per-request "
                     "records")
    return "\n".join(lines)
