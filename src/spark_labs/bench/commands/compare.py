"""``spark-labs bench compare``: the profile's engines on the same workloads, the full report (``make demo``)."""

from __future__ import annotations

import argparse

from .shared import console, ints, out_arg, profile_arg, progress_bar, rich_table, save_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    for add in (profile_arg, out_arg):
        add(p)
    p.add_argument("--engines", help="comma list, e.g. llamacpp,vllm (default: the profile's engines)")
    p.add_argument("--concurrency", type=ints, default=None,
                   help="sweep levels, e.g. 1,2,4 (default: the profile's, fewer for engines slow on a CPU)")


def run(args) -> int:
    from ..experiments import compare_engines

    engines = args.engines.split(",") if args.engines else None
    with progress_bar() as progress:
        report = compare_engines(args.plan, engines, concurrencies=args.concurrency or None, progress=progress,
                                 log=console.print)
    if skipped := report.meta.get("skipped"):
        for name, why in skipped.items():
            console.print(f"⏭ {name}: {why}")
    save_report(report, args.out)
    if len(report.use_cases()):
        console.print(rich_table(report.use_cases().drop(columns=["best"]),
                                 "Which engine for which use case (measured)"))
    return 0
