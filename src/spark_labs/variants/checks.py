"""Lab 03's checkpoints: what a learner's bits per weight, size predictions, variant pick and compile
break-even got wrong, in words that name the mistake.

Each check runs the learner's function on the lab's own data and on small made-up cases chosen so that every
common mistake (bits for bytes, MiB for MB, a format's scales left out, a threshold the wrong way round, the
build seconds compared with a speed) changes the answer; the message says which mistake the answer shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

from ..sizing import BITS_PER_WEIGHT

# Bits per weight of the formats lab 03 builds, and what each is made of (for the messages).
Q4_K_BITS = 144 * 8 / 256   # 256 weights: 4-bit values, 6-bit scales and minimums per 32, fp16 scale and minimum
Q6_K_BITS = 210 * 8 / 256   # 256 weights: 6-bit values, int8 scales per 16, one fp16 scale
FORMAT_PARTS = {
    "fp16": "16-bit values, nothing else", "bf16": "16-bit values, nothing else",
    "q8_0": "blocks of 32 int8 values plus one fp16 scale per block (8 + 16/32 bits)",
    "q4_k_m": "a mix: most weights in Q4_K (4.5 bits), about one in six in Q6_K (6.5625 bits)",
    "nf4": "4-bit codes plus one fp32 absmax scale per block of 64 (4 + 32/64 bits)",
}
_TOLERANCE_BITS = 0.05


def _close(value, expected, rel=0.005) -> bool:
    try:
        return math.isclose(float(value), float(expected), rel_tol=rel)
    except (TypeError, ValueError):
        return False


def _bits_mistake(variant: str, fmt: str, bits) -> str | None:
    """Why ``bits`` is not ``fmt``'s bits per weight (None: it is)."""
    right = BITS_PER_WEIGHT[fmt]
    try:
        bits = float(bits)
    except (TypeError, ValueError):
        return f"{variant}: {bits!r} is not a number of bits per weight"
    if abs(bits - right) <= _TOLERANCE_BITS:
        return None
    if _close(bits, right / 8, 0.02):
        return (f"{variant}: {bits:g} is bytes per weight, not bits (the table asks bits: {right:g}); "
                f"keep bits here and divide by 8 once, when you turn them into bytes")
    if fmt == "nf4" and abs(bits - 4) < 1e-9:
        return ("NF4: 4 bits counts the codes only and leaves out the absmax scales: each block of 64 weights also "
                "stores one fp32 absmax (32 bits ÷ 64 = 0.5 bit per weight)")
    if fmt == "nf4" and abs(bits - (4 + 16 / 64)) < 1e-6:
        return "NF4: bitsandbytes stores the absmax of each block of 64 as fp32 (32 bits), not fp16"
    if fmt == "q8_0" and abs(bits - 8) < 1e-9:
        return ("Q8_0: 8 bits counts the int8 values only and leaves out the scales: each block of 32 weights also "
                "stores one fp16 scale (16 bits ÷ 32 = 0.5 bit per weight)")
    if fmt == "q4_k_m" and abs(bits - 4) < 1e-9:
        return ("Q4_K_M: 4 bits counts the 4-bit values only: it leaves out Q4_K's scales and minimums and "
                "Q4_K_M's mix with Q6_K")
    if fmt == "q4_k_m" and abs(bits - Q4_K_BITS) < 1e-6:
        return ("Q4_K_M: 4.5 bits is Q4_K alone and ignores Q4_K_M's mix: about one weight in six is stored in "
                f"Q6_K ({Q6_K_BITS:g} bits), so the average is higher")
    if fmt == "q4_k_m" and abs(bits - Q6_K_BITS) < 1e-6:
        return "Q4_K_M: that is Q6_K alone; Q4_K_M stores most weights in Q4_K and about one in six in Q6_K"
    return f"{variant}: {bits:g} bits per weight, but the format stores {FORMAT_PARTS.get(fmt, '')} = {right:.3g} bits"


