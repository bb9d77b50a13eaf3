"""What the ``spark-labs bench`` commands share: the flags that pick a server, a workload, a profile and an output
folder; starting (or reaching) the server; printing tables and saving the report."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..clients import PROTOCOLS

# Wide tables stay readable when output goes to a file or CI log instead of a terminal.
console = Console(width=None if sys.stdout.isatty() else 220)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def rich_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="left" if frame[column].dtype == object else "right")
    for row in frame.itertuples(index=False):
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
    return table


# --- flags several commands take --------------------------------------------------------------------------


def ints(text: str) -> list[int]:
    """An argparse type: one or more whole numbers >= 1, comma-separated."""
    try:
        values = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. 1,2,4") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more numbers >= 1, e.g. 4 or 1,2,4,8")
    return values


def profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=["tiny", "spark", "auto"],
                   help="which profile's model, sizes and engines (default: SPARK_LABS_PROFILE, else detected)")


def out_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="directory for report.html / report.md / report.json")


def workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", default="chat",
                   help="chat, prefill-heavy, decode-heavy, code, or synthetic:IN:OUT (default chat)")
    p.add_argument("--num-requests", type=int, help="requests to send (default: the workload's own count)")
    p.add_argument("--max-tokens", type=int, help="output tokens per request (default: the workload's own)")


def single_level(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--concurrency", type=ints, default=None,
                   help=f"{what} (one number; default: the profile's highest sweep level)")


def target_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to measure (an engine to start, or a running server)")
    which = group.add_mutually_exclusive_group()
    which.add_argument("--engine", help="start this engine on the profile's model, measure, stop it "
                                        "(default: the profile's first engine)")
    which.add_argument("--url", help="a running server's root URL, e.g. http://127.0.0.1:8000")
    group.add_argument("--model", help="with --url: the model name the server serves")
    group.add_argument("--protocol", default=None, choices=PROTOCOLS[:-1],
                       help="with --url: the streaming API to speak (default openai-chat)")
    group.add_argument("--metrics-url", help="with --url: its Prometheus endpoint, for the server-side cross-check")
    group.add_argument("--api-key", help="with --url: sent as 'Authorization: Bearer KEY'")
    group.add_argument("--name", help="with --url: the server's label in the report (default 'server')")
    group.add_argument("--engine-arg", action="append", default=[],
                       help="with --engine: one extra flag for the engine's command line (repeatable)")


def server_args(p: argparse.ArgumentParser) -> None:
    """--profile, --out and what to measure: the flags of every command that measures one server into a report."""
    for add in (profile_arg, out_arg, target_args):
        add(p)


# Flags that describe a running server: they mean nothing when the harness starts the engine itself.
_URL_ONLY = ("model", "protocol", "metrics_url", "api_key", "name")


def check_target_flags(parser: argparse.ArgumentParser, args) -> None:
    # getattr with a default: a sub-command may take --url without every flag of target_args.
    if args.url:
        if getattr(args, "engine_arg", None):
            parser.error("--engine-arg applies to an engine the harness starts (--engine), not to --url")
    else:
        given = [f"--{flag.replace('_', '-')}" for flag in _URL_ONLY if getattr(args, flag, None) is not None]
        if given:
            parser.error(f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a running server: "
                         "pass --url too, or leave them out when the harness starts the engine")


# --- what the flags turn into -----------------------------------------------------------------------------


@contextlib.contextmanager
def open_target(args, report):
    """Yield a Target for the chosen server, starting (and afterwards stopping) an engine if asked."""
    from ...engines import engine_args, launch
    from ..clients import Target
    from ..experiments import add_engine
    from ..report import EngineInfo

    if args.url:
        if not args.model:
            raise SystemExit("--url needs --model (the name the server serves); try `curl URL/v1/models`")
        name = args.name or "server"
        # Assume the profile's weights for the roofline; the report says which dtype it assumed.
        report.engines[name] = EngineInfo(name, name, args.plan.model.dtype, url=args.url)
        yield Target(name, args.url.rstrip("/"), args.model, args.protocol or "openai-chat", args.api_key,
                     args.metrics_url)
        return
    name = args.engine or args.plan.engines[0]
    plan = args.plan
    with console.status(f"starting {name} …"):
        engine = launch(name, plan.model, port="auto", lab=plan.lab, progress=False, timeout=plan.sizes.timeout_s,
                        extra_args=[*engine_args(name, plan.sizes.max_model_len), *args.engine_arg])
    with engine:
        console.print(f"{engine.spec.display_name} ready in {engine.ready_after_s:.1f} s at {engine.url}")
        yield add_engine(report, engine, plan.model)


def parse_workload(args):
    from ..prompts import Workload, standard_workloads

    if args.workload.startswith("synthetic"):
        if args.max_tokens:
            raise SystemExit("--max-tokens does not apply to synthetic:IN:OUT workloads: OUT is the output length")
        _, prompt_len, output_len = (args.workload.split(":") + ["", ""])[:3]
        if not prompt_len or not output_len:
            raise SystemExit("synthetic workloads are written synthetic:PROMPT_TOKENS:OUTPUT_TOKENS, "
                             "e.g. synthetic:512:128")
        return Workload(args.workload, "synthetic", args.num_requests or args.plan.sizes.num_requests,
                        int(output_len), int(prompt_len))
    catalogue = standard_workloads(args.plan.sizes)
    if args.workload not in catalogue:
        raise SystemExit(f"unknown workload {args.workload!r}; choose {', '.join(catalogue)} or synthetic:IN:OUT")
    w = catalogue[args.workload]
    return Workload(w.name, w.kind, args.num_requests or w.num_requests, args.max_tokens or w.max_tokens)


def save_report(report, out: str | None) -> None:
    console.print(rich_table(report.summary_table(), "Results (measured in this run)"))
    for line in report.diagnosis():
        console.print(f"• {line}")
    for run in report.runs:
        for w in run.summary.warnings + run.health.notes:
            console.print(f"[yellow]⚠ {run.target} · {run.workload} · {run.load.label}: {w}")
        if rows := [r for r in run.server_comparison() if "server_mean" in r]:
            frame = pd.DataFrame(rows)[["metric", "client_mean", "server_mean", "mean_diff_pct", "server_p50_bucket"]]
            console.print(rich_table(frame, f"{run.target}: our means vs the server's histograms (s)"))
    if out:
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        report.to_json(directory / "report.json")
        report.to_html(directory / "report.html")
        (directory / "report.md").write_text(report.to_markdown())
        console.print(f"wrote {directory}/report.html, report.md and report.json (per-request records included)")
