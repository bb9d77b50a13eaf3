"""``make demo``: llama.cpp and vLLM (CPU) on the embedded model, measured by the benchmark harness.

Both engines get the same workloads (prefill-heavy, decode-heavy, and a chat concurrency sweep); every
number is measured in this run. The full report — tables, diagnosis, use-case table, cross-checks against
the engines' own histograms, sample-size warnings, figures, per-request records — is written to
``reports/demo/`` (HTML opens offline). The terminal ends with the verdict only (:mod:`spark_labs.verdict`).
"""

from __future__ import annotations

from pathlib import Path


def write_report(report, out: str | Path) -> Path:
    """report.html (offline), report.md and report.json (per-request records included) under ``out``."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    report.to_json(directory / "report.json")
    report.to_html(directory / "report.html")
    (directory / "report.md").write_text(report.to_markdown(), encoding="utf-8")
    return directory


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .bench import compare_engines
    from .bench.commands.shared import engine_names
    from .cli_types import ArgumentParser, check_model_env, output_dir, save_results
    from .profiles import get_profile, plan
    from .verdict import render

    parser = ArgumentParser(prog="spark-labs demo", description=__doc__)
    # The CPU profile's first two engines (llama.cpp, vLLM): the others are slow on a CPU or need a binary.
    parser.add_argument("--engines", type=engine_names, default=",".join(get_profile("tiny").engines[:2]),
                        help="comma list of engines (default: llama.cpp and vLLM)")
    parser.add_argument("--out", type=output_dir, default="reports/demo",
                        help="folder for the report (created and test-written first; default reports/demo)")
    args = parser.parse_args(argv)
    check_model_env(parser)
    console = Console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        report = compare_engines(plan("01"), args.engines, progress=progress, log=progress.console.print)
    written: list[Path] = []  # args.out, or the fallback folder when writing there failed at the end
    saved = save_results(args.out, lambda out: written.append(write_report(report, out)), "spark-labs demo")
    directory = written[-1] if written else args.out
    print(f"\n{render(report, directory)}")  # plain print: rich would wrap the lines at the terminal's width
    return 0 if saved else 1
