"""``spark-labs bench``: measure engines from the command line.

  spark-labs bench run --engine vllm --workload chat --concurrency 4 --out results/
  spark-labs bench run --url http://127.0.0.1:8000 --model my-model --mode poisson --rate 2
  spark-labs bench sweep --engine llamacpp --concurrency 1,2,4,8
  spark-labs bench micro --engine llamacpp            # pp512 / tg128, llama-bench style
  spark-labs bench regimes --engine llamacpp --concurrency 4   # lockstep start vs ramp-up, side by side
  spark-labs bench compare --engines llamacpp,vllm    # the full report (what `make demo` runs)
  spark-labs bench accuracy                          # ours vs vLLM's histograms vs `vllm bench serve`
  spark-labs bench overhead                          # what the harness itself adds
  spark-labs bench gateway --upstream vllm           # what the spark-labs gateway adds
  spark-labs bench metrics                           # metric definitions and other tools' names
  spark-labs bench spec --workloads code-edit        # greedy vs prompt-lookup speculative decoding
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..engines.launcher import resolve_engine
from ..speculative import cli as spec_cli
from .clients import PROTOCOLS
from .transports import CLIENTS

# Wide tables stay readable when output goes to a file or CI log instead of a terminal.
console = Console(width=None if sys.stdout.isatty() else 220)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def _table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="left" if frame[column].dtype == object else "right")
    for row in frame.itertuples(index=False):
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
    return table


def _target_args(parser: argparse.ArgumentParser) -> None:
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


# Flags that describe a running server: they mean nothing when the harness starts the engine itself.
_URL_ONLY = ("model", "protocol", "metrics_url", "api_key", "name")


def _check_target_flags(parser: argparse.ArgumentParser, args) -> None:
    # getattr with a default: a sub-command may take --url without every flag of _target_args.
    if args.url:
        if getattr(args, "engine_arg", None):
            parser.error("--engine-arg applies to an engine the harness starts (--engine), not to --url")
    else:
        given = [f"--{flag.replace('_', '-')}" for flag in _URL_ONLY if getattr(args, flag, None) is not None]
        if given:
            parser.error(f"{', '.join(given)} describe{'s' if len(given) == 1 else ''} a running server: "
                         "pass --url too, or leave them out when the harness starts the engine")


@contextlib.contextmanager
def _target(args, report):
    """Yield a Target for the chosen server, starting (and afterwards stopping) an engine if asked."""
    from .clients import Target
    from .experiments import add_engine, engine_args
    from .report import EngineInfo

    if args.url:
        if not args.model:
            raise SystemExit("--url needs --model (the name the server serves); try `curl URL/v1/models`")
        name = args.name or "server"
        # Assume the profile's weights for the roofline; the report says which dtype it assumed.
        report.engines[name] = EngineInfo(name, name, args.plan.model.dtype, url=args.url)
        yield Target(name, args.url.rstrip("/"), args.model, args.protocol or "openai-chat", args.api_key,
                     args.metrics_url)
        return
    from ..engines import launch

    name = args.engine or args.plan.engines[0]
    plan = args.plan
    with console.status(f"starting {name} …"):
        engine = launch(name, plan.model, port="auto", lab=plan.lab, progress=False, timeout=plan.sizes.timeout_s,
                        extra_args=[*engine_args(name, plan.sizes.max_model_len), *args.engine_arg])
    with engine:
        console.print(f"{engine.spec.display_name} ready in {engine.ready_after_s:.1f} s at {engine.url}")
        yield add_engine(report, engine, plan.model)


def _workload(args):
    from .prompts import Workload, standard_workloads

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


def _save(report, out: str | None) -> None:
    console.print(_table(report.summary_table(), "Results (measured in this run)"))
    for line in report.diagnosis():
        console.print(f"• {line}")
    for run in report.runs:
        for w in run.summary.warnings + run.health.notes:
            console.print(f"[yellow]⚠ {run.target} · {run.workload} · {run.load.label}: {w}")
        if rows := [r for r in run.server_comparison() if "server_mean" in r]:
            frame = pd.DataFrame(rows)[["metric", "client_mean", "server_mean", "mean_diff_pct", "server_p50_bucket"]]
            console.print(_table(frame, f"{run.target}: our means vs the server's histograms (s)"))
    if out:
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        report.to_json(directory / "report.json")
        report.to_html(directory / "report.html")
        (directory / "report.md").write_text(report.to_markdown())
        console.print(f"wrote {directory}/report.html, report.md and report.json (per-request records included)")


def cmd_run(args) -> int:
    from .experiments import measure, new_report
    from .load import Load
    from .tokens import load_tokenizer

    report = new_report(args.plan, "bench run")
    tokenizer = load_tokenizer(args.plan.model)
    try:
        load = Load(args.mode, args.concurrency[0], args.rate, args.gamma_shape or 1.0, args.warmup,
                    ramp_up=args.ramp_up)
    except ValueError as exc:
        raise SystemExit(f"spark-labs bench run: {exc}") from None
    with _target(args, report) as target, _progress() as progress:
        measure(report, target, _workload(args), load, tokenizer, progress)
    _save(report, args.out)
    return 0


def cmd_sweep(args) -> int:
    from .experiments import new_report, sweep
    from .tokens import load_tokenizer

    report = new_report(args.plan, "concurrency sweep")
    with _target(args, report) as target, _progress() as progress:
        sweep(report, target, _workload(args), args.concurrency, load_tokenizer(args.plan.model), progress,
              ramp_up=args.ramp_up)
    _save(report, args.out)
    for engine, knee in report.knees(args.workload).items():
        console.print(f"[bold]knee[/] {engine}: {knee}")
    for run in report.runs:
        law = run.littles_law()
        console.print(f"Little's law · {run.load.label}: sampled in-flight {law['sampled_in_flight']:.2f} vs "
                      f"throughput × latency {law['throughput_x_latency']:.2f} (ratio {law['ratio']:.2f})")
    return 0


def cmd_micro(args) -> int:
    from .experiments import micro, new_report
    from .tokens import load_tokenizer

    report = new_report(args.plan, "micro")
    with _target(args, report) as target, console.status("pp / tg …"):
        frame = micro(target, load_tokenizer(args.plan.model), args.pp, args.tg, args.repeats)
    console.print(_table(frame, "llama-bench-style microbenchmarks through the HTTP API"))
    return 0


def cmd_regimes(args) -> int:
    from .experiments import new_report
    from .start_regimes import compare_start_regimes
    from .tokens import load_tokenizer

    report = new_report(args.plan, "lockstep start vs ramp-up")
    with _target(args, report) as target, _progress() as progress:
        try:
            table, fig = compare_start_regimes(target, args.concurrency[0], args.requests_per_stream,
                                               args.max_tokens or 32, load_tokenizer(args.plan.model), report,
                                               progress)
        except ValueError as exc:
            raise SystemExit(f"spark-labs bench regimes: {exc}") from None
    _save(report, args.out)
    console.print(_table(table, "The same closed loop, two start regimes (measured in this run)"))
    if args.out:
        fig.write_html(Path(args.out) / "regimes.html", include_plotlyjs=True)
        console.print(f"wrote {args.out}/regimes.html (both request timelines)")
    return 0


def cmd_compare(args) -> int:
    from .experiments import compare_engines

    engines = args.engines.split(",") if args.engines else None
    with _progress() as progress:
        report = compare_engines(args.plan, engines, concurrencies=args.concurrency or None, progress=progress,
                                 log=console.print)
    if skipped := report.meta.get("skipped"):
        for name, why in skipped.items():
            console.print(f"⏭ {name}: {why}")
    _save(report, args.out)
    if len(report.use_cases()):
        console.print(_table(report.use_cases().drop(columns=["best"]), "Which engine for which use case (measured)"))
    return 0


def _engine_with_server_metrics(plan) -> str:
    """The profile's first engine that keeps Prometheus histograms to hold our numbers against."""
    for name in plan.engines:
        if resolve_engine(name).histograms:
            return name
    raise SystemExit(f"none of the {plan.profile.name} profile's engines ({', '.join(plan.engines)}) keeps "
                     "server-side histograms: pass --engine NAME or --url URL --metrics-url URL")


