"""Bursts after a quiet spell, through a gateway that lets idle upstream connections expire and one that keeps
them warm (``upstream_keep_warm_s``), side by side (docs/gateway.md, "What it costs").

    .venv/bin/python scripts/gateway_keep_warm.py --bursts 8 --pause-s 6

Two gateways (``upstream_keep_warm_s`` 0 and 60) in front of one calibration server (TTFT 50 ms, TPOT 20 ms),
both on the last core, the client and the upstream on the others. After one burst each to fill their pools,
each round waits ``--pause-s`` (longer than the 4 s idle expiry) and sends a burst of 16 streams of 32
tokens to one gateway, then pauses and does the same to the other (the order alternates). Printed per
gateway: the median over bursts of the p50 TTFT and of the p50 send path (the client sent → the upstream
received the request, from the calibration server's stamps).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

from spark_labs.bench.clients import BenchRequest, Target
from spark_labs.bench.load import Load, run_load
from spark_labs.bench.selfcheck.gateway_overhead import GatewayProcess, own_core
from spark_labs.bench.selfcheck.harness_overhead import CalibrationServer

SETTINGS = ("0", "60")


def burst(url: str) -> tuple[float, float]:
    """p50 TTFT and p50 send path (ms) of 16 streams sent together."""
    requests = [BenchRequest(f"k{i}", "Explain batching in one paragraph.", 32, "gateway") for i in range(16)]
    result = run_load(Target("gateway", url, "calibration"), requests, Load("concurrent", 16, ramp_up=0),
                      progress=False, server_metrics=False)
    if result.summary.failed:
        raise SystemExit(f"{result.summary.failed} requests failed")
    send = [(int(r.content_chunks[0].text.split(":")[0]) - r.sent_ns) / 1e6 for r in result.records]
    return result.summary.distributions["ttft"].p50 * 1e3, statistics.median(send)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=8, help="measured bursts per gateway")
    parser.add_argument("--pause-s", type=float, default=6.0, help="quiet time before each burst")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in SETTINGS}
    with CalibrationServer(50.0, 20.0) as server, contextlib.ExitStack() as stack:
        gateways = {}
        for keep_warm in SETTINGS:
            os.environ["SPARK_LABS_GATEWAY_UPSTREAM_KEEP_WARM_S"] = keep_warm
            gateways[keep_warm] = stack.enter_context(GatewayProcess(server.url))
        stack.enter_context(own_core(tuple(g.pid for g in gateways.values()), (server.pid,)))
        for gateway in gateways.values():
            burst(gateway.url)
        for i in range(args.bursts):
            for keep_warm in SETTINGS if i % 2 == 0 else SETTINGS[::-1]:
                time.sleep(args.pause_s)
                results[keep_warm].append(burst(gateways[keep_warm].url))
    for keep_warm, rows in results.items():
        print(f"upstream_keep_warm_s={keep_warm}: p50 TTFT {statistics.median(r[0] for r in rows):.2f} ms, "
              f"send path p50 {statistics.median(r[1] for r in rows):.2f} ms (median of {len(rows)} bursts after "
              f"{args.pause_s:g} s of quiet)")


if __name__ == "__main__":
    main()
