"""``spark-labs bench gateway``: what the spark-labs gateway adds, against the same upstream direct (the measuring
code is :mod:`spark_labs.bench.selfcheck.gateway_overhead`)."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import asdict

import pandas as pd

from ...cli_types import MILLISECONDS, REQUESTS, STREAM_LEVELS, TOKENS, whole
from .shared import console, profile_arg, rich_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    profile_arg(p)
    p.add_argument("--upstream", default="calibration",
                   help="calibration (default), an engine name (vllm, llamacpp) or a URL")
    p.add_argument("--model", help="served model name at a URL upstream (default: the profile's)")
    p.add_argument("--concurrency", type=STREAM_LEVELS, default=None,
                   help="requests in flight (one number; default 16)")
    p.add_argument("--num-requests", type=REQUESTS, help="requests per side and round (default 64)")
    p.add_argument("--max-tokens", type=TOKENS, default=32, help="output tokens per request (default 32)")
    p.add_argument("--rounds", type=whole(1, 100, "each round runs both sides again; a hundred already take long"),
                   default=3, help="direct/gateway rounds, alternating order (default 3)")
    p.add_argument("--ttft-ms", type=MILLISECONDS, default=50.0, help="calibration upstream: its TTFT (default 50)")
    p.add_argument("--tpot-ms", type=MILLISECONDS, default=20.0, help="calibration upstream: its TPOT (default 20)")


def run(args) -> int:
    from ...engines import engine_args, launch
    from ..clients import Target
    from ..load import Load
    from ..selfcheck.gateway_overhead import PLACEMENTS, can_pin, measure_gateway
    from ..selfcheck.harness_overhead import CalibrationServer

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
    console.print(rich_table(frame.drop(columns=["direct_e2e_mean_s"]),
                             "Gateway overhead (measured side by side in this run)"))
    for r in results:
        console.print(f"{r.placement}, {r.load}: added p50 TTFT {r.added_ttft_p50_ms:+.2f} ms (target ≤ 2 ms) · "
                      f"throughput gateway/direct {r.throughput_ratio:.3f} (target ≥ 0.95) · errors {r.errors}")
    if "own-core" in placements:
        console.print("own-core: the gateway on a core of its own, client and upstream on the others (as deployed); "
                      "shared: all three compete for every core, so the gateway's numbers include being pre-empted")
    return 0
