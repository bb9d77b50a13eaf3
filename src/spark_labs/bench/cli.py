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
import importlib

from ..cli_types import ArgumentParser, check_model_env, http_url, unreachable
from .commands import check_reachable, check_target_flags

# name → (module with add_arguments(parser) and run(args), one-line help); the modules are in bench/commands/.
# Commands that other packages build on the instrument (`spec`) are added by the `spark-labs` table in
# spark_labs/cli.py, so bench never imports the packages that use it.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("spark_labs.bench.commands.run", "one workload under one load"),
    "sweep": ("spark_labs.bench.commands.sweep", "one workload at rising concurrency, with the knee"),
    "micro": ("spark_labs.bench.commands.micro", "pp512 / tg128 through the HTTP API"),
    "accuracy": ("spark_labs.bench.commands.accuracy",
                 "ours vs the server's metrics vs vllm bench serve, on the same server"),
    "regimes": ("spark_labs.bench.commands.regimes",
                "one closed loop twice: every stream started together (lockstep), then with a ramp-up"),
    "compare": ("spark_labs.bench.commands.compare", "the profile's engines on the same workloads: full report"),
    "overhead": ("spark_labs.bench.commands.overhead", "harness overhead against the calibration server"),
    "gateway": ("spark_labs.bench.commands.gateway", "gateway overhead vs the same upstream direct"),
    "metrics": ("spark_labs.bench.commands.metrics", "metric definitions and their names in other tools"),
}


def _parser(commands: dict[str, tuple[str, str]] = COMMANDS,
            ) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``bench`` parser and its sub-command parsers by name (their usage lines make the errors)."""
    parser = ArgumentParser(prog="spark-labs bench", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_) in commands.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_)
        module.add_arguments(command)
        command.set_defaults(fn=module.run)
        command.allow_abbrev = False  # `--mode` must never be taken for an abbreviated `--model`
    return parser, sub.choices


# Commands that run one load at one concurrency (a list would silently use its first number).
_SINGLE_LEVEL = ("run", "accuracy", "regimes", "gateway")
# Commands that never load the profile's model (the calibration server answers them).
_NO_MODEL = ("metrics", "overhead")


def main(argv: list[str] | None = None, commands: dict[str, tuple[str, str]] = COMMANDS) -> int:
    """Parse, apply the checks every command shares, run the command. ``commands``: the table to use
    (``spark-labs bench`` passes COMMANDS plus the commands of packages above bench). Every refusal is one line
    and exit status 2, before an engine starts."""
    from ..profiles import plan
    from .commands.shared import parse_workload
    from .load import Load

    parser, parsers = _parser(commands)
    args, unknown = parser.parse_known_args(argv)
    sub = parsers[args.command]
    if unknown:  # said in the sub-command's words: these flags exist elsewhere, just not here
        sub.error(f"unrecognized arguments: {' '.join(unknown)} (`spark-labs bench {args.command} --help` lists "
                  "the flags it takes)")
    if hasattr(args, "url"):
        check_target_flags(sub, args)
    if args.command in _SINGLE_LEVEL and args.concurrency and len(args.concurrency) > 1:
        sub.error(f"--concurrency takes one number for {args.command}; `spark-labs bench sweep` runs several levels")
    if args.command == "run":
        if args.rate is not None and args.mode not in ("poisson", "gamma"):
            sub.error(f"--rate sets open-loop arrivals; add --mode poisson or --mode gamma (not {args.mode})")
        if args.rate is None and args.mode in ("poisson", "gamma"):
            sub.error(f"--mode {args.mode} sends open-loop arrivals: add --rate REQUESTS_PER_SECOND")
        if args.gamma_shape is not None and args.mode != "gamma":
            sub.error("--gamma-shape applies to --mode gamma only")
        try:  # the load's own checks (ramp-up for a closed loop only, ...), before anything starts
            Load(args.mode, 1, args.rate, args.gamma_shape or 1.0, args.warmup, ramp_up=args.ramp_up)
        except ValueError as exc:
            sub.error(str(exc))
    if args.command == "accuracy" and args.url and not args.metrics_url:
        sub.error("accuracy compares with the server's own histograms: with --url, pass --metrics-url too")
    if args.command == "gateway":
        _check_upstream(sub, args)
    if args.command not in _NO_MODEL:
        check_model_env(sub, getattr(args, "profile", None))
    if hasattr(args, "profile"):
        args.plan = plan("01", args.profile, check_model=False)  # checked above where the command needs it
        if hasattr(args, "workload"):
            try:
                parse_workload(args)
            except SystemExit as exc:
                sub.error(str(exc.code))
        if args.command == "sweep":
            args.concurrency = args.concurrency or list(args.plan.sizes.concurrency)
        elif args.command == "gateway":
            args.concurrency = args.concurrency or [16]
        elif args.command in _SINGLE_LEVEL:
            args.concurrency = args.concurrency or [max(args.plan.sizes.concurrency)]
    check_reachable(sub, args)
    return args.fn(args)


def _check_upstream(sub: argparse.ArgumentParser, args) -> None:
    """``bench gateway --upstream``: calibration, an engine that exists, or an http(s) URL that answers."""
    from ..engines import resolve_engine
    from ..errors import EngineError

    if args.upstream == "calibration":
        pass
    elif "://" in args.upstream:
        try:
            args.upstream = http_url(args.upstream)
        except argparse.ArgumentTypeError as exc:
            sub.error(f"argument --upstream: {exc}")
        if problem := unreachable(args.upstream):
            sub.error(f"--upstream {args.upstream}: {problem}; start the server first or fix the address")
    else:
        try:
            resolve_engine(args.upstream)
        except EngineError as exc:
            sub.error(f"--upstream {args.upstream}: {str(exc).splitlines()[0]}; or give calibration or an http(s) URL")
    if not args.upstream.startswith("http") and args.model:
        sub.error("--model names the model at a URL upstream; an engine upstream serves the profile's model")
