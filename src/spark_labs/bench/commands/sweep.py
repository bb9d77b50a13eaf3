"""``spark-labs bench sweep``: one workload at rising concurrency, with the knee and a Little's-law check."""

from __future__ import annotations

import argparse

from ...cli_types import STREAM_LEVELS
from .shared import RAMP_UP, console, open_target, parse_workload, progress_bar, save_report, server_args, workload_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    server_args(p)
    workload_args(p)
    p.add_argument("--concurrency", type=STREAM_LEVELS, default=None,
                   help="the levels, e.g. 1,2,4,8 (default: the profile's sweep levels)")
    p.add_argument("--ramp-up", type=RAMP_UP, default=None, metavar="SECONDS",
                   help="spread each level's first requests over this many seconds (default: one request's "
                        "E2E); 0 starts every stream together (lockstep)")


def run(args) -> int:
    from ..experiments import new_report, sweep
    from ..tokens import load_tokenizer

    report = new_report(args.plan, "concurrency sweep")
    with open_target(args, report) as target, progress_bar() as progress:
        sweep(report, target, parse_workload(args), args.concurrency, load_tokenizer(args.plan.model), progress,
              ramp_up=args.ramp_up)
    saved = save_report(report, args.out)
    for engine, knee in report.knees(args.workload).items():
        console.print(f"[bold]knee[/] {engine}: {knee}")
    for run_ in report.runs:
        law = run_.littles_law()
        console.print(f"Little's law · {run_.load.label}: sampled in-flight {law['sampled_in_flight']:.2f} vs "
                      f"throughput × latency {law['throughput_x_latency']:.2f} (ratio {law['ratio']:.2f})")
    return 0 if saved else 1
