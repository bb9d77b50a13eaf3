"""Where a learner's own function plugs into a report: lab 01's TTFT/TPOT definition computes every measured
request, and its knee finder marks the latency–throughput figure. The harness's versions sit beside the
learner's, so a disagreement shows as a number, not as a silently different chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd

from .metrics import request_metrics

TtftTpot = Callable[[object], tuple[float, float]]
KneeFinder = Callable[[Sequence[int], Sequence[float]], "int | None"]


def ttft_tpot_table(report, ttft_tpot: TtftTpot) -> pd.DataFrame:
    """Per run: the median TTFT and TPOT of its completed requests by ``ttft_tpot`` and by the harness (ms).

    One-token answers have no TPOT (the harness says None); they are left out of the TPOT median.
    """
    rows = []
    for run in report.runs:
        done = [r for r in run.records if r.ok and r.content_chunks]
        if not done:
            continue
        yours = [ttft_tpot(r) for r in done]
        harness = [request_metrics(r) for r in done]
        with_tpot = [i for i, m in enumerate(harness) if m.tpot_s is not None]
        rows.append({
            "engine": run.target, "workload": run.workload, "load": run.load.label, "requests": len(done),
            "your TTFT p50 ms": pd.Series([y[0] for y in yours]).median() * 1e3,
            "harness TTFT p50 ms": pd.Series([m.ttft_s for m in harness]).median() * 1e3,
            "your TPOT p50 ms": pd.Series([yours[i][1] for i in with_tpot], dtype=float).median() * 1e3,
            "harness TPOT p50 ms": pd.Series([harness[i].tpot_s for i in with_tpot], dtype=float).median() * 1e3,
        })
    return pd.DataFrame(rows)


def sweeps(report, workload: str = "chat") -> dict[str, tuple[list[int], list[float]]]:
    """Per engine: the concurrency levels of its ``workload`` sweep and the output throughput at each."""
    frame = report.sweep_frame(workload) if report.runs else pd.DataFrame()
    return {engine: (list(rows["concurrency"]), list(rows["output_throughput"]))
            for engine, rows in (frame.groupby("engine") if not frame.empty else [])}


def mark_knees(figure, report, knee: KneeFinder, workload: str = "chat"):
    """Add a star at each engine's knee, as ``knee(concurrency, throughput)`` finds it, to the
    latency–throughput figure (TTFT and TPOT panels); return the figure."""
    import plotly.graph_objects as go

    frame = report.sweep_frame(workload)
    for engine, (levels, throughput) in sweeps(report, workload).items():
        at = knee(levels, throughput)
        if at is None:
            continue
        if at not in levels:
            raise ValueError(f"the knee finder returned {at!r} for {engine}, which is not one of its sweep's "
                             f"concurrency levels {levels}: return one of them, or None when there is no knee")
        row = frame[(frame["engine"] == engine) & (frame["concurrency"] == at)].iloc[0]
        for col, metric in ((1, "ttft_p50"), (2, "tpot_p50")):
            figure.add_trace(go.Scatter(x=[row["output_throughput"]], y=[row[metric] * 1e3], mode="markers",
                                        marker={"symbol": "star", "size": 16, "color": "black"},
                                        name=f"your knee · {engine} (c={at})", showlegend=col == 1),
                             row=1, col=col)
    return figure


# ---------- the checkpoints of lab 01: which mistake a wrong answer shows ----------
def _close(value, expected, rel: float = 1e-6) -> bool:
    try:
        return math.isclose(float(value), float(expected), rel_tol=rel, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def _first_mistake(cases: list, mistakes: dict, same) -> str | None:
    """The message of the first known mistake that gives exactly the learner's answer in every case
    (``cases``: (arguments, the learner's answer, the right answer))."""
    for check, message in mistakes.values():
        try:
            if all(same(yours, check(*args)) for args, yours, _ in cases):
                return message
        except (ArithmeticError, LookupError, TypeError, ValueError):
            continue
    return None


def _record(name: str, scheduled_ms: float, sent_ms: float, end_ms: float, chunks, tokens: int):
    from .records import Chunk, RequestRecord, TokenCounts

    ms = 1_000_000
    return RequestRecord(name, "engine", "demo", scheduled_ns=int(scheduled_ms * ms), sent_ns=int(sent_ms * ms),
                         end_ns=int(end_ms * ms), chunks=[Chunk(int(t * ms), text, count) for t, text, count in chunks],
                         output_tokens=TokenCounts(server=tokens))


def ttft_tpot_cases() -> list:
    """Records that separate the usual mistakes: sent later than scheduled, a first chunk without text,
    a stream that closes after its last token, chunks that carry two tokens each."""
    return [
        _record("example", 0, 20, 340, [(60, "", None)] + [(t, "tok", 1) for t in range(120, 331, 30)], 8),
        _record("two tokens a chunk", 100, 180, 700,
                [(150, "", None)] + [(t, "tok tok", 2) for t in (300, 400, 500, 600)], 8),
    ]


def _ttft(r, start):
    return (r.content_chunks[0].t_ns - start) / 1e9


TTFT_TPOT_MISTAKES = {
    "sent": (lambda r: (_ttft(r, r.sent_ns),
                        ((r.end_ns - r.content_chunks[0].t_ns) / 1e9) / (r.output_tokens.best - 1)),
             "TTFT is counted from sent_ns; it starts at scheduled_ns, so time the request waited in the client "
             "counts"),
    "per n": (lambda r: (_ttft(r, r.scheduled_ns), (r.end_ns - r.content_chunks[0].t_ns) / 1e9 / r.output_tokens.best),
              "TPOT divides by n output tokens: the first token's time is TTFT, so the rest of the stream spreads "
              "over n − 1 tokens"),
    "ms": (lambda r: (_ttft(r, r.scheduled_ns) * 1e3,
                      (r.end_ns - r.content_chunks[0].t_ns) / 1e6 / (r.output_tokens.best - 1)),
           "your times are in milliseconds: return seconds (nanoseconds ÷ 10⁹)"),
    "ns": (lambda r: (r.content_chunks[0].t_ns - r.scheduled_ns,
                      (r.end_ns - r.content_chunks[0].t_ns) / (r.output_tokens.best - 1)),
           "your times are in nanoseconds: return seconds (divide by 10⁹)"),
    "empty chunk": (lambda r: ((r.chunks[0].t_ns - r.scheduled_ns) / 1e9,
                               (r.end_ns - r.chunks[0].t_ns) / 1e9 / (r.output_tokens.best - 1)),
                    "TTFT stops at the first chunk, which carried no text: use the first chunk with content "
                    "(content_chunks)"),
    "chunks": (lambda r: (_ttft(r, r.scheduled_ns),
                          (r.end_ns - r.content_chunks[0].t_ns) / 1e9 / (len(r.content_chunks) - 1)),
               "TPOT divides by the number of chunks: a chunk can carry several tokens — count tokens "
               "(output_tokens.best)"),
    "e2e per token": (lambda r: (_ttft(r, r.scheduled_ns), (r.end_ns - r.scheduled_ns) / 1e9 / r.output_tokens.best),
                      "TPOT is the whole request divided by its tokens: take TTFT out first (TTFT is prefill, "
                      "TPOT decode)"),
    "last chunk": (lambda r: (_ttft(r, r.scheduled_ns), (r.content_chunks[-1].t_ns - r.content_chunks[0].t_ns) / 1e9
                              / (r.output_tokens.best - 1)),
                   "TPOT stops at the last chunk: the request ends when the stream closes (end_ns)"),
}


def ttft_tpot_problems(ttft_tpot: TtftTpot) -> list[str]:
    """Exercise 01.1: ``ttft_tpot(record)`` against the harness's :func:`.metrics.request_metrics` on
    :func:`ttft_tpot_cases`; a disagreement is named by the mistake that reproduces it."""
    wrong, seen = [], []
    for record in ttft_tpot_cases():
        right = request_metrics(record)
        try:
            yours = tuple(ttft_tpot(record))
        except Exception as error:  # noqa: BLE001 — the learner's function: say what it raised
            return [f"on the record {record.request_id!r} your function raised {type(error).__name__}: {error}"]
        seen.append(((record,), yours, (right.ttft_s, right.tpot_s)))
        if len(yours) != 2 or not (_close(yours[0], right.ttft_s) and _close(yours[1], right.tpot_s)):
            wrong.append(seen[-1])
    if not wrong:
        return []
    (record,), yours, right = wrong[0]
    details = f"on {record.request_id!r} you gave {yours}, the harness ({right[0]:.6g} s, {right[1]:.6g} s)"
    found = []
    for key in ("ttft", "tpot"):
        index = 0 if key == "ttft" else 1
        if all(_close(y[index], r[index]) for _, y, r in wrong if len(y) == 2):
            continue
        message = _first_mistake(seen, {k: (lambda rec, f=f, i=index: f(rec)[i], m) for k, (f, m) in
                                         TTFT_TPOT_MISTAKES.items()},
                                 lambda y, v, i=index: len(y) == 2 and _close(y[i], v))
        found.append(message or f"your {key.upper()} differs from the definition")
    return ["; ".join(dict.fromkeys(found)) + f" ({details})"]


# Exercise 01.4: knee finders that go wrong in the usual ways, and sweeps that tell them apart.
def _steps(levels, throughput, ordered=True):
    points = sorted(zip(levels, throughput)) if ordered else list(zip(levels, throughput))
    return list(zip(points, points[1:]))


def _knee_with(efficiency, pick=lambda c0, c1: c0, ordered=True, skip_zero=True):
    def knee(levels, throughput):
        for (c0, t0), (c1, t1) in _steps(levels, throughput, ordered):
            if skip_zero and t0 <= 0:
                continue
            if efficiency(c0, t0, c1, t1):
                return pick(c0, c1)
        return None
    return knee


def _last_failing(levels, throughput):
    found = None
    for (c0, t0), (c1, t1) in _steps(levels, throughput):
        if t0 > 0 and (t1 / t0 - 1) / (c1 / c0 - 1) < 0.25:
            found = c0
    return found


KNEE_CASES = [([1, 2, 4, 8], [10.0, 19.0, 22.0, 22.5]), ([1, 2, 4], [10.0, 19.5, 38.0]),
              ([1, 2, 4], [10.0, 10.2, 10.1]), ([1, 4], [10.0, 15.0]), ([4, 1, 2], [20.0, 10.0, 19.0]),
              ([1, 2, 4, 8], [10.0, 11.0, 21.0, 22.0]), ([1, 2, 4], [0.0, 10.0, 11.0])]
KNEE_MISTAKES = {
    "off by one": (_knee_with(lambda c0, t0, c1, t1: (t1 / t0 - 1) / (c1 / c0 - 1) < 0.25, pick=lambda c0, c1: c1),
                   "returns the level where the failing step ends (off by one): the knee is the level the step "
                   "starts from, the last one that still scaled"),
    "direction": (_knee_with(lambda c0, t0, c1, t1: (t1 / t0 - 1) / (c1 / c0 - 1) >= 0.25),
                  "stops at the first step that scales: the test is the wrong way round (the knee is the first step "
                  "whose efficiency is *below* 25 %)"),
    "no minus one": (_knee_with(lambda c0, t0, c1, t1: (t1 / t0) / (c1 / c0) < 0.25),
                     "compares the throughput ratio with the load ratio without the − 1: efficiency is "
                     "(t₁/t₀ − 1) ÷ (c₁/c₀ − 1), the share of the extra load that became extra throughput"),
    "gain only": (_knee_with(lambda c0, t0, c1, t1: t1 / t0 - 1 < 0.25),
                  "looks at the throughput gain alone: divide it by the load gain (c₁/c₀ − 1), a step from 1 to 4 "
                  "must gain more than a step from 1 to 2"),
    "unsorted": (_knee_with(lambda c0, t0, c1, t1: (t1 / t0 - 1) / (c1 / c0 - 1) < 0.25, ordered=False),
                 "walks the levels in the order given: sort them by concurrency first"),
    "last": (_last_failing, "returns the last failing step's start: the knee is the *first* step that fails"),
    "percent": (_knee_with(lambda c0, t0, c1, t1: (t1 / t0 - 1) / (c1 / c0 - 1) < 25),
                "compares the efficiency (a fraction, 1 = perfect scaling) with 25: the threshold is 0.25"),
}


def knee_problems(knee: KneeFinder, measured: dict[str, tuple[list[int], list[float]]] | None = None) -> list[str]:
    """Exercise 01.4: ``knee(levels, throughput)`` against :func:`.analysis.find_knee` on :data:`KNEE_CASES` and
    the measured sweeps; a disagreement is named by the mistake that reproduces it."""
    from .analysis import find_knee

    wrong, seen = [], []
    for levels, throughput in KNEE_CASES + list((measured or {}).values()):
        right = find_knee(list(levels), list(throughput)).concurrency
        try:
            yours = knee(list(levels), list(throughput))
        except ZeroDivisionError:
            return [f"your knee finder divided by zero on levels {list(levels)} with throughput {list(throughput)}: "
                    "a step that starts at throughput 0 has no efficiency — skip it"]
        except Exception as error:  # noqa: BLE001
            return [f"your knee finder raised {type(error).__name__}: {error} on levels {list(levels)}, throughput "
                    f"{list(throughput)}"]
        seen.append(((list(levels), list(throughput)), yours, right))
        if yours != right:
            wrong.append(seen[-1])
    if not wrong:
        return []
    (levels, throughput), yours, right = wrong[0]
    message = _first_mistake(seen, KNEE_MISTAKES, lambda y, v: y == v)
    if message is None and all(y is not None and y not in args[0] for args, y, _ in wrong):
        message = "returns something that is not one of the concurrency levels (return the level, not a throughput)"
    return [f"your knee finder {message or 'disagrees with the definition'} (levels {levels}, throughput "
            f"{throughput}: you {yours!r}, right {right!r})"]


# Exercise 01.3: which engine for which use case, by the rule the exercise states.
USE_CASE_RULES = {  # use case -> (workload, concurrency level: "one" | "top" | "all", column, "min" | "max")
    "Interactive chat, one user": ("chat", "one", "ttft_p50", "min"),
    "Long documents (summarise, RAG)": ("prefill-heavy", "all", "prefill_tok_s_p50", "max"),
    "Long answers (reports, code)": ("decode-heavy", "all", "decode_tok_s_p50", "max"),
    "Many users at once": ("chat", "top", "output_throughput", "max"),
}
_LEVEL_WORDS = {"one": "concurrency 1", "top": "the highest concurrency", "all": "every concurrency level"}


def _apply_rule(frame: pd.DataFrame, rule) -> str | None:
    workload, level, column, direction = rule
    rows = frame[frame["workload"] == workload]
    if level == "one":
        rows = rows[rows["concurrency"] == 1]
    elif level == "top":
        rows = rows[rows["concurrency"] == frame["concurrency"].max()]
    rows = rows[rows[column].notna()]
    if rows.empty:
        return None
    return rows.loc[rows[column].idxmin() if direction == "min" else rows[column].idxmax(), "engine"]


def _mutations(rule):
    """Single slips from ``rule``, the likeliest first: the direction, the concurrency level, the column, the
    workload."""
    workload, level, column, direction = rule
    flipped = "max" if direction == "min" else "min"
    worse, better = ("highest", "lowest") if flipped == "max" else ("lowest", "highest")
    yield (workload, level, column, flipped), f"takes the {worse} {column}; the best is the {better}"
    for other in ("one", "top", "all"):
        if other != level:
            yield (workload, other, column, direction), f"reads {_LEVEL_WORDS[other]} instead of {_LEVEL_WORDS[level]}"
    for other in ("ttft_p50", "prefill_tok_s_p50", "decode_tok_s_p50", "output_throughput", "tpot_p50", "e2e_p50"):
        if other != column:
            for way in ("min", "max"):
                yield (workload, level, other, way), f"ranks by {other} instead of {column}"
    for other in ("chat", "prefill-heavy", "decode-heavy"):
        if other != workload:
            yield (other, level, column, direction), f"reads the {other} workload instead of {workload}"


def _use_frame(rows) -> pd.DataFrame:
    columns = ["engine", "workload", "concurrency", "ttft_p50", "prefill_tok_s_p50", "decode_tok_s_p50",
               "output_throughput", "tpot_p50", "e2e_p50"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["client_valid"] = True
    return frame


# Made-up results where each single slip (another column, concurrency, workload or direction) picks another engine.
USE_CASE_FRAMES = [_use_frame([
    # engine, workload, concurrency, ttft, prefill tok/s, decode tok/s, output tok/s, tpot, e2e
    ("A", "chat", 1, 0.10, 900.0, 40.0, 30.0, 0.025, 1.0),
    ("B", "chat", 1, 0.20, 1500.0, 60.0, 50.0, 0.017, 0.8),
    ("C", "chat", 1, 0.30, 1200.0, 30.0, 20.0, 0.033, 1.4),
    ("A", "chat", 4, 0.50, 700.0, 35.0, 60.0, 0.030, 1.6),
    ("B", "chat", 4, 0.05, 1300.0, 45.0, 90.0, 0.022, 1.2),
    ("C", "chat", 4, 0.90, 1100.0, 25.0, 120.0, 0.040, 2.0),
    ("A", "chat", 2, 0.15, 800.0, 38.0, 200.0, 0.026, 1.1),
    ("D", "chat", 2, 0.03, 1000.0, 28.0, 40.0, 0.036, 1.5),
    ("A", "prefill-heavy", 1, 0.20, 2000.0, 30.0, 10.0, 0.030, 1.5),
    ("B", "prefill-heavy", 1, 0.30, 1500.0, 50.0, 25.0, 0.020, 0.9),
    ("C", "prefill-heavy", 1, 0.35, 2500.0, 20.0, 8.0, 0.050, 2.0),
    ("A", "decode-heavy", 1, 0.40, 1600.0, 55.0, 52.0, 0.018, 3.0),
    ("B", "decode-heavy", 1, 0.10, 3000.0, 30.0, 28.0, 0.033, 3.5),
    ("C", "decode-heavy", 1, 0.20, 2000.0, 35.0, 60.0, 0.029, 2.5),
])]


def use_case_problems(choose: Callable, frame: pd.DataFrame) -> list[str]:
    """Exercise 01.3: ``choose(frame)`` -> {use case: engine} against :data:`USE_CASE_RULES` on the lab's measured
    frame and on :data:`USE_CASE_FRAMES`; each wrong pick is named by the slip that reproduces it."""
    cases = [("your measurements", frame)] + [(f"made-up results {i + 1}", f) for i, f in enumerate(USE_CASE_FRAMES)]
    cases = cases[1:] + cases[:1]  # the made-up results first: they are built to tell the slips apart
    answers = []
    for name, data in cases:
        try:
            yours = choose(data)
        except Exception as error:  # noqa: BLE001
            return [f"on {name} your function raised {type(error).__name__}: {error}"]
        if not isinstance(yours, dict):
            return [f"return a dict use case -> engine, got {type(yours).__name__}"]
        answers.append((name, data, yours))
    problems = []
    for use, rule in USE_CASE_RULES.items():
        wrong = [(name, data, yours.get(use), _apply_rule(data, rule)) for name, data, yours in answers
                 if yours.get(use) != _apply_rule(data, rule)]
        if not wrong:
            continue
        name, _, yours, right = wrong[0]
        if any(pick is None for _, _, pick, _ in wrong):
            problems.append(f"{use}: no pick (the dict needs this key)")
            continue
        slip = next((words for mutated, words in _mutations(rule)
                     if all(_apply_rule(data, mutated) == pick for _, data, pick, _ in wrong)), None)
        problems.append(f"{use}: your pick {slip or 'does not follow the rule'} (on {name} you picked {yours}, "
                        f"the rule picks {right})")
    return problems