def prediction_problems(bits_per_weight: Mapping, predict: Callable, formats: Mapping[str, str], params: int,
                        bandwidth_bytes_s: float) -> list[str]:
    """Exercise 03.1: ``bits_per_weight[variant]`` against each format's bits, and ``predict(variant)`` ->
    ``(size_mb, decode_ceiling_tok_s)`` against ``params × bits ÷ 8`` bytes (MB = 10⁶ bytes) and
    ``bandwidth ÷ bytes``, computed with the learner's own bits (so one mistake is reported once)."""
    problems = []
    if not isinstance(bits_per_weight, Mapping):
        return [f"bits_per_weight should be a dict variant -> bits, got {type(bits_per_weight).__name__}"]
    for variant, fmt in formats.items():
        if variant not in bits_per_weight:
            problems.append(f"{variant}: no entry in bits_per_weight")
            continue
        mistake = _bits_mistake(variant, fmt, bits_per_weight[variant])
        if mistake:
            problems.append(mistake)
    for variant, fmt in formats.items():
        try:
            bits = float(bits_per_weight.get(variant, BITS_PER_WEIGHT[fmt]))
        except (TypeError, ValueError):
            bits = BITS_PER_WEIGHT[fmt]
        weight_bytes = params * bits / 8
        try:
            size_mb, ceiling = predict(variant)
        except Exception as error:  # noqa: BLE001 — the learner's function; say what it raised
            problems.append(f"my_prediction({variant!r}) raised {type(error).__name__}: {error}")
            continue
        size = weight_bytes / 1e6
        if not _close(size_mb, size):
            if _close(size_mb, size * 8):
                problems.append(f"{variant}: size {float(size_mb):.1f} MB is 8× too big — parameters × bits gives "
                                "bits, not bytes: divide by 8")
            elif _close(size_mb, weight_bytes / 2**20):
                problems.append(f"{variant}: size {float(size_mb):.1f} is in MiB (2²⁰ bytes); the table measures MB "
                                f"(10⁶ bytes): {size:.1f} MB")
            elif _close(size_mb, weight_bytes / 1e9) or _close(size_mb, weight_bytes):
                problems.append(f"{variant}: size {size_mb} is not in MB (10⁶ bytes): expected {size:.1f} MB")
            else:
                problems.append(f"{variant}: size {size_mb!r} MB, but {params:,} parameters × {bits:g} bits ÷ 8 = "
                                f"{size:.1f} MB")
        right_ceiling = bandwidth_bytes_s / weight_bytes
        if not _close(ceiling, right_ceiling):
            if _close(ceiling, right_ceiling / 8):
                problems.append(f"{variant}: ceiling {float(ceiling):.0f} tok/s divides the bandwidth by bits, not "
                                f"bytes: {right_ceiling:.0f} tok/s")
            elif _close(ceiling, bandwidth_bytes_s / size) or _close(ceiling, bandwidth_bytes_s / 1e9 / weight_bytes):
                problems.append(f"{variant}: ceiling {float(ceiling):.3g} tok/s mixes units: divide the bandwidth in "
                                f"bytes/s by the bytes read per token (not MB, not GB/s)")
            else:
                problems.append(f"{variant}: decode ceiling {ceiling!r} tok/s, but bandwidth ÷ bytes per token = "
                                f"{right_ceiling:.0f} tok/s")
    return problems


