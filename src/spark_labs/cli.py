"""``spark-labs`` command line. Each subcommand lives in the module that owns its job; this file only
dispatches, so ``spark-labs --help`` stays instant (nothing heavy is imported until a command runs)."""

from __future__ import annotations

import importlib
import sys

# name → (module, function taking argv list, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("spark_labs.demo", "main", "start llama.cpp and vLLM on the embedded model: full benchmark report"),
    "bench": ("spark_labs.cli", "bench", "benchmark engines: run, sweep, micro, compare, accuracy, overhead"),
    "doctor": ("spark_labs.doctor", "main", "show profile, hardware, memory and which engines can run here"),
    "prepare-model": ("spark_labs.doctor", "prepare_model_main", "export the embedded model to HF format once"),
    "build": ("spark_labs.variants.cli", "main", "build variants ahead of time (quantize GGUF, compile), measure them"),
    "serve": ("spark_labs.serve.cli", "main", "serve a model with spark-labs' OpenAI-compatible server"),
    "ui": ("spark_labs.ui.cli", "main", "serve the chat UI over an Ollama API (Ollama or the gateway)"),
    "labs": ("spark_labs.notebooks.cli", "main", "build labs/ from solutions/ (labs build | check | record)"),
    "grade": ("spark_labs.grading.cli", "main", "grade notebooks against the reference checkpoints, into a gradebook"),
    "engine": ("spark_labs.engines.cli", "main", "start/stop one engine (commands, docker recipes)"),
}

# `spark-labs bench` sub-commands that packages built on the instrument add to it, composed here (above every
# package) so the dependency runs one way: speculative -> bench, never back. name -> (module with
# add_arguments(parser) and run(args), one-line help); bench's own commands are spark_labs.bench.cli.COMMANDS.
BENCH_COMMANDS: dict[str, tuple[str, str]] = {
    "spec": ("spark_labs.speculative.cli", "greedy baseline vs speculative decoding: alpha, tokens/step, speed-up, "
                                           "formula; --engine vllm --concurrency 1,4,16: where speculation stops "
                                           "paying; --engine llamacpp: llama.cpp's prompt lookup"),
}


def bench(argv: list[str] | None = None) -> int:
    """``spark-labs bench``: the harness's own commands, then BENCH_COMMANDS."""
    from .bench import cli as bench_cli

    return bench_cli.main(argv, {**bench_cli.COMMANDS, **BENCH_COMMANDS})


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items())
    return f"usage: spark-labs COMMAND [ARGS...]\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if args[0] == "--version":
        from . import __version__

        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"spark-labs: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[name]
    from .errors import SparkLabsError

    try:
        return int(getattr(importlib.import_module(module), function)(rest) or 0)
    except SparkLabsError as exc:
        print(f"spark-labs {name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
