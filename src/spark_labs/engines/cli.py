"""``spark-labs engine list | command ENGINE [--docker] | start ENGINE [--port N]``."""

from __future__ import annotations

import shlex
import time

from rich.console import Console
from rich.table import Table

from ..cli_types import SECONDS, ArgumentParser, check_model_env, port, port_or_auto
from ..errors import EngineError
from ..profiles import get_profile
from .launcher import launch
from .profile_args import spark_command
from .registry import ENGINES, resolve_engine


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="spark-labs engine", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every engine, its port, protocol and whether it can run here")
    command = sub.add_parser("command", help="print the command that starts an engine")
    command.add_argument("engine")
    command.add_argument("--docker", action="store_true", help="the container recipe (spark profile)")
    command.add_argument("--port", type=port)
    command.add_argument("--eager", action="store_true",
                         help="vLLM: add --enforce-eager (CUDA graphs off; the playbooks keep them on)")
    start = sub.add_parser("start", help="start an engine and keep it running until Ctrl-C")
    start.add_argument("engine")
    start.add_argument("--port", type=port_or_auto, default=None, help="a port number or 'auto'")
    start.add_argument("--timeout", type=SECONDS, help="seconds to wait until it is ready")
    args, extra = parser.parse_known_args(argv)
    console = Console()

    if args.action == "list":
        table = Table()
        for column in ("engine", "key", "port", "protocol", "ready probe", "metrics", "container image", "here?"):
            table.add_column(column)
        for spec in ENGINES.values():
            available = spec.availability()
            table.add_row(spec.display_name, spec.name, str(spec.default_port), spec.protocol, spec.ready_path,
                          spec.metrics_path or "-", spec.docker_image or "-",
                          "[green]yes[/]" if available else f"[red]no[/]: {available.reason}")
        console.print(table)
        return 0

    try:
        spec = resolve_engine(args.engine)
    except EngineError as exc:
        parser.error(str(exc).splitlines()[0])
    # Printing a command needs no model; starting an HF-format engine needs one it can load here.
    check_model_env(parser, loadable=args.action == "start" and spec.model_format == "hf")
    model = get_profile().model_for(None)
    if args.action == "command":
        if args.eager and not spec.eager_flag:
            parser.error(f"--eager switches off vLLM's CUDA graphs; {spec.display_name} has no such switch")
        if args.docker:  # the container recipe plus the spark profile's flags, as compose runs it
            argv_ = spark_command(spec, port=args.port, eager=args.eager, extra_args=extra)
        else:
            eager = [spec.eager_flag] if args.eager else []
            argv_ = spec.local_command(model, port=args.port or spec.default_port, extra_args=[*eager, *extra])
        print(shlex.join(argv_))
        return 0

    with launch(spec, port=args.port, extra_args=extra, timeout=args.timeout) as handle:
        console.print(f"{spec.display_name} ready in {handle.ready_after_s:.1f} s at {handle.base_url} "
                      f"(model '{handle.served_name}', log {handle.log_path}); Ctrl-C stops it")
        try:
            while handle.is_running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0
