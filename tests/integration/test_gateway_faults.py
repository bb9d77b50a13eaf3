"""Faults and protections, through the real gateway (uvicorn on a port) in front of the real llama.cpp server.

The only non-engine servers here are ``hanging_upstream`` (a fault injector that accepts and never answers)
and ``stalling_upstream`` (one token, then silence), used for the timeout tests because no real engine can
be made to hang on demand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import ollama
import openai
import pytest
from gateway_support import (
    add_stream_route,
    answers,
    closed_port,
    hanging_upstream,
    scrape,
    stalling_upstream,
    wait_until,
)

from spark_labs.engines import free_port, launch
from spark_labs.serve import ProxyBackend, create_app, start_gateway

HI = [{"role": "user", "content": "hi"}]
STORY = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]


@pytest.fixture(scope="module")
def llama(llamacpp_engine):
    return llamacpp_engine


@pytest.fixture(scope="module")
def guarded(llama):
    """One gateway with keys and bounds, shared by the protection tests."""
    gateway = start_gateway(upstreams=[llama.base_url], api_keys=["sekret-1", "sekret-2"],
                            max_body_bytes=4096, max_tokens_limit=64,
                            cors_origins=["http://lab.example"])
    yield gateway
    gateway.stop()


def _chat(gateway, key: str | None = "sekret-1", **body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    payload = {"model": "smollm2-135m-instruct", "messages": HI, "max_tokens": 2, **body}
    return httpx.post(gateway.base_url + "/chat/completions", json=payload, headers=headers, timeout=30)


def _error(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and len(error["message"]) > 20
    return error


def test_api_keys_401_and_per_key_rate_limit_429_with_retry_after(llama, tmp_path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# one key a line\nsekret-2\n")
    with start_gateway(upstreams=[llama.base_url], api_keys=["sekret-1"], api_keys_file=keys_file,
                       rate_limit_rps=0.01, rate_limit_burst=2) as guarded:
        _check_keys_and_rate_limit(guarded, llama)


def _check_keys_and_rate_limit(guarded, llama):
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        openai.OpenAI(base_url=guarded.base_url, api_key="nope", max_retries=0).models.list()
    missing = _chat(guarded, key=None)
    assert missing.status_code == 401 and _error(missing)["code"] == "missing_api_key"
    with pytest.raises(ollama.ResponseError, match="missing API key"):
        ollama.Client(host=guarded.url).chat(model=llama.served_name, messages=HI)

    assert [_chat(guarded).status_code for _ in range(2)] == [200, 200]  # the burst
    limited = _chat(guarded)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "rate limit" in _error(limited)["message"]
    assert _chat(guarded, key="sekret-2").status_code == 200  # buckets are per key
    reply = ollama.Client(host=guarded.url, headers={"Authorization": "Bearer sekret-2"}).chat(
        model=llama.served_name, messages=HI, options={"num_predict": 2})
    assert reply.done
    assert scrape(guarded, "spark_labs_rate_limited_total") >= 1
    assert scrape(guarded, "spark_labs_rejected_total", reason="unauthorized") >= 2


def test_body_limits_413_malformed_json_400_schema_422(guarded):
    auth = {"Authorization": "Bearer sekret-2", "Content-Type": "application/json"}
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 10_000}]}).encode()
    assert httpx.post(guarded.base_url + "/chat/completions", content=big, headers=auth).status_code == 413

    def chunked():  # no Content-Length: the limit must hold while the body streams in
        for _ in range(10):
            yield b" " * 1000

    streamed = httpx.post(guarded.base_url + "/chat/completions", content=chunked(), headers=auth)
    assert streamed.status_code == 413 and "larger than" in _error(streamed)["message"]

    bad = httpx.post(guarded.base_url + "/chat/completions", content=b"{not json", headers=auth)
    assert bad.status_code == 400 and _error(bad)["code"] == "invalid_json"
    for body, field in (({"model": "m"}, "messages"), ({"model": "m", "messages": HI, "max_tokens": -3}, "max_tokens"),
                        ({"model": "m", "messages": HI, "temperature": 9}, "temperature"),
                        ({"model": "m", "messages": HI, "max_tokens": 65}, "limit of 64")):
        response = httpx.post(guarded.base_url + "/chat/completions", json=body, headers=auth)
        assert response.status_code == 422 and field in _error(response)["message"], response.text
    unknown = httpx.post(guarded.base_url + "/chat/completions", headers=auth,
                         json={"model": "gpt-4o", "messages": HI, "max_tokens": 2})
    assert unknown.status_code == 404 and "not served here" in _error(unknown)["message"]
    assert httpx.get(guarded.url + "/nowhere").status_code == 401  # every path needs a key unless public
    assert httpx.get(guarded.url + "/nowhere", headers=auth).status_code == 404


def test_request_ids_are_echoed_or_generated_and_cors_is_configurable(guarded):
    given = httpx.get(guarded.url + "/health", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    assert len(httpx.get(guarded.url + "/health").headers["x-request-id"]) == 32
    preflight = httpx.options(guarded.base_url + "/chat/completions", headers={
        "Origin": "http://lab.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://lab.example"
    other = httpx.get(guarded.url + "/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_queue_full_is_503_with_retry_after(llama):
    with start_gateway(upstreams=[llama.base_url], max_in_flight=1, max_queue=0) as gateway:
        with httpx.stream("POST", gateway.base_url + "/chat/completions", timeout=60, json={
                "model": llama.served_name, "messages": STORY, "max_tokens": 200, "stream": True}) as first:
            lines = first.iter_lines()  # keep a reference: a dropped line iterator closes the response
            next(lines)
            busy = httpx.post(gateway.base_url + "/chat/completions", timeout=30,
                              json={"model": llama.served_name, "messages": HI, "max_tokens": 2})
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
            assert _error(busy)["code"] == "queue_full"
        assert wait_until(lambda: scrape(gateway, "spark_labs_requests_in_flight") == 0)
        assert scrape(gateway, "spark_labs_rejected_total", reason="queue_full") == 1


def test_upstream_that_never_answers_is_504_for_plain_and_streaming_requests():
    """Fault injector: a local TCP server that accepts and never answers (no real engine hangs on demand)."""
    with hanging_upstream() as hang, start_gateway(upstreams=[hang.url], health_interval_s=0,
                                                   upstream_first_byte_timeout_s=0.5) as gateway:
        for stream in (False, True):
            response = httpx.post(gateway.base_url + "/chat/completions", timeout=10, json={
                "model": "any", "messages": HI, "stream": stream})
            assert response.status_code == 504, response.text
            assert "did not answer within 0.5 s" in _error(response)["message"]
        assert scrape(gateway, "spark_labs_upstream_errors_total", kind="timeout") == 2


def test_upstream_that_goes_silent_mid_stream_ends_the_stream_with_a_timeout_event():
    """Fault injector: one token, then silence; the per-read limit ends the stream in-band, once."""
    with stalling_upstream() as stall, start_gateway(upstreams=[stall.url], health_interval_s=0,
                                                     upstream_first_byte_timeout_s=0.5) as gateway:
        started = time.monotonic()
        with httpx.stream("POST", gateway.base_url + "/chat/completions", timeout=10, json={
                "model": "any", "messages": HI, "stream": True}) as response:
            assert response.status_code == 200
            events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        assert time.monotonic() - started < 5
        assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:2]] == ["", "Hel"]
        assert "stopped sending for 0.5 s mid-stream" in json.loads(events[-1])["error"]["message"]
        assert scrape(gateway, "spark_labs_upstream_errors_total", kind="timeout") == 1


def test_one_of_two_upstreams_down_fails_over_without_client_errors_and_opens_its_breaker(llama):
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    with start_gateway(upstreams=[dead, llama.base_url], health_interval_s=0, breaker_failures=2,
                       breaker_cooldown_s=60) as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="-", max_retries=0)
        for _ in range(5):
            reply = client.chat.completions.create(model=llama.served_name, messages=HI, max_tokens=2)
            assert reply.choices[0].message.content is not None
        dead_name = "upstream-1"  # metrics name upstreams by position, never by address
        assert scrape(gateway, "spark_labs_upstream_errors_total", upstream=dead_name, kind="connect") == 2
        states = {u["url"]: u for u in httpx.get(gateway.url + "/ready").json()["upstreams"]}
        assert states[dead]["breaker"] == "open" and states[llama.base_url]["breaker"] == "closed"
        assert scrape(gateway, "spark_labs_upstream_healthy", upstream=dead_name) == 0


def test_health_checks_route_around_a_down_upstream_and_all_down_is_503(llama):
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    with start_gateway(upstreams=[dead, llama.base_url], health_interval_s=0.5) as gateway:
        ready = httpx.get(gateway.url + "/ready").json()
        assert ready["ready"] and [u["healthy"] for u in ready["upstreams"]] == [False, True]
        assert _chat(gateway, key=None).status_code == 200
        assert scrape(gateway, "spark_labs_upstream_errors_total") == 0  # never even tried
    with start_gateway(upstreams=[dead, f"127.0.0.1:{closed_port()}"], health_interval_s=0.5) as gateway:
        ready = httpx.get(gateway.url + "/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert ready.json()["reason"] == "no healthy upstream"
        with pytest.raises(openai.InternalServerError) as caught:
            openai.OpenAI(base_url=gateway.base_url, api_key="-", max_retries=0).chat.completions.create(
                model="any", messages=HI)
        assert caught.value.status_code == 503 and "no healthy upstream" in str(caught.value)
        assert httpx.get(gateway.url + "/health").status_code == 200  # alive, just not ready


def test_upstream_killed_mid_stream_gives_a_clean_error_event_and_is_counted():
    engine = launch("llamacpp", port="auto", progress=False)
    try:
        with start_gateway(upstreams=[engine.base_url], health_interval_s=0.5) as gateway:
            events = []
            with httpx.stream("POST", gateway.base_url + "/chat/completions", timeout=60, json={
                    "model": engine.served_name, "messages": STORY, "max_tokens": 500, "stream": True}) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        events.append(line[6:])
                    if len(events) == 4:
                        os.killpg(engine.pid, signal.SIGKILL)  # the engine dies while it streams
            assert events[-1] != "[DONE]" and "[DONE]" not in events
            error = json.loads(events[-1])["error"]
            assert "mid-stream" in error["message"] and error["code"] == "upstream_error"
            assert all("choices" in json.loads(e) for e in events[:-1])
            assert scrape(gateway, "spark_labs_upstream_errors_total", upstream="upstream-1", kind="mid_stream") == 1
            assert scrape(gateway, "spark_labs_requests_total", route="/v1/chat/completions", status="502") == 1
            assert wait_until(lambda: httpx.get(gateway.url + "/ready").status_code == 503, timeout=5)
            assert _chat(gateway, key=None).status_code == 503
    finally:
        engine.stop()


def _first_line_s(llama) -> float:
    """Seconds until llama.cpp's first streamed line for a 2-token answer (it serves one request at a time)."""
    start = time.monotonic()
    with httpx.stream("POST", llama.base_url + "/chat/completions", timeout=60, json={
            "model": llama.served_name, "messages": HI, "max_tokens": 2, "stream": True}) as direct:
        next(direct.iter_lines())
    return time.monotonic() - start


