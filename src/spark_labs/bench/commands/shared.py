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

from ...cli_types import REQUESTS, STREAM_LEVELS, TOKENS, http_url, output_dir, real, save_results
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


# --ramp-up of the closed loops: seconds over which the streams' first requests are spread.
RAMP_UP = real(0, 3600, "an hour of ramp-up is a different experiment")


def engine_names(text: str) -> list[str]:
    """An argparse type: a comma list of engines the registry knows (a typo is refused, not skipped later)."""
    from ...engines import resolve_engine
    from ...errors import EngineError

    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give engine names separated by commas, e.g. llamacpp,vllm")
    for name in names:
        try:
            resolve_engine(name)
        except EngineError as exc:
            raise argparse.ArgumentTypeError(str(exc).splitlines()[0]) from None
    return names


def profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=["tiny", "spark", "auto"],
                   help="which profile's model, sizes and engines (default: SPARK_LABS_PROFILE, else detected)")


def out_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=output_dir,
                   help="directory for report.html / report.md / report.json (created and test-written first)")


def workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", default="chat",
                   help="chat, prefill-heavy, decode-heavy, code, or synthetic:IN:OUT (default chat)")
    p.add_argument("--num-requests", type=REQUESTS, help="requests to send (default: the workload's own count)")
    p.add_argument("--max-tokens", type=TOKENS, help="output tokens per request (default: the workload's own)")


def single_level(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--concurrency", type=STREAM_LEVELS, default=None,
                   help=f"{what} (one number; default: the profile's highest sweep level)")


def target_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what to measure (an engine to start, or a running server)")
    which = group.add_mutually_exclusive_group()
    which.add_argument("--engine", help="start this engine on the profile's model, measure, stop it "
                                        "(default: the profile's first engine)")
    which.add_argument("--url", type=http_url, help="a running server's root URL, e.g. http://127.0.0.1:8000 "
                                                    "(checked to answer before the run)")
    group.add_argument("--model", help="with --url: the model name the server serves")
    group.add_argument("--protocol", default=None, choices=PROTOCOLS[:-1],
                       help="with --url: the streaming API to speak (default openai-chat)")
    group.add_argument("--metrics-url", type=http_url,
                       help="with --url: its Prometheus endpoint, for the server-side cross-check")
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
    """Flags that do not fit together, and an engine the registry does not know."""
    from ...engines import resolve_engine
    from ...errors import EngineError

    # getattr with a default: a sub-command may take --url without every flag of target_args.
    if args.url:
        if getattr(args, "engine_arg", None):
            parser.error("--engine-arg applies to an engine the harness starts (--engine), not to --url")
        if not getattr(args, "model", None):
            parser.error(f"--url needs --model (the name the server serves); `curl {args.url}/v1/models` lists it")
    else:
        given = [f"--{flag.replace('_', '-')}" for flag in _URL_ONLY if getattr(args, flag, None) is not None]
        if given:
            parser.error(f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a running server: "
                         "pass --url too, or leave them out when the harness starts the engine")
        if getattr(args, "engine", None):
            try:
                resolve_engine(args.engine)
            except EngineError as exc:
                parser.error(f"--engine {args.engine}: {str(exc).splitlines()[0]}")


def check_reachable(parser: argparse.ArgumentParser, args) -> None:
    """Something answers at --url (and --metrics-url): checked last, after every other check, before the run."""
    from ...cli_types import unreachable

    for flag in ("url", "metrics_url"):
        if (url := getattr(args, flag, None)) and (problem := unreachable(url)):
            parser.error(f"--{flag.replace('_', '-')} {url}: {problem}; start the server first "
                         "(`spark-labs engine start NAME`) or fix the address")


# --- what the flags turn into -----------------------------------------------------------------------------


@contextlib.contextmanager
def open_target(args, report):
    """Yield a Target for the chosen server, starting (and afterwards stopping) an engine if asked."""
    from ...engines import engine_args, launch
    from ..clients import Target
    from ..experiments import add_engine
    from ..report import EngineInfo

    if args.url:
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
    """The workload the flags name; SystemExit with the reason when they name none (the bench table checks this
    before a command starts anything, as a usage error)."""
    from ..prompts import Workload, standard_workloads

    if args.workload.startswith("synthetic"):
        if args.max_tokens:
            raise SystemExit("--max-tokens does not apply to synthetic:IN:OUT workloads: OUT is the output length")
        _, prompt_len, output_len = (args.workload.split(":") + ["", ""])[:3]
        try:
            prompt_len, output_len = TOKENS(prompt_len), TOKENS(output_len)
        except argparse.ArgumentTypeError as exc:
            raise SystemExit(f"--workload {args.workload}: {exc}; synthetic workloads are written "
                             "synthetic:PROMPT_TOKENS:OUTPUT_TOKENS, e.g. synthetic:512:128") from None
        return Workload(args.workload, "synthetic", args.num_requests or args.plan.sizes.num_requests,
                        output_len, prompt_len)
    catalogue = standard_workloads(args.plan.sizes)
    if args.workload not in catalogue:
        raise SystemExit(f"unknown workload {args.workload!r}; choose {', '.join(catalogue)} or synthetic:IN:OUT")
    w = catalogue[args.workload]
    return Workload(w.name, w.kind, args.num_requests or w.num_requests, args.max_tokens or w.max_tokens)


def save_report(report, out: Path | None) -> bool:
    """Print the report's tables; write it under ``out`` if given. False when ``out`` failed at the end and the
    report went to a fallback folder instead (the line on stderr says where)."""
    console.print(rich_table(report.summary_table(), "Results (measured in this run)"))
    for line in report.diagnosis():
        console.print(f"• {line}")
    for run in report.runs:
        for w in run.summary.warnings + run.health.notes:
            console.print(f"[yellow]⚠ {run.target} · {run.workload} · {run.load.label}: {w}")
        if rows := [r for r in run.server_comparison() if "server_mean" in r]:
            frame = pd.DataFrame(rows)[["metric", "client_mean", "server_mean", "mean_diff_pct", "server_p50_bucket"]]
            console.print(rich_table(frame, f"{run.target}: our means vs the server's histograms (s)"))
    if not out:
        return True

    def write(directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        report.to_json(directory / "report.json")
        report.to_html(directory / "report.html")
        (directory / "report.md").write_text(report.to_markdown())
        console.print(f"wrote {directory}/report.html, report.md and report.json (per-request records included)")

    return save_results(Path(out), write, "spark-labs bench")