def cmd_accuracy(args) -> int:
    from .accuracy import compare
    from .experiments import new_report
    from .tokens import load_tokenizer

    if not args.url:
        args.engine = args.engine or _engine_with_server_metrics(args.plan)
        # Per-request timings (where the engine has them) give the server's exact p50s, not just its
        # bucketed histograms.
        args.engine_arg = [*args.engine_arg, *resolve_engine(args.engine).per_request_metrics_args]
    report = new_report(args.plan, "accuracy")
    path = args.plan.model.hf_path() if args.plan.model.embedded else args.plan.model.hf_id
    with _target(args, report) as target:
        if target.metrics_url is None:
            raise SystemExit("accuracy needs the server's Prometheus endpoint: pass --metrics-url")
        with console.status("our harness, then vllm bench serve, on the same server …"):
            frame = compare(target, load_tokenizer(args.plan.model), path, args.input_len, args.output_len,
                            args.num_requests or 32, args.concurrency[0], progress=False)
    console.print(_table(frame.round(3), "Accuracy (ms): ours vs the server's view vs vllm bench serve"))
    console.print(f"output throughput: ours {frame.attrs['throughput']['ours_output_tok_s']:.1f} tok/s, "
                  f"vllm bench {frame.attrs['throughput']['vllm_bench_output_tok_s']:.1f} tok/s")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        frame.to_csv(Path(args.out) / "accuracy.csv", index=False)
    return 0


