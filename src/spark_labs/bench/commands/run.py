"""``spark-labs bench run``: one workload under one load (closed loop, sequential, or open-loop arrivals)."""

from __future__ import annotations

import argparse

from ...cli_types import real, whole
from . import shared
from .shared import open_target, parse_workload, progress_bar, save_report, server_args, single_level, workload_args

# Open-loop arrivals faster than this are the client's limit, not the server's.
RATE = real(0, 10_000, "faster than one client process sends (see `spark-labs bench overhead`)", low_open=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    server_args(p)
    workload_args(p)
    single_level(p, "requests in flight: the closed loop's width, or the open loop's cap")
    p.add_argument("--mode", default="concurrent", choices=["sequential", "concurrent", "poisson", "gamma"],
                   help="sequential, closed loop (concurrent, the default) or open-loop arrivals (poisson, gamma)")
    p.add_argument("--rate", type=RATE, help="poisson / gamma: requests per second")
    p.add_argument("--gamma-shape", type=real(0, 1000, "a shape this large is a fixed interval already", low_open=True),
                   default=None, help="gamma: below 1 burstier than Poisson, above 1 smoother (default 1)")
    p.add_argument("--warmup", type=whole(0, 1000, "a warm-up of a thousand requests is a run of its own"), default=1,
                   help="requests sent and discarded before measuring (default 1)")
    p.add_argument("--ramp-up", type=shared.RAMP_UP, default=None, metavar="SECONDS",
                   help="closed loop: spread the streams' first requests over this many seconds (default: one "
                        "request's E2E, measured by the warm-up); 0 starts every stream together (lockstep)")


def run(args) -> int:
    from ..experiments import measure, new_report
    from ..load import Load
    from ..tokens import load_tokenizer

    report = new_report(args.plan, "bench run")
    tokenizer = load_tokenizer(args.plan.model)
    try:
        load = Load(args.mode, args.concurrency[0], args.rate, args.gamma_shape or 1.0, args.warmup,
                    ramp_up=args.ramp_up)
    except ValueError as exc:
        raise SystemExit(f"spark-labs bench run: {exc}") from None
    with open_target(args, report) as target, progress_bar() as progress:
        measure(report, target, parse_workload(args), load, tokenizer, progress)
    return 0 if save_report(report, args.out) else 1