# ---------- Exercise 03.2: pick a variant for a budget ----------
def _table(rows: dict[str, tuple[str, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["engine", "size_mb", "decode_tok_s", "perplexity"])
    frame.index.name = "variant"
    return frame


# Made-up tables, each with one trap: a faster variant of another engine, a smaller one just over the perplexity
# limit, a smaller one just under the speed limit, nothing that qualifies.
PICK_CASES = [
    ("a faster, smaller variant measured by another engine",
     _table({"base": ("server", 200.0, 50.0, 10.0), "A": ("server", 120.0, 60.0, 10.2),
             "B": ("server", 150.0, 62.0, 10.1), "other": ("in-process", 60.0, 90.0, 10.0)}), "base"),
    ("a smaller variant whose perplexity rose 8 %",
     _table({"base": ("server", 200.0, 50.0, 10.0), "A": ("server", 150.0, 60.0, 10.4),
             "B": ("server", 90.0, 70.0, 10.8), "C": ("server", 250.0, 40.0, 9.0)}), "base"),
    ("a smaller variant only 1.1 × as fast",
     _table({"base": ("server", 200.0, 50.0, 10.0), "A": ("server", 150.0, 60.0, 10.3),
             "B": ("server", 100.0, 55.0, 10.2), "C": ("server", 300.0, 45.0, 9.8)}), "base"),
    ("no variant that meets both limits",
     _table({"base": ("server", 200.0, 50.0, 10.0), "A": ("server", 150.0, 52.0, 10.1),
             "B": ("server", 100.0, 70.0, 11.0)}), "base"),
]


def _explain_pick(table: pd.DataFrame, reference: str, pick, right, speedup: float, rise: float) -> str:
    base = table.loc[reference]
    if pick is None:
        row = table.loc[right]
        return (f"you returned None, but {right} qualifies (same engine, "
                f"{row['decode_tok_s'] / base['decode_tok_s']:.2f}× the speed, perplexity "
                f"{(row['perplexity'] / base['perplexity'] - 1) * 100:+.1f} %)")
    if pick not in table.index:
        return f"you returned {pick!r}, which is not a row of the table: return the variant's name (its index)"
    row = table.loc[pick]
    if row["engine"] != base["engine"]:
        return (f"you picked {pick}, measured by {row['engine']!r}, not by the reference's engine "
                f"{base['engine']!r}: speeds of different engines are not comparable")
    ratio = row["decode_tok_s"] / base["decode_tok_s"]
    if ratio < speedup:
        return (f"you picked {pick}, which decodes only {ratio:.2f}× as fast as {reference}: the budget asks at "
                f"least {speedup}× (check the direction of the speed test)")
    worse = row["perplexity"] / base["perplexity"] - 1
    if worse > rise:
        return (f"you picked {pick}, whose perplexity is {worse * 100:+.1f} % over {reference}'s: the budget allows at "
                f"most +{rise * 100:.0f} % (lower perplexity is better: check the direction of that test)")
    if right is None:
        return f"you picked {pick}, but no variant meets both limits here: return None"
    return (f"you picked {pick} ({row['size_mb']:g} MB), but {right} also meets the budget and is smaller "
            f"({table.loc[right, 'size_mb']:g} MB): pick the smallest")


def pick_problems(pick: Callable, table: pd.DataFrame, references=("F16", "bf16"), speedup: float = 1.15,
                  rise: float = 0.05) -> list[str]:
    """Exercise 03.2: ``pick(table, reference)`` against :func:`.measure.pick_variant` on the lab's table and
    on :data:`PICK_CASES`; each difference explained by the rule the pick breaks."""
    from .measure import pick_variant

    cases = [(f"your table against {reference}", table, reference) for reference in references] + PICK_CASES
    problems = []
    for name, frame, reference in cases:
        right = pick_variant(frame, reference, min_speedup=speedup, max_perplexity_rise=rise)
        try:
            yours = pick(frame, reference)
        except Exception as error:  # noqa: BLE001
            problems.append(f"{name}: my_pick raised {type(error).__name__}: {error}")
            continue
        if yours != right:
            problems.append(f"{name}: {_explain_pick(frame, reference, yours, right, speedup, rise)}")
    return problems


# ---------- Exercise 03.4: the compile break-even ----------
def _break_even(eager: Mapping, compiled: Mapping) -> float | None:
    saved = 1 / eager["decode_tok_s"] - 1 / compiled["decode_tok_s"]
    return (compiled["build_s"] - eager["build_s"]) / saved if saved > 0 else None


def _path(build_s: float, tok_s: float) -> dict:
    return {"build_s": build_s, "decode_tok_s": tok_s}


BREAK_EVEN_CASES = [(_path(0.5, 10.0), _path(60.5, 20.0)), (_path(20.0, 40.0), _path(80.0, 50.0)),
                    (_path(1.0, 100.0), _path(41.0, 400.0)), (_path(1.0, 30.0), _path(50.0, 25.0))]
BREAK_EVEN_MISTAKES: dict[str, tuple[Callable, str]] = {
    "speeds": (lambda e, c: (c["build_s"] - e["build_s"]) * (c["decode_tok_s"] - e["decode_tok_s"]),
               "multiplies the extra build seconds by the difference in speed (tok/s): the break-even divides them "
               "by the seconds each token saves, 1/eager − 1/compiled"),
    "speed difference": (lambda e, c: (c["build_s"] - e["build_s"]) / (c["decode_tok_s"] - e["decode_tok_s"]),
                         "divides by the difference in speed (tok/s), which gives s²/token, not tokens: divide by the "
                         "seconds each token saves, 1/eager − 1/compiled"),
    "compiled tokens during the build": (lambda e, c: (c["build_s"] - e["build_s"]) * c["decode_tok_s"],
                                         "counts the tokens the compiled path could decode during its build; the "
                                         "break-even is where the seconds saved per token add up to the build"),
    "whole build": (lambda e, c: c["build_s"] / (1 / e["decode_tok_s"] - 1 / c["decode_tok_s"]),
                    "counts the compiled path's whole build: the eager path has a build (load) time too, so only the "
                    "difference must be paid back"),
    "milliseconds": (lambda e, c: (c["build_s"] - e["build_s"])
                     / ((1 / e["decode_tok_s"] - 1 / c["decode_tok_s"]) * 1e3),
                     "divides seconds by milliseconds saved per token: 1000× too few tokens"),
}


def break_even_problems(break_even: Callable, measured: tuple[Mapping, Mapping] | None = None) -> list[str]:
    """Exercise 03.4: ``break_even(eager, compiled)`` (dicts with ``build_s`` and ``decode_tok_s``) -> tokens
    after which the compiled path's saving pays back its extra build seconds, or None when compiled is not faster;
    checked on :data:`BREAK_EVEN_CASES` and the measured pair."""
    cases = BREAK_EVEN_CASES + ([measured] if measured else [])
    wrong = []
    for eager, compiled in cases:
        right = _break_even(eager, compiled)
        try:
            yours = break_even(dict(eager), dict(compiled))
        except Exception as error:  # noqa: BLE001
            return [f"my_break_even raised {type(error).__name__}: {error} (eager {dict(eager)}, compiled "
                    f"{dict(compiled)})"]
        if right is None:
            if yours is not None:
                wrong.append((eager, compiled, yours, right))
        elif yours is None or not _close(yours, right, 0.002):
            wrong.append((eager, compiled, yours, right))
    if not wrong:
        return []
    positive = [(e, c, y, r) for e, c, y, r in wrong if r is not None]
    if positive:
        eager, compiled, yours, right = positive[0]
        for check, message in BREAK_EVEN_MISTAKES.values():
            if all(y is not None and _close(y, check(e, c), 0.002) for e, c, y, r in positive):
                return [f"your break-even {message} (eager {dict(eager)}, compiled {dict(compiled)}: you "
                        f"{float(yours):,.0f}, right {right:,.0f} tokens)"]
        return [f"eager {dict(eager)}, compiled {dict(compiled)}: you {yours!r}, right {right:,.0f} tokens"]
    eager, compiled, yours, _ = wrong[0]
    return [f"compiled is slower here ({compiled['decode_tok_s']} against {eager['decode_tok_s']} tok/s) and you "
            f"returned {yours!r}: a build that makes decode slower never pays back — return None"]
