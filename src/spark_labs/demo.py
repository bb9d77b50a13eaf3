"""``make demo``: llama.cpp and vLLM (CPU) on the embedded model, measured by the benchmark harness.

Both engines get the same workloads (prefill-heavy, decode-heavy, and a chat concurrency sweep); every
number is measured in this run. The full report — tables, diagnosis, use-case table, figures, per-request
records — is written to ``reports/demo/`` (HTML opens offline).
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    from .bench.cli import main as bench_main

    parser = argparse.ArgumentParser(prog="spark-labs demo", description=__doc__)
    parser.add_argument("--engines", default="llamacpp,vllm")
    parser.add_argument("--out", default="reports/demo")
    args = parser.parse_args(argv)
    return bench_main(["compare", "--engines", args.engines, "--out", args.out])
