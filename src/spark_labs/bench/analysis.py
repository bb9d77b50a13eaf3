"""Turning measurements into sentences: the knee of a concurrency sweep, plain-language diagnosis
lines, and the "which engine for which use case" table — all computed from the rows given, so a
different machine gives different words."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import pandas as pd

from .lockstep import lockstep_line


@dataclass(frozen=True)
class Knee:
    concurrency: int | None
    reason: str


def find_knee(concurrency: list[int], throughput: list[float], min_efficiency: float = 0.25) -> Knee:
    """The last concurrency before extra load stopped buying throughput.

    Between two levels, efficiency = (throughput gain − 1) / (load gain − 1): 1 means throughput rose
    as fast as the load, 0 means not at all. The knee is where efficiency first drops below
    ``min_efficiency`` — beyond it, more concurrency mostly buys queueing.
    """
    points = sorted(zip(concurrency, throughput))
    for (c0, t0), (c1, t1) in pairwise(points):
        if c1 <= c0 or t0 <= 0:
            continue
        efficiency = (t1 / t0 - 1) / (c1 / c0 - 1)
        if efficiency < min_efficiency:
            return Knee(c0, f"from {c0} to {c1} concurrent requests throughput rose only ×{t1 / t0:.2f} "
                            f"(efficiency {efficiency:.0%}): beyond {c0}, extra load mostly waits")
    if len(points) < 2:
        return Knee(None, "a sweep needs at least two concurrency levels")
    return Knee(None, f"throughput still scaled at {points[-1][0]} concurrent requests: no knee in the range swept")


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def diagnose_sweep(engine: str, rows: pd.DataFrame) -> list[str]:
    """Lines about one engine's concurrency sweep (rows sorted by concurrency, from Report.frame())."""
    rows = rows.sort_values("concurrency")
    if len(rows) < 2:
        return []
    if rows["completed"].min() < 4:
        fewest = int(rows["completed"].min())
        line = (f"{engine}: too few requests per concurrency level ({fewest}) to diagnose the sweep; "
                "run more before drawing conclusions.")
        return [line]
    lo, hi = rows.iloc[0], rows.iloc[-1]
    load = _ratio(hi["concurrency"], lo["concurrency"])
    ttft_x = _ratio(hi["ttft_p50"], lo["ttft_p50"])
    tpot_x = _ratio(hi["tpot_p50"], lo["tpot_p50"])
    tput_x = _ratio(hi["output_throughput"], lo["output_throughput"])
    c0, c1 = int(lo["concurrency"]), int(hi["concurrency"])
    lines = []
    if tput_x < 1.2 and ttft_x > 0.6 * load:
        lines.append(f"{engine}: {c0}→{c1} concurrent requests left throughput flat (×{tput_x:.2f}) while TTFT "
                     f"grew ×{ttft_x:.1f} and TPOT ×{tpot_x:.2f} — requests are served one at a time and the "
                     "rest queue (no continuous batching). Extra users only wait longer.")
    elif tput_x > 1.5:
        lines.append(f"{engine}: batching works — throughput ×{tput_x:.2f} for ×{load:.0f} load"
                     + (f", and each sequence's TPOT rose ×{tpot_x:.2f}: every decode step carries more "
                        "sequences, trading per-user speed for total throughput." if tpot_x > 1.3 else
                        f" with TPOT nearly flat (×{tpot_x:.2f}): decode steps are memory-bound, so sharing "
                        "the weight reads across sequences is almost free."))
    if ttft_x > 3 and tpot_x < 1.5:
        lines.append(f"{engine}: TTFT grew ×{ttft_x:.1f} while TPOT stayed within ×{tpot_x:.2f} — new requests "
                     "wait for a turn at prefill (queueing). Chunked prefill or more capacity shortens that "
                     "wait; faster decode would not.")
    return lines


