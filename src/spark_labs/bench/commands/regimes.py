"""``spark-labs bench regimes``: one closed loop twice, every stream started together (lockstep), then with a
ramp-up, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...cli_types import REQUESTS, TOKENS, save_results
from .shared import console, open_target, progress_bar, rich_table, save_report, server_args, single_level


def add_arguments(p: argparse.ArgumentParser) -> None:
    server_args(p)
    single_level(p, "streams of the closed loop")
    p.add_argument("--max-tokens", type=TOKENS, help="forced output tokens per request (default 32)")
    p.add_argument("--requests-per-stream", type=REQUESTS, default=4, help="requests each stream sends (default 4)")


def run(args) -> int:
    from ..experiments import new_report
    from ..start_regimes import compare_start_regimes
    from ..tokens import load_tokenizer

    report = new_report(args.plan, "lockstep start vs ramp-up")
    with open_target(args, report) as target, progress_bar() as progress:
        try:
            table, fig = compare_start_regimes(target, args.concurrency[0], args.requests_per_stream,
                                               args.max_tokens or 32, load_tokenizer(args.plan.model), report,
                                               progress)
        except ValueError as exc:
            raise SystemExit(f"spark-labs bench regimes: {exc}") from None
    saved = save_report(report, args.out)
    console.print(rich_table(table, "The same closed loop, two start regimes (measured in this run)"))
    if args.out:
        def write(directory: Path) -> None:
            directory.mkdir(parents=True, exist_ok=True)
            fig.write_html(directory / "regimes.html", include_plotlyjs=True)
            console.print(f"wrote {directory}/regimes.html (both request timelines)")

        saved = save_results(args.out, write, "spark-labs bench regimes") and saved
    return 0 if saved else 1