def test_client_disconnect_mid_stream_cancels_the_upstream_request(llama):
    idle_s = _first_line_s(llama)  # on this machine, under its present load
    with start_gateway(upstreams=[llama.base_url], health_interval_s=0) as gateway:
        pool = gateway.gateway.backend.pool
        with httpx.stream("POST", gateway.base_url + "/chat/completions", timeout=60, json={
                "model": llama.served_name, "messages": STORY, "max_tokens": 1000, "stream": True}) as stream:
            lines = stream.iter_lines()
            for _ in range(6):
                next(lines)
            assert pool.upstreams[0].outstanding == 1
        # The client is gone: the gateway must close its upstream stream, not finish 1,000 tokens.
        assert wait_until(lambda: pool.upstreams[0].outstanding == 0, timeout=5)
        assert wait_until(lambda: scrape(gateway, "spark_labs_requests_in_flight") == 0, timeout=5)
        # llama.cpp serves one request at a time: it answers as fast as when idle only if the abandoned one
        # stopped (the ~990 tokens left of the story take seconds more); measured against the idle answer, not
        # a fixed bound, so a busy machine slows both alike
        assert _first_line_s(llama) < idle_s + 2.0


def test_graceful_shutdown_drains_in_flight_streams_and_refuses_new_work(llama):
    gateway = start_gateway(upstreams=[llama.base_url], drain_timeout_s=30)
    body = {"model": llama.served_name, "messages": STORY, "max_tokens": 120, "stream": True}
    events: list[str] = []
    with httpx.stream("POST", gateway.base_url + "/chat/completions", timeout=60, json=body) as stream:
        lines = stream.iter_lines()
        events.append(next(lines))
        stopper = threading.Thread(target=gateway.stop)
        stopper.start()
        assert wait_until(lambda: gateway.gateway.admission.draining, timeout=5)
        refused = httpx.post(gateway.base_url + "/chat/completions", timeout=10,
                             json={**body, "stream": False, "max_tokens": 2})
        assert refused.status_code == 503 and _error(refused)["code"] == "shutting_down"
        assert httpx.get(gateway.url + "/ready").status_code == 503
        events += [line for line in lines if line]
    stopper.join(30)
    assert events[-1] == "data: [DONE]" and not gateway.is_running()


