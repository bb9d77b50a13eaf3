"""Two builds of the gateway side by side, for a before/after figure (docs/gateway.md, "What it costs").

    git worktree add /tmp/before <commit>
    .venv/bin/python scripts/gateway_ab.py --before /tmp/before/src --after src --rounds 24

The workload is ``spark-labs bench gateway``'s closed loop (64 requests of 32 tokens, all 16 streams starting
together, the calibration server at TTFT 50 ms / TPOT 20 ms), with the gateway on a core of its own. Each
round runs direct, before and after in turn (the order reversed every other round), so drift on a noisy
machine hits all three alike. Each build runs as ``python -m spark_labs.serve`` with its ``src`` first on
``PYTHONPATH``; ``--before-path`` adds entries in front of it (a folder with an ``uvloop`` package that
raises ImportError gives a build the plain asyncio loop it had before uvloop was a dependency).

Printed per build: the added p50 TTFT (median over rounds of build − direct), and where it goes, from the
calibration server's own stamps in each token: the *send path* (the client sent → the upstream received the
request) and the *first-token delivery* (the upstream wrote the token → the client read it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics

from spark_labs.bench.clients import BenchRequest, Target
from spark_labs.bench.load import Load, run_load
from spark_labs.bench.selfcheck.gateway_overhead import GatewayProcess, own_core
from spark_labs.bench.selfcheck.harness_overhead import CalibrationServer


def gateway(path: str, upstream_url: str) -> GatewayProcess:
    """A gateway process importing its code from ``path`` (a PYTHONPATH value)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = path
    try:
        return GatewayProcess(upstream_url)
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def stamps(result) -> tuple[float, float]:
    """Median send path and first-token delivery (ms) of a run, from the calibration server's stamps."""
    send, delivery = [], []
    for record in result.records:
        if record.ok:
            first = record.content_chunks[0]
            received, _deadline, written = (int(v) for v in first.text.split(":"))
            send.append((received - record.sent_ns) / 1e6)
            delivery.append((first.t_ns - written) / 1e6)
    return statistics.median(send), statistics.median(delivery)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the src folder of the build before")
    parser.add_argument("--after", required=True, help="the src folder of the build after")
    parser.add_argument("--before-path", default="", help="PYTHONPATH entries to put in front of --before")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    builds = {"before": os.pathsep.join(p for p in (args.before_path, os.path.abspath(args.before)) if p),
              "after": os.path.abspath(args.after)}
    requests = [BenchRequest(f"g{i}", f"Request {i}: explain batching in one paragraph.", 32, "gateway")
                for i in range(64)]
    load = Load("concurrent", 16, ramp_up=0)
    sides = ["direct", *builds]
    ttft = {side: [] for side in sides}
    path = {side: [] for side in sides}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(CalibrationServer(50.0, 20.0))
        upstream = server.target()
        gateways = {name: stack.enter_context(gateway(p, server.url)) for name, p in builds.items()}
        for gw in gateways.values():  # a discarded run each: first connections, lazily built parts
            run_load(Target("warm-up", gw.url, upstream.model, upstream.protocol), requests, load, progress=False,
                     server_metrics=False)
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:
                gw = gateways.get(side)
                target = upstream if gw is None else Target(side, gw.url, upstream.model, upstream.protocol)
                with own_core((gw or gateways["after"]).pid, (server.pid,)):
                    result = run_load(target, requests, load, progress=False, server_metrics=False)
                if result.summary.failed:
                    raise SystemExit(f"{side}: {result.summary.failed} requests failed")
                ttft[side].append(result.summary.distributions["ttft"].p50 * 1e3)
                path[side].append(stamps(result))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{s} {ttft[s][-1]:.2f} ms" for s in sides), flush=True)
    for side in sides:
        send = statistics.median(p[0] for p in path[side])
        delivery = statistics.median(p[1] for p in path[side])
        added = "" if side == "direct" else \
            f"added p50 TTFT {statistics.median(g - d for g, d in zip(ttft[side], ttft['direct'])):+.2f} ms, "
        print(f"{side:>6}: {added}send path {send:.2f} ms, first-token delivery {delivery:.2f} ms")
    change = [a - b for a, b in zip(ttft["after"], ttft["before"])]
    print(f"after − before, per round: median {statistics.median(change):+.2f} ms")


if __name__ == "__main__":
    main()
