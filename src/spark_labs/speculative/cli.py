"""``spark-labs bench spec``: greedy baseline vs speculative decoding on the profile's model.

``--engine transformers`` (default) runs our own verification loop in process: prompt lookup, and an
early-exit draft of the same model with ``--early-exit L``. ``--engine vllm --concurrency 1,4,16`` starts vLLM
with and without n-gram speculation and sweeps the concurrency ("when it stops paying"). ``--engine llamacpp``
starts llama.cpp plain and with its prompt-lookup draft per k: speed-up and output identity (it counts no
acceptance).

The ``spark-labs`` command table (``spark_labs/cli.py``) adds it to ``spark-labs bench``, so the harness never
imports this package back; nothing heavy (torch, transformers) is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..cli_types import STREAM_LEVELS, TOKENS, cpu_threads, output_file, save_results, wholes
from ..engines.registry import ENGINES
from .modes import LOOKUP, LOOP, UNDER_LOAD, engines_measured_by, mode
from .workloads import WORKLOADS


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(WORKLOADS)}")
    return names


_draft_lengths = wholes(1, 64, "a draft is accepted whole with probability alpha^k, so long drafts stop paying "
                              "far sooner (the lab sweeps 1 to 8)", "1,2,4,8")
# Layers of an early-exit draft: checked against the model's own depth in _refuse.
_layers = wholes(1, 1000, "no model in the course is that deep", "24 or 12,24")


# The engines `spark-labs bench spec` can measure, our in-process loop first (the default).
SPEC_ENGINES = [*engines_measured_by(LOOP), *engines_measured_by(UNDER_LOAD), *engines_measured_by(LOOKUP)]
# What --engine NAME does, for its help.
_WHAT_IT_RUNS = {LOOP: "our verification loop in process (default)",
                 UNDER_LOAD: "{} with and without n-gram speculation under load",
                 LOOKUP: "{} plain and with prompt lookup per k (speed-up and identical output only: it counts no "
                         "acceptance)"}
_LOOP, _UNDER_LOAD, _LOOKUP = (" or ".join(engines_measured_by(way)) for way in (LOOP, UNDER_LOAD, LOOKUP))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=SPEC_ENGINES, default=SPEC_ENGINES[0],
                   help="; ".join(f"{name}: " + _WHAT_IT_RUNS[mode(ENGINES[name])].format(ENGINES[name].display_name)
                                  for name in SPEC_ENGINES))
    p.add_argument("--workloads", type=_names, default=None,
                   help=f"comma list of {', '.join(WORKLOADS)} (default: all; with --engine {_UNDER_LOAD}: code-edit)")
    p.add_argument("--k", type=_draft_lengths, default=None,
                   help=f"draft lengths to sweep (default 1,2,4,8; with --engine {_UNDER_LOAD} one length, default "
                        f"4; with --engine {_LOOKUP} 2,4,8)")
    p.add_argument("--max-tokens", type=TOKENS, default=None,
                   help=f"greedy output tokens per run (default 96; with --engine {_UNDER_LOAD} or {_LOOKUP} 48)")
    p.add_argument("--threads", type=cpu_threads, default=None,
                   help=f"{_LOOP}: torch CPU threads (default: torch's own choice; 1 is steadier on a busy "
                        "machine)")
    p.add_argument("--early-exit", type=_layers, default=None, metavar="L",
                   help=f"{_LOOP}: also draft with the model's first L decoder layers (early exit, weights "
                        "shared), for each L given")
    p.add_argument("--concurrency", type=STREAM_LEVELS, default=None,
                   help=f"{_UNDER_LOAD}: closed-loop concurrency levels (default 1,4,16)")
    p.add_argument("--out", type=output_file, help="also write the table as CSV to this path (checked first)")


def _refuse(args) -> str | None:
    """Why these flags do not fit together, or None."""
    if args.max_tokens is not None and args.max_tokens < 2:
        return "--max-tokens must be at least 2 (one prefill token, then decode)"
    way = mode(ENGINES[args.engine])
    if way != LOOP:
        given = [flag for flag, value in (("--threads", args.threads), ("--early-exit", args.early_exit))
                 if value is not None]
        if given:
            return f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --engine {_LOOP} (our loop), " \
                   f"not to {ENGINES[args.engine].display_name}"
    if way == UNDER_LOAD:
        if args.k and len(args.k) > 1:
            return f"--engine {args.engine} starts one speculative server: give one --k (e.g. --k 4)"
    elif args.concurrency is not None:
        why = ("our transformers loop decodes one sequence at a time" if way == LOOP
               else "llama.cpp's server here answers one request at a time")
        return f"--concurrency applies to --engine {_UNDER_LOAD} ({why})"
    if args.early_exit:
        from ..models.catalog import catalog
        from ..profiles import EMBEDDED_MODEL_ID

        depth = catalog()[EMBEDDED_MODEL_ID].config()["num_hidden_layers"]  # the loop runs the embedded model
        if max(args.early_exit) > depth:
            return f"--early-exit {max(args.early_exit)}: the model has {depth} decoder layers; give 1 to {depth}"
    return None


def run(args) -> int:
    problem = _refuse(args)
    if problem:
        print(f"spark-labs bench spec: {problem}", file=sys.stderr)
        return 2
    return {LOOP: _cmd_loop, UNDER_LOAD: _cmd_under_load, LOOKUP: _cmd_lookup}[mode(ENGINES[args.engine])](args)


def _save_csv(table, out) -> bool:
    """Write ``table`` as CSV to ``out`` (if given); False when it went to a fallback place instead."""
    def write(path) -> None:
        table.to_csv(path, index=False)
        print(f"wrote {path}")

    return save_results(out, write, "spark-labs bench spec") if out else True


def _cmd_loop(args) -> int:
    from .comparison import DEFAULT_KS, Draft, format_table, measure, to_frame
    from .early_exit import EarlyExitDraft
    from .runner import SpecModel

    ks, max_tokens = tuple(args.k or DEFAULT_KS), args.max_tokens or 96
    started = time.perf_counter()
    model = SpecModel(threads=args.threads)
    print(f"model: {model.path} on {model.device}, torch threads {model.threads}; "
          f"{max_tokens} greedy tokens per run")
    try:
        drafts = [Draft("prompt lookup", ks)] + [Draft(d.name, ks, d) for d in
                                                 (EarlyExitDraft(model, layers) for layers in args.early_exit or ())]
    except ValueError as exc:
        print(f"spark-labs bench spec: --early-exit: {exc}", file=sys.stderr)
        return 2
    rows = measure(model, args.workloads or list(WORKLOADS), ks, max_tokens, drafts)
    print(format_table(rows))
    saved = _save_csv(to_frame(rows), args.out)
    print("k - = greedy baseline (mean of a run before and after the sweep); alpha = accepted / tested draft "
          "tokens; accept = accepted / drafted; formula = E(alpha,k)/(k*c+1); c = drafting one token in baseline "
          "decode steps; verify = one verification pass in baseline decode steps (the formula assumes 1)")
    print(f"took {time.perf_counter() - started:.0f} s")
    differing = [f"{r.workload} {r.draft} k={r.k}" for r in rows if not r.identical]
    if differing:
        print(f"spark-labs bench spec: speculative output differs from the greedy baseline for {', '.join(differing)}",
              file=sys.stderr)
        return 1
    return 0 if saved else 1


def _cmd_under_load(args) -> int:
    import pandas as pd

    from ..errors import EngineError
    from ..profiles import plan
    from .under_load import SWEEP_CONCURRENCY, crossover, run_sweep

    k, max_tokens = (args.k or [4])[0], args.max_tokens or 48
    workloads = args.workloads or ["code-edit"]
    started = time.perf_counter()
    try:
        table, _, _ = run_sweep(plan("04"), args.engine, k, workloads, args.concurrency or SWEEP_CONCURRENCY,
                                max_tokens, progress=False)
    except EngineError as exc:
        print(f"spark-labs bench spec: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    shown = table.drop(columns=["regime"])
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(shown.round(2).to_string(index=False))
    for row in table.itertuples():
        print(f"{row.workload} c={row.concurrency}: {row.regime}")
    for workload in workloads:
        at = crossover(table, workload)
        print(f"{workload}: " + (f"speculation first loses at concurrency {at}" if at is not None
                                 else "speculation never lost at these levels"))
    saved = _save_csv(table, args.out)
    print(f"speed-up = speculative / plain aggregate output tok/s (per stream: 1/TPOT); k = {k}, greedy, "
          f"answers run to end of sequence (at most {max_tokens} tokens); took {time.perf_counter() - started:.0f} s")
    return 0 if saved else 1


def _cmd_lookup(args) -> int:
    import pandas as pd

    from ..errors import EngineError
    from ..profiles import plan
    from .lookup_server import LOOKUP_KS, run_lookup_sweep

    ks, max_tokens = tuple(args.k or LOOKUP_KS), args.max_tokens or 48
    started = time.perf_counter()
    try:
        table = run_lookup_sweep(plan("04"), ks, args.workloads or list(WORKLOADS), max_tokens,
                                 engine=args.engine, progress=False)
    except EngineError as exc:
        print(f"spark-labs bench spec: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.round(2).to_string(index=False))
    saved = _save_csv(table, args.out)
    print(f"speed-up = prompt-lookup server's decode tok/s (1/TPOT, first token excluded) / the plain server's (mean "
          f"of a start before and after the sweep); E2E speed-up = plain E2E / speculative E2E; same output = share "
          f"of answers identical to the plain server's; greedy, one request at a time, at most {max_tokens} tokens; "
          f"llama.cpp counts no acceptance, so no alpha; took {time.perf_counter() - started:.0f} s")
    differing = [f"{r.workload} k={r.k}" for r in table[table["same output"] < 1].itertuples()]
    if differing:
        print(f"spark-labs bench spec: llama.cpp's answer with prompt lookup differs from the plain server's for "
              f"{', '.join(differing)}", file=sys.stderr)
        return 1
    return 0 if saved else 1
