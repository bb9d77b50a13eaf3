"""The three HTTP client libraries ``spark-labs bench overhead --client`` compares, each streaming real
chunks from the calibration server (the harness's own synthetic server: it measures clients, not engines)."""

from __future__ import annotations

import pytest

from spark_labs.bench.clients import BenchRequest, Target
from spark_labs.bench.load import Load, run_load
from spark_labs.bench.selfcheck.harness_overhead import measure
from spark_labs.bench.transports import CLIENTS
from spark_labs.engines.ports import free_port

CALIBRATION_MS = (20.0, 2.0)  # the calibration fixture (conftest) serves this timing


@pytest.mark.parametrize("client", CLIENTS)
def test_every_client_streams_every_chunk_in_order(calibration, client):
    requests = [BenchRequest(f"r{i}", "x", 8, "calibration", force_length=False) for i in range(4)]
    result = run_load(calibration.target(client), requests, Load("concurrent", 4, warmup=0), progress=False,
                      server_metrics=False)
    assert all(r.ok for r in result.records), [r.error for r in result.records]
    for record in result.records:
        stamps = [c.t_ns for c in record.content_chunks]
        assert len(stamps) == 8 and stamps == sorted(stamps) and record.output_tokens.server == 8


def test_the_overhead_result_names_the_client_it_measured(calibration):
    """Whether the run is valid depends on the machine's load, so only what it measured is checked here;
    the figures themselves come from `spark-labs bench overhead --client` (docs/bench.md)."""
    result = measure(calibration, streams=2, tokens=4, rounds=1, arrivals="burst", client="aiohttp")
    assert result.client == "aiohttp"
    assert not [reason for reason in result.reasons if "failed" in reason]
    assert result.harness_ttft_p50_ms > 0


@pytest.mark.parametrize("client", ["httpx", "aiohttp"])
def test_a_server_that_is_not_there_is_a_record_error_with_every_client(client):
    target = Target("nobody", f"http://127.0.0.1:{free_port()}", "m", client=client)
    requests = [BenchRequest(f"r{i}", "x", 4, "calibration", force_length=False) for i in range(2)]
    result = run_load(target, requests, Load("concurrent", 2, warmup=0), progress=False)
    assert result.summary.failed == 2
    assert "is the server at" in result.records[0].error


def test_an_unknown_client_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="http11, httpx, aiohttp"):
        Target("t", "http://127.0.0.1:1", "m", client="requests")
