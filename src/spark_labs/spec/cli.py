"""``spark-labs bench spec``: greedy baseline vs prompt-lookup speculation on the profile's model, in process.

Kept out of ``spark_labs.bench.cli`` so that file only wires the sub-command in; nothing heavy (torch,
transformers) is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from .workloads import WORKLOADS


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(WORKLOADS)}")
    return names


def _draft_lengths(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        ks = []
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(
            f"--k takes draft lengths >= 1 separated by commas, e.g. 1,2,4,8 (got {text!r})")
    return ks


def add_parser(sub) -> None:
    p = sub.add_parser("spec", help="greedy baseline vs prompt-lookup speculative decoding: alpha, tokens/step, "
                                    "speed-up, formula")
    p.add_argument("--workloads", type=_names, default=list(WORKLOADS),
                   help=f"comma list of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--k", type=_draft_lengths, default=[1, 2, 4, 8], help="draft lengths to sweep (default 1,2,4,8)")
    p.add_argument("--max-tokens", type=int, default=96, help="greedy output tokens per run (default 96)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's own choice; 1 is steadier on a busy machine)")
    p.add_argument("--out", help="also write the table as CSV to this path")
    p.set_defaults(fn=cmd_spec)


def cmd_spec(args) -> int:
    from .bench import format_table, measure, to_frame
    from .runner import SpecModel

    if args.max_tokens < 2:
        print("spark-labs bench spec: --max-tokens must be at least 2 (one prefill token, then decode)",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    model = SpecModel(threads=args.threads)
    print(f"model: {model.path} on {model.device}, torch threads {model.threads}; "
          f"{args.max_tokens} greedy tokens per run")
    rows = measure(model, args.workloads, args.k, args.max_tokens)
    print(format_table(rows))
    if args.out:
        to_frame(rows).to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    print("k - = greedy baseline (mean of a run before and after the sweep); alpha = accepted / tested draft "
          "tokens; accept = accepted / drafted; formula = E(alpha,k)/(k*c+1); verify = one verification pass in "
          "baseline decode steps (the formula assumes 1)")
    print(f"took {time.perf_counter() - started:.0f} s")
    differing = [f"{r.workload} k={r.k}" for r in rows if not r.identical]
    if differing:
        print(f"spark-labs bench spec: speculative output differs from the greedy baseline for {', '.join(differing)}",
              file=sys.stderr)
        return 1
    return 0