def diagnose_run(row: pd.Series) -> list[str]:
    """Lines about one run: roofline position, client health, Little's law, failures."""
    lines = []
    who = f"{row['engine']} · {row['workload']} · {row['load']}"
    if not row.get("client_valid", True):
        lines.append(f"{who}: INVALID — the client fell behind ({row.get('client_reasons', '')}); "
                     "these numbers describe the client, not the engine.")
    if row.get("failed", 0):
        lines.append(f"{who}: {int(row['failed'])} of {int(row['requests'])} requests failed.")
    mbu = row.get("mbu")
    if mbu is not None and not math.isnan(mbu):
        if mbu < 0.15:
            lines.append(f"{who}: decode reaches {mbu:.0%} of the memory-bandwidth roof — overhead-bound "
                         "(scheduling, Python, kernel launches), not bandwidth-bound.")
        elif mbu > 0.6:
            lines.append(f"{who}: decode reaches {mbu:.0%} of the memory-bandwidth roof — near the ceiling; "
                         "only fewer bytes per step (quantisation) or larger batches raise throughput.")
    if line := lockstep_line(who, row):
        lines.append(line)
    ratio = row.get("littles_ratio")
    if ratio is not None and not math.isnan(ratio) and abs(ratio - 1) > 0.15:
        lines.append(f"{who}: Little's law check off by {abs(ratio - 1):.0%} (sampled in-flight vs "
                     "throughput × latency): the load was not as steady as the numbers assume.")
    return lines


# (use case, workload, metric column, higher is better, what the metric shows)
USE_CASES = (
    ("Interactive chat, one user", "chat", "ttft_p50", False, "TTFT p50 at the lowest concurrency"),
    ("Long documents (summarise, RAG)", "prefill-heavy", "prefill_tok_s_p50", True, "prefill tok/s p50"),
    ("Long answers (reports, code)", "decode-heavy", "decode_tok_s_p50", True, "decode tok/s p50"),
    ("Many users at once", "chat", "output_throughput", True, "output tok/s at the highest concurrency"),
)


def use_case_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank engines per use case from measured rows. Stars are relative to the best engine on this
    machine (5 = best, fewer in proportion), so they change when the hardware or engines do."""
    out = []
    for use, workload, column, higher, shown in USE_CASES:
        rows = frame[(frame["workload"] == workload) & frame["client_valid"] & frame[column].notna()]
        if rows.empty:
            continue
        pick = "concurrency"
        if use.startswith("Interactive"):
            rows = rows[rows[pick] == rows.groupby("engine")[pick].transform("min")]
        elif use.startswith("Many"):
            rows = rows[rows[pick] == rows.groupby("engine")[pick].transform("max")]
        values = rows.groupby("engine")[column].mean()
        best = values.max() if higher else values.min()
        if not best > 0:  # nothing was served (every request failed): no engine to rank
            continue
        for engine, value in values.items():
            score = value / best if higher else best / value
            out.append({"use case": use, "engine": engine, "measured": f"{value:.3g} ({shown})",
                        "stars": "★" * max(1, round(5 * score)) + "☆" * (5 - max(1, round(5 * score))),
                        "best": value == best})
    return pd.DataFrame(out)


def module_claims() -> dict[str, tuple[int, int]]:
    """The original module README's star ratings (prefill, decode) per engine, kept in the registry
    (``EngineSpec.module_stars``) — a claim to test against measurements, not a result."""
    from ..engines.registry import ENGINES

    return {name: spec.module_stars for name, spec in ENGINES.items() if spec.module_stars}


def claims_vs_measured(frame: pd.DataFrame) -> pd.DataFrame:
    """The original module's prefill/decode stars beside stars computed from this machine's measurements."""
    table = use_case_table(frame)
    measured = {}
    for use, kind in (("Long documents (summarise, RAG)", "prefill"), ("Long answers (reports, code)", "decode")):
        for _, row in table[table["use case"] == use].iterrows():
            measured.setdefault(row["engine"], {})[kind] = row["stars"].count("★")
    rows = []
    claims = module_claims()
    for engine, got in measured.items():
        claimed = claims.get(engine)
        row = {"engine": engine, "claimed prefill": claimed[0] if claimed else None,
               "measured prefill": got.get("prefill"),
               "claimed decode": claimed[1] if claimed else None, "measured decode": got.get("decode")}
        if claimed:
            gaps = [abs(c - m) for c, m in ((claimed[0], got.get("prefill")), (claimed[1], got.get("decode")))
                    if m is not None]
            row["verdict"] = "agrees" if gaps and max(gaps) <= 1 else "differs here"
        else:
            row["verdict"] = "no claim in the original module"
        rows.append(row)
    return pd.DataFrame(rows)
