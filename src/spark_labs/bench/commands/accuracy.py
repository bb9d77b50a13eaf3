"""``spark-labs bench accuracy``: ours vs the server's own metrics vs ``vllm bench serve``, on the same server
(the measuring code is :mod:`spark_labs.bench.selfcheck.accuracy`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...cli_types import REQUESTS, TOKENS, save_results
from ...engines import resolve_engine
from .shared import console, open_target, rich_table, server_args, single_level


def add_arguments(p: argparse.ArgumentParser) -> None:
    server_args(p)
    single_level(p, "requests in flight for both tools")
    p.add_argument("--num-requests", type=REQUESTS, help="requests per tool (default 32)")
    p.add_argument("--input-len", type=TOKENS, default=64, help="prompt tokens per request (default 64)")
    p.add_argument("--output-len", type=TOKENS, default=32, help="forced output tokens per request (default 32)")


def _engine_with_server_metrics(plan) -> str:
    """The profile's first engine that keeps Prometheus histograms to hold our numbers against."""
    for name in plan.engines:
        if resolve_engine(name).histograms:
            return name
    raise SystemExit(f"none of the {plan.profile.name} profile's engines ({', '.join(plan.engines)}) keeps "
                     "server-side histograms: pass --engine NAME or --url URL --metrics-url URL")


def run(args) -> int:
    from ..experiments import new_report
    from ..selfcheck.accuracy import compare
    from ..tokens import load_tokenizer

    if not args.url:
        args.engine = args.engine or _engine_with_server_metrics(args.plan)
        # Per-request timings (where the engine has them) give the server's exact p50s, not just its
        # bucketed histograms.
        args.engine_arg = [*args.engine_arg, *resolve_engine(args.engine).per_request_metrics_args]
    report = new_report(args.plan, "accuracy")
    path = args.plan.model.hf_path() if args.plan.model.embedded else args.plan.model.hf_id
    with open_target(args, report) as target:
        if target.metrics_url is None:
            raise SystemExit("accuracy needs the server's Prometheus endpoint: pass --metrics-url")
        with console.status("our harness, then vllm bench serve, on the same server …"):
            frame = compare(target, load_tokenizer(args.plan.model), path, args.input_len, args.output_len,
                            args.num_requests or 32, args.concurrency[0], progress=False)
    console.print(rich_table(frame.round(3), "Accuracy (ms): ours vs the server's view vs vllm bench serve"))
    console.print(f"output throughput: ours {frame.attrs['throughput']['ours_output_tok_s']:.1f} tok/s, "
                  f"vllm bench {frame.attrs['throughput']['vllm_bench_output_tok_s']:.1f} tok/s")
    if args.out:
        def write(directory: Path) -> None:
            directory.mkdir(parents=True, exist_ok=True)
            frame.to_csv(directory / "accuracy.csv", index=False)

        return 0 if save_results(args.out, write, "spark-labs bench accuracy") else 1
    return 0