def test_sigterm_to_the_cli_server_drains_the_running_stream_then_exits(llama, tmp_path):
    """``spark-labs serve`` as its own process: SIGTERM while a stream runs -> the stream completes, then the
    process exits."""
    port = free_port()
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "spark_labs.serve", "--upstream", llama.base_url,
                                    "--port", str(port), "--drain-timeout-s", "30"],
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: answers(url + "/ready"), timeout=60), log.read_text()
        with httpx.stream("POST", url + "/v1/chat/completions", timeout=60, json={
                "model": llama.served_name, "messages": STORY, "max_tokens": 80, "stream": True}) as stream:
            lines = stream.iter_lines()
            next(lines)
            process.send_signal(signal.SIGTERM)
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"
        # uvicorn re-raises the SIGTERM after its graceful shutdown, so the exit status is the signal's.
        assert process.wait(30) in (0, -signal.SIGTERM)
        text = log.read_text()
        assert '"msg": "request"' in text and '"status": 200' in text and "sekret" not in text
    finally:
        if process.poll() is None:
            process.kill()


def test_routes_added_to_the_app_share_the_pipeline_and_metrics(llama):
    """Lab 05's extension point: a custom streaming route on create_app's app, run with start_gateway(app=)."""
    app = create_app(ProxyBackend([llama.base_url]))
    add_stream_route(app, "/my/stream", max_tokens=8)
    with start_gateway(app=app) as gateway:
        reply = httpx.post(gateway.url + "/my/stream", json={"model": llama.served_name, "messages": HI}, timeout=30)
        assert reply.status_code == 200 and reply.text.strip()
        assert scrape(gateway, "spark_labs_requests_total", route="/my/stream", status="200") == 1
        assert scrape(gateway, "spark_labs_completion_tokens_total") >= 1
