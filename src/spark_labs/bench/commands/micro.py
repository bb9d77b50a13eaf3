"""``spark-labs bench micro``: llama-bench-style pp / tg tests through the HTTP API."""

from __future__ import annotations

import argparse

from ...cli_types import REPEATS, TOKENS
from .shared import console, open_target, profile_arg, rich_table, target_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    for add in (profile_arg, target_args):
        add(p)
    p.add_argument("--pp", type=TOKENS, default=512, help="prompt tokens of the prefill test (default 512)")
    p.add_argument("--tg", type=TOKENS, default=128, help="forced output tokens of the decode test (default 128)")
    p.add_argument("--repeats", type=REPEATS, default=3, help="requests per test (default 3)")


def run(args) -> int:
    from ..experiments import micro, new_report
    from ..tokens import load_tokenizer

    report = new_report(args.plan, "micro")
    with open_target(args, report) as target, console.status("pp / tg …"):
        frame = micro(target, load_tokenizer(args.plan.model), args.pp, args.tg, args.repeats)
    console.print(rich_table(frame, "llama-bench-style microbenchmarks through the HTTP API"))
    return 0
