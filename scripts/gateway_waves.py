"""Where a burst's added TTFT goes, wave by wave, from the calibration server's stamps (docs/gateway.md,
"Where the burst stands").

    .venv/bin/python scripts/gateway_waves.py --rounds 6 --max-tokens 32

``spark-labs bench gateway``'s closed loop (64 requests, all 16 streams starting together, the calibration
server at TTFT 50 ms / TPOT 20 ms) direct and through one gateway on its own core, the order alternating each
round. Printed per side, over all rounds: the p50 of the *send path* (the client sent → the upstream received
the request), the upstream's own wait, the *first-token delivery* (the upstream wrote the token → the client
read it) and TTFT, then the same per wave (requests 1–16, 17–32, … in the order they were sent).
"""

from __future__ import annotations

import argparse
import contextlib

import numpy as np

from spark_labs.bench.clients import BenchRequest, Target
from spark_labs.bench.load import Load, run_load
from spark_labs.bench.selfcheck.gateway_overhead import GatewayProcess, own_core
from spark_labs.bench.selfcheck.harness_overhead import CalibrationServer

COLUMNS = ("send path", "upstream", "delivery", "TTFT")


def parts(result) -> np.ndarray:
    """Per request, in the order sent: send path, upstream wait, first-token delivery and TTFT (ms)."""
    rows = []
    for record in sorted((r for r in result.records if r.ok), key=lambda r: r.sent_ns):
        first = record.content_chunks[0]
        received, _deadline, written = (int(v) for v in first.text.split(":"))
        rows.append(((received - record.sent_ns) / 1e6, (written - received) / 1e6, (first.t_ns - written) / 1e6,
                     (first.t_ns - record.sent_ns) / 1e6))
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per stream")
    args = parser.parse_args()
    requests = [BenchRequest(f"w{i}", f"Request {i}: explain batching in one paragraph.", args.max_tokens, "gateway")
                for i in range(64)]
    load = Load("concurrent", 16, ramp_up=0)
    runs: dict[str, list[np.ndarray]] = {"direct": [], "gateway": []}
    with CalibrationServer(50.0, 20.0) as server, contextlib.ExitStack() as stack:
        upstream = server.target()
        gateway = stack.enter_context(GatewayProcess(upstream.url))
        stack.enter_context(own_core(gateway.pid, (server.pid,)))
        sides = (("direct", upstream), ("gateway", Target("gateway", gateway.url, upstream.model)))
        for i in range(args.rounds):
            for side, target in sides if i % 2 == 0 else sides[::-1]:
                runs[side].append(parts(run_load(target, requests, load, progress=False, server_metrics=False)))
    for side, rows in runs.items():
        p50 = np.median(np.concatenate(rows), axis=0)
        print(f"{side}: " + ", ".join(f"{name} {value:.3f} ms" for name, value in zip(COLUMNS, p50)))
        for wave in range(4):
            p50 = np.median(np.concatenate([r[wave * 16:(wave + 1) * 16] for r in rows]), axis=0)
            print(f"  wave {wave + 1}: " + ", ".join(f"{name} {value:.3f}" for name, value in zip(COLUMNS, p50)))


if __name__ == "__main__":
    main()
