"""``spark-labs bench overhead``: what the harness itself adds, against the calibration server (the measuring
code is :mod:`spark_labs.bench.selfcheck.harness_overhead`)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

import pandas as pd

from ...cli_types import MILLISECONDS, STREAM_LEVELS, TOKENS
from ..transports import CLIENTS
from .shared import console, rich_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--streams", type=STREAM_LEVELS, default=[1, 16, 64, 128, 256, 512],
                   help="concurrent stream counts to try, rising until the client falls behind "
                        "(default 1,16,64,128,256,512)")
    p.add_argument("--ttft-ms", type=MILLISECONDS, default=50.0, help="the calibration server's TTFT (default 50)")
    p.add_argument("--tpot-ms", type=MILLISECONDS, default=20.0, help="the calibration server's TPOT (default 20)")
    p.add_argument("--tokens", type=TOKENS, default=64, help="chunks per stream (default 64)")
    p.add_argument("--client", default="http11", choices=CLIENTS,
                   help="HTTP library the harness sends with: http11 (what it always uses) or httpx / aiohttp, "
                        "to see what a general-purpose client would add (default http11)")


def run(args) -> int:
    from ..selfcheck.harness_overhead import sustained_chunks_per_s, sweep

    results = []
    for arrivals in ("steady", "burst"):
        with console.status(f"calibration server, {arrivals} arrivals, {args.client} client …"):
            results += sweep(tuple(args.streams), args.ttft_ms, args.tpot_ms, args.tokens, arrivals,
                             client=args.client)
    frame = pd.DataFrame([asdict(r) for r in results]).drop(columns=["reasons", "client"])
    console.print(rich_table(frame, f"Harness overhead ({args.client} client) vs a server with TTFT "
                                    f"{args.ttft_ms} ms, TPOT {args.tpot_ms} ms"))
    at = [r for r in results if r.streams == 64 and r.arrivals == "steady"]
    if at:
        console.print(f"at 64 concurrent streams (steady arrivals) the harness adds {at[0].harness_ttft_p50_ms:.2f} ms "
                      f"p50 to TTFT (client send path + read path); target ≤ 1 ms")
    for arrivals in ("steady", "burst"):
        rate = sustained_chunks_per_s([r for r in results if r.arrivals == arrivals])
        console.print(f"{arrivals}: the client kept up to {rate:.0f} chunks/s" if rate else f"{arrivals}: fell behind")
    return 0
