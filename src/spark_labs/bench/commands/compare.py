"""``spark-labs bench compare``: the profile's engines on the same workloads, the full report (``make demo``)."""

from __future__ import annotations

import argparse

from ...cli_types import STREAM_LEVELS
from .shared import console, engine_names, out_arg, profile_arg, progress_bar, rich_table, save_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    for add in (profile_arg, out_arg):
        add(p)
    p.add_argument("--engines", type=engine_names,
                   help="comma list, e.g. llamacpp,vllm (default: the profile's engines)")
    p.add_argument("--concurrency", type=STREAM_LEVELS, default=None,
                   help="sweep levels, e.g. 1,2,4 (default: the profile's, fewer for engines slow on a CPU)")


def run(args) -> int:
    from ..experiments import compare_engines

    with progress_bar() as progress:
        report = compare_engines(args.plan, args.engines, concurrencies=args.concurrency or None, progress=progress,
                                 log=console.print)
    if skipped := report.meta.get("skipped"):
        for name, why in skipped.items():
            console.print(f"⏭ {name}: {why}")
    saved = save_report(report, args.out)
    if len(report.use_cases()):
        console.print(rich_table(report.use_cases().drop(columns=["best"]),
                                 "Which engine for which use case (measured)"))
    return 0 if saved else 1