def cmd_overhead(args) -> int:
    from .overhead import sustained_chunks_per_s, sweep

    results = []
    for arrivals in ("steady", "burst"):
        with console.status(f"calibration server, {arrivals} arrivals, {args.client} client …"):
            results += sweep(tuple(args.streams), args.ttft_ms, args.tpot_ms, args.tokens, arrivals,
                             client=args.client)
    frame = pd.DataFrame([asdict(r) for r in results]).drop(columns=["reasons", "client"])
    console.print(_table(frame, f"Harness overhead ({args.client} client) vs a server with TTFT {args.ttft_ms} ms, "
                                f"TPOT {args.tpot_ms} ms"))
    at = [r for r in results if r.streams == 64 and r.arrivals == "steady"]
    if at:
        console.print(f"at 64 concurrent streams (steady arrivals) the harness adds {at[0].harness_ttft_p50_ms:.2f} ms "
                      f"p50 to TTFT (client send path + read path); target ≤ 1 ms")
    for arrivals in ("steady", "burst"):
        rate = sustained_chunks_per_s([r for r in results if r.arrivals == arrivals])
        console.print(f"{arrivals}: the client kept up to {rate:.0f} chunks/s" if rate else f"{arrivals}: fell behind")
    return 0


def cmd_gateway(args) -> int:
    from .clients import Target
    from .experiments import engine_args
    from .gateway_overhead import PLACEMENTS, can_pin, measure_gateway
    from .load import Load
    from .overhead import CalibrationServer

    # Why the gateway cannot have a core of its own here, if it cannot.
    no_own_core = can_pin()
    with contextlib.ExitStack() as stack:
        pids: tuple[int, ...] = ()
        if args.upstream == "calibration":
            server = stack.enter_context(CalibrationServer(args.ttft_ms, args.tpot_ms))
            upstream, pids = server.target(), (server.pid,)
        elif args.upstream.startswith("http"):
            upstream = Target("upstream", args.upstream.rstrip("/"), args.model or args.plan.model.served_name)
            console.print("[yellow]a URL upstream is not pinned away from the gateway's core (its processes are "
                          "unknown here)[/yellow]")
        else:
            from ..engines import launch

            with console.status(f"starting {args.upstream} …"):
                flags = engine_args(args.upstream, args.plan.sizes.max_model_len)
                engine = stack.enter_context(launch(args.upstream, args.plan.model, port="auto", progress=False,
                                                    extra_args=flags))
            upstream = Target.from_engine(engine)
            # An engine's worker threads are sized for every core, so no core is the gateway's own: pinning
            # them away made vLLM CPU crawl, and pinning the gateway beside them only slows both sides.
            no_own_core = no_own_core or f"{args.upstream} uses every core"
        placements = [p for p in PLACEMENTS if p != "own-core" or not no_own_core]
        if no_own_core:
            console.print(f"[yellow]own-core placement skipped: {no_own_core}[/yellow]")
        c, n = args.concurrency[0], args.num_requests or 64
        results = []
        for placement in placements:
            with console.status(f"{placement}: direct vs gateway, closed loop at {c}, "
                                f"{args.rounds} alternating rounds …"):
                closed = measure_gateway(upstream, c, n, args.max_tokens, args.rounds, placement=placement,
                                         upstream_pids=pids)
            # Steady arrivals at the rate that keeps c requests in flight (Little's law, from the direct run).
            steady_load = Load("poisson", 0, rate=c / closed.direct_e2e_mean_s, seed=1)
            with console.status(f"{placement}: direct vs gateway, steady arrivals ({steady_load.label}) …"):
                steady = measure_gateway(upstream, c, n, args.max_tokens, args.rounds, load=steady_load,
                                         placement=placement, upstream_pids=pids)
            results += [closed, steady]
    frame = pd.DataFrame([asdict(r) for r in results])
    console.print(_table(frame.drop(columns=["direct_e2e_mean_s"]),
                         "Gateway overhead (measured side by side in this run)"))
    for r in results:
        console.print(f"{r.placement}, {r.load}: added p50 TTFT {r.added_ttft_p50_ms:+.2f} ms (target ≤ 2 ms) · "
                      f"throughput gateway/direct {r.throughput_ratio:.3f} (target ≥ 0.95) · errors {r.errors}")
    if "own-core" in placements:
        console.print("own-core: the gateway on a core of its own, client and upstream on the others (as deployed); "
                      "shared: all three compete for every core, so the gateway's numbers include being pre-empted")
    return 0


