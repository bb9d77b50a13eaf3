"""Issue 23's gateway attacks against ``spark-labs serve`` as deployed: its own process (so its memory is its
own), configured by its command line, in front of the calibration upstream (the gateway is what is measured:
no engine serves thousands of requests on 2 cores in test time)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from gateway_support import StubUpstream, gateway_process, send_head

BIG = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: "


@pytest.fixture(scope="module")
def stub():
    upstream = StubUpstream()
    yield upstream
    upstream.stop()


def test_eight_44_mb_headers_are_refused_and_cost_the_gateway_no_memory(stub, tmp_path):
    with gateway_process(stub.url, tmp_path, env={"SPARK_LABS_GATEWAY_API_KEYS": "k1"}) as (process, url):
        port = int(url.rsplit(":", 1)[1])
        memory = psutil.Process(process.pid)
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer k1"}).status_code == 200
        before = memory.memory_info().rss
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: send_head(port, BIG, b"a" * 65536, 44 * 2**20), range(8)))
        grown = (memory.memory_info().rss - before) / 2**20
        print(f"RSS {before / 2**20:.1f} MiB, {grown:+.1f} MiB after 8 x 44 MB headers")
        assert [answer[:12] for answer, _ in answers] == [b"HTTP/1.1 431"] * 8
        assert grown < 32, f"the gateway grew by {grown:.0f} MiB"
        assert httpx.get(url + "/health").status_code == 200


def test_forwarded_for_counts_only_from_a_trusted_proxy_and_wrong_keys_are_throttled(stub, tmp_path):
    limited = ("--rate-limit-rps", "0.01", "--rate-limit-burst", "2")
    rotating = [{"X-Forwarded-For": f"10.0.0.{i}"} for i in range(4)]
    with gateway_process(stub.url, tmp_path, *limited) as (_, url), httpx.Client() as client:
        assert [client.get(url + "/v1/models", headers=h).status_code for h in rotating] == [200, 200, 429, 429]
        assert str(stub.port) not in client.get(url + "/metrics").text  # upstreams by name on the public scrape
    with gateway_process(stub.url, tmp_path, *limited, "--trusted-proxy", "127.0.0.1") as (_, url), \
            httpx.Client() as client:
        assert [client.get(url + "/v1/models", headers=h).status_code for h in rotating] == [200] * 4
    with gateway_process(stub.url, tmp_path, env={"SPARK_LABS_GATEWAY_API_KEYS": "k1"}) as (_, url), \
            httpx.Client() as client:
        codes = [client.get(url + "/v1/models", headers={"Authorization": f"Bearer guess-{i}"}).status_code
                 for i in range(1000)]
        assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}  # the default: 10 wrong keys a minute


def test_2000_requests_at_64_with_steady_arrivals_through_the_benchmarked_gateway_all_succeed():
    """``spark-labs bench gateway --upstream calibration --concurrency 64`` as it runs its steady-arrival
    side: 256 connections opened ahead (one client address), arrivals that leave most of them idle for
    seconds while the gateway closes idle ones (its read deadline, here 1 s to make that constant), requests
    sent on whichever connection the pool hands out. Every request must succeed."""
    from spark_labs.bench.clients import BenchRequest, Target
    from spark_labs.bench.load import Load, run_load
    from spark_labs.bench.selfcheck.gateway_overhead import GatewayProcess
    from spark_labs.bench.selfcheck.harness_overhead import CalibrationServer

    requests = [BenchRequest(f"g{i}", f"Request {i}: explain batching.", 32, "gateway") for i in range(2000)]
    with CalibrationServer(50, 20) as server, \
            GatewayProcess(server.url, ("--request-read-timeout-s", "1")) as gateway:
        target = Target("gateway", gateway.url, "calibration")
        result = run_load(target, requests, Load("poisson", 0, rate=64 / 0.67, seed=1), progress=False,
                          server_metrics=False)
        metrics = httpx.get(gateway.url + "/metrics").text
    errors = [record.error for record in result.records if record.error]
    print(f"{len(requests)} requests, {len(errors)} failed; gateway: "
          f"{[line for line in metrics.splitlines() if line.startswith('spark_labs_rejected_total')]}")
    assert errors == [], errors[:3]
    assert 'spark_labs_rejected_total{reason="idle_timeout"}' in metrics  # idle connections were closed meanwhile