def cmd_metrics(args) -> int:
    from .metrics import DEFINITIONS

    console.print(_table(pd.DataFrame([asdict(d) for d in DEFINITIONS]), "Metric definitions"))
    return 0


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. 1,2,4") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more numbers >= 1, e.g. 4 or 1,2,4,8")
    return values


def _profile_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=["tiny", "spark", "auto"],
                   help="which profile's model, sizes and engines (default: SPARK_LABS_PROFILE, else detected)")


def _out_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="directory for report.html / report.md / report.json")


def _workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", default="chat",
                   help="chat, prefill-heavy, decode-heavy, code, or synthetic:IN:OUT (default chat)")
    p.add_argument("--num-requests", type=int, help="requests to send (default: the workload's own count)")
    p.add_argument("--max-tokens", type=int, help="output tokens per request (default: the workload's own)")


def _single_level(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--concurrency", type=_ints, default=None,
                   help=f"{what} (one number; default: the profile's highest sweep level)")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``bench`` parser and its sub-command parsers by name (their usage lines make the errors)."""
    parser = argparse.ArgumentParser(prog="spark-labs bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="one workload under one load")
    for add in (_profile_arg, _out_arg, _target_args, _workload_args):
        add(p)
    _single_level(p, "requests in flight: the closed loop's width, or the open loop's cap")
    p.add_argument("--mode", default="concurrent", choices=["sequential", "concurrent", "poisson", "gamma"],
                   help="sequential, closed loop (concurrent, the default) or open-loop arrivals (poisson, gamma)")
    p.add_argument("--rate", type=float, help="poisson / gamma: requests per second")
    p.add_argument("--gamma-shape", type=float, default=None,
                   help="gamma: below 1 burstier than Poisson, above 1 smoother (default 1)")
    p.add_argument("--warmup", type=int, default=1, help="requests sent and discarded before measuring (default 1)")
    p.add_argument("--ramp-up", type=float, default=None, metavar="SECONDS",
                   help="closed loop: spread the streams' first requests over this many seconds (default: one "
                        "request's E2E, measured by the warm-up); 0 starts every stream together (lockstep)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("sweep", help="one workload at rising concurrency, with the knee")
    for add in (_profile_arg, _out_arg, _target_args, _workload_args):
        add(p)
    p.add_argument("--concurrency", type=_ints, default=None,
                   help="the levels, e.g. 1,2,4,8 (default: the profile's sweep levels)")
    p.add_argument("--ramp-up", type=float, default=None, metavar="SECONDS",
                   help="spread each level's first requests over this many seconds (default: one request's "
                        "E2E); 0 starts every stream together (lockstep)")
    p.set_defaults(fn=cmd_sweep)

    p = sub.add_parser("micro", help="pp512 / tg128 through the HTTP API")
    for add in (_profile_arg, _target_args):
        add(p)
    p.add_argument("--pp", type=int, default=512, help="prompt tokens of the prefill test (default 512)")
    p.add_argument("--tg", type=int, default=128, help="forced output tokens of the decode test (default 128)")
    p.add_argument("--repeats", type=int, default=3, help="requests per test (default 3)")
    p.set_defaults(fn=cmd_micro)

    p = sub.add_parser("accuracy", help="ours vs the server's metrics vs vllm bench serve, on the same server")
    for add in (_profile_arg, _out_arg, _target_args):
        add(p)
    _single_level(p, "requests in flight for both tools")
    p.add_argument("--num-requests", type=int, help="requests per tool (default 32)")
    p.add_argument("--input-len", type=int, default=64, help="prompt tokens per request (default 64)")
    p.add_argument("--output-len", type=int, default=32, help="forced output tokens per request (default 32)")
    p.set_defaults(fn=cmd_accuracy)

    p = sub.add_parser("regimes",
                       help="one closed loop twice: every stream started together (lockstep), then with a ramp-up")
    for add in (_profile_arg, _out_arg, _target_args):
        add(p)
    _single_level(p, "streams of the closed loop")
    p.add_argument("--max-tokens", type=int, help="forced output tokens per request (default 32)")
    p.add_argument("--requests-per-stream", type=int, default=4, help="requests each stream sends (default 4)")
    p.set_defaults(fn=cmd_regimes)

    p = sub.add_parser("compare", help="the profile's engines on the same workloads: full report")
    for add in (_profile_arg, _out_arg):
        add(p)
    p.add_argument("--engines", help="comma list, e.g. llamacpp,vllm (default: the profile's engines)")
    p.add_argument("--concurrency", type=_ints, default=None,
                   help="sweep levels, e.g. 1,2,4 (default: the profile's, fewer for engines slow on a CPU)")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("overhead", help="harness overhead against the calibration server")
    p.add_argument("--streams", type=_ints, default=[1, 16, 64, 128, 256, 512],
                   help="concurrent stream counts to try, rising until the client falls behind "
                        "(default 1,16,64,128,256,512)")
    p.add_argument("--ttft-ms", type=float, default=50.0, help="the calibration server's TTFT (default 50)")
    p.add_argument("--tpot-ms", type=float, default=20.0, help="the calibration server's TPOT (default 20)")
    p.add_argument("--tokens", type=int, default=64, help="chunks per stream (default 64)")
    p.add_argument("--client", default="http11", choices=CLIENTS,
                   help="HTTP library the harness sends with: http11 (what it always uses) or httpx / aiohttp, "
                        "to see what a general-purpose client would add (default http11)")
    p.set_defaults(fn=cmd_overhead)

    p = sub.add_parser("gateway", help="gateway overhead vs the same upstream direct")
    _profile_arg(p)
    p.add_argument("--upstream", default="calibration",
                   help="calibration (default), an engine name (vllm, llamacpp) or a URL")
    p.add_argument("--model", help="served model name at a URL upstream (default: the profile's)")
    p.add_argument("--concurrency", type=_ints, default=None, help="requests in flight (one number; default 16)")
    p.add_argument("--num-requests", type=int, help="requests per side and round (default 64)")
    p.add_argument("--max-tokens", type=int, default=32, help="output tokens per request (default 32)")
    p.add_argument("--rounds", type=int, default=3, help="direct/gateway rounds, alternating order (default 3)")
    p.add_argument("--ttft-ms", type=float, default=50.0, help="calibration upstream: its TTFT (default 50)")
    p.add_argument("--tpot-ms", type=float, default=20.0, help="calibration upstream: its TPOT (default 20)")
    p.set_defaults(fn=cmd_gateway)

    sub.add_parser("metrics", help="metric definitions and their names in other tools").set_defaults(fn=cmd_metrics)
    spec_cli.add_parser(sub)
    for command in sub.choices.values():
        command.allow_abbrev = False  # `--mode` must never be taken for an abbreviated `--model`
    return parser, sub.choices


# Commands that run one load at one concurrency (a list would silently use its first number).
_SINGLE_LEVEL = ("run", "accuracy", "regimes", "gateway")


def main(argv: list[str] | None = None) -> int:
    from ..profiles import plan

    parser, commands = _parser()
    args, unknown = parser.parse_known_args(argv)
    sub = commands[args.command]
    if unknown:  # said in the sub-command's words: these flags exist elsewhere, just not here
        sub.error(f"unrecognized arguments: {' '.join(unknown)} (`spark-labs bench {args.command} --help` lists "
                  "the flags it takes)")
    if hasattr(args, "url"):
        _check_target_flags(sub, args)
    if args.command in _SINGLE_LEVEL and args.concurrency and len(args.concurrency) > 1:
        sub.error(f"--concurrency takes one number for {args.command}; `spark-labs bench sweep` runs several levels")
    if args.command == "run":
        if args.rate is not None and args.mode not in ("poisson", "gamma"):
            sub.error(f"--rate sets open-loop arrivals; add --mode poisson or --mode gamma (not {args.mode})")
        if args.gamma_shape is not None and args.mode != "gamma":
            sub.error("--gamma-shape applies to --mode gamma only")
    if args.command == "gateway" and not args.upstream.startswith("http") and args.model:
        sub.error("--model names the model at a URL upstream; an engine upstream serves the profile's model")
    if hasattr(args, "profile"):
        args.plan = plan("01", args.profile)
        if args.command == "sweep":
            args.concurrency = args.concurrency or list(args.plan.sizes.concurrency)
        elif args.command == "gateway":
            args.concurrency = args.concurrency or [16]
        elif args.command in _SINGLE_LEVEL:
            args.concurrency = args.concurrency or [max(args.plan.sizes.concurrency)]
    return args.fn(args)
