"""The gateway's holes from issue 11 (items 1-6), each attacked through the real gateway (uvicorn on a port) in
front of the real llama.cpp server (vLLM for the upstream-4xx pass-through).

The one non-engine server is ``echoing_failing_upstream`` (a fault injector: HTTP 500 quoting the request, as
llama-cpp-python answers a value it cannot use), for the /ready leak test: no real engine fails a valid
request on demand.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time

import httpx
import ollama
import psutil
import pytest
from gateway_support import add_stream_route, answers, echoing_failing_upstream, scrape, wait_until

from spark_labs.engines import free_port
from spark_labs.serve import GatewaySettings, ProxyBackend, create_app, start_gateway

HI = [{"role": "user", "content": "hi"}]
STORY = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]
# SmolLM2's end tokens (<|endoftext|>, <|im_end|>) banned: the engine cannot stop before max_tokens.
NEVER_STOP = {"0": -100, "2": -100}


@pytest.fixture(scope="module")
def llama(llamacpp_engine):
    return llamacpp_engine


def _key(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _breaker_states(gateway) -> list[str]:
    return [u.breaker.state for u in gateway.gateway.backend.pool.upstreams]


# --- 1. protection by default -------------------------------------------------------------------------


def test_routes_added_to_create_app_need_a_key_and_obey_the_rate_limit(llama):
    """Lab 05's extension point: routes added after create_app are protected unless made public."""
    settings = GatewaySettings(api_keys=["k1"], rate_limit_rps=0.01, rate_limit_burst=2,
                               public_paths=["/my/status"])
    app = create_app(ProxyBackend([llama.base_url], settings), settings)

    @app.get("/my/info")
    async def info() -> dict:
        return {"mine": True}

    add_stream_route(app, "/my/stream", max_tokens=2)

    @app.get("/my/status")
    async def status() -> dict:
        return {"up": True}

    @app.get("/ui/index.html")
    async def page() -> dict:
        return {"page": True}

    app.state.gateway.public.add("/ui/*")  # how the web UI makes its static files public
    with start_gateway(app=app) as gateway:
        missing = httpx.get(gateway.url + "/my/info")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
        assert httpx.get(gateway.url + "/my/info", headers=_key("wrong")).status_code == 401
        stream = httpx.post(gateway.url + "/my/stream", json={"model": llama.served_name, "messages": HI})
        assert stream.status_code == 401
        assert httpx.get(gateway.url + "/not/a/route").status_code == 401  # unknown paths too: no route probing

        assert httpx.get(gateway.url + "/my/info", headers=_key("k1")).status_code == 200
        assert httpx.post(gateway.url + "/my/stream", headers=_key("k1"), timeout=30,
                          json={"model": llama.served_name, "messages": HI}).status_code == 200
        limited = httpx.get(gateway.url + "/my/info", headers=_key("k1"))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1

        for public in ("/health", "/ready", "/metrics", "/my/status", "/ui/index.html"):
            assert httpx.get(gateway.url + public).status_code == 200, public
        assert scrape(gateway, "spark_labs_rejected_total", reason="unauthorized") == 4
        assert scrape(gateway, "spark_labs_rate_limited_total") == 1


# --- 2. bad requests must not open the breaker ----------------------------------------------------------


def test_three_bad_sampling_values_are_422_and_leave_the_breaker_closed(llama):
    """Before: llama.cpp answered ``top_k: -5`` with HTTP 500, counted as an upstream failure: three opened the
    breaker and every client got 503."""
    with start_gateway(upstreams=[llama.base_url], health_interval_s=0, breaker_failures=3) as gateway:
        url = gateway.base_url + "/chat/completions"
        for bad in ({"top_k": -5}, {"top_k": -5}, {"top_k": -5}, {"max_tokens": "4"}, {"min_p": 3},
                    {"logit_bias": {"the": 5}}, {"stream": "yes"}):
            response = httpx.post(url, json={"model": llama.served_name, "messages": HI, "max_tokens": 2, **bad})
            assert response.status_code == 422, (bad, response.text)
            assert next(iter(bad)) in response.json()["error"]["message"]
        assert _breaker_states(gateway) == ["closed"]
        assert httpx.post(url, json={"model": llama.served_name, "messages": HI, "max_tokens": 2}).status_code == 200
        assert scrape(gateway, "spark_labs_upstream_errors_total") == 0


def test_prompts_too_long_for_llamacpp_are_refused_for_that_client_only(llama):
    """llama.cpp answers a streamed request whose prompt exceeds its context with an empty 200 body: the
    engine is fine, the request was not. Before: counted as a mid-stream failure, three opened the breaker."""
    too_long = [{"role": "user", "content": "hi " * 3000}]  # ~3,000 tokens; the engine's context is 2,048
    with start_gateway(upstreams=[llama.base_url], health_interval_s=0, breaker_failures=3) as gateway:
        url = gateway.base_url + "/chat/completions"
        for _ in range(3):
            response = httpx.post(url, timeout=60, json={"model": llama.served_name, "messages": too_long,
                                                         "max_tokens": 2})
            assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_empty_answer"
        assert _breaker_states(gateway) == ["closed"]
        assert scrape(gateway, "spark_labs_upstream_errors_total") == 0
        ok = httpx.post(url, timeout=30, json={"model": llama.served_name, "messages": HI, "max_tokens": 2})
        assert ok.status_code == 200


def test_an_upstream_4xx_reaches_that_client_as_a_4xx_and_never_opens_the_breaker(vllm_engine):
    """vLLM refuses a prompt longer than its context with HTTP 400 (before streaming): passed through as 400,
    with vLLM's message, not retried and not counted. Before (issue 11): 502 and an open breaker."""
    too_long = [{"role": "user", "content": "hi " * 3000}]
    with start_gateway(upstreams=[vllm_engine.base_url], health_interval_s=0, breaker_failures=2) as gateway:
        url = gateway.base_url + "/chat/completions"
        for stream in (False, True, False):
            response = httpx.post(url, timeout=60, json={"model": vllm_engine.served_name, "messages": too_long,
                                                         "max_tokens": 2, "stream": stream})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "upstream_rejected" and "context" in error["message"]
        assert _breaker_states(gateway) == ["closed"]
        assert scrape(gateway, "spark_labs_upstream_errors_total") == 0
        ok = httpx.post(url, timeout=60, json={"model": vllm_engine.served_name, "messages": HI, "max_tokens": 2})
        assert ok.status_code == 200


# --- 3. idle and slowloris connections -------------------------------------------------------------------


def _connect_from(address: str, port: int) -> socket.socket:
    """A TCP connection to the gateway from another loopback address (127.0.0.0/8 is all ours on Linux)."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def _closed_by_peer(sock: socket.socket, timeout: float) -> bytes | None:
    """What the gateway sent before closing ``sock`` within ``timeout`` s (None: still open)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def test_idle_and_slowloris_connections_are_closed_and_health_keeps_answering(llama):
    with start_gateway(upstreams=[llama.base_url], request_read_timeout_s=1.0, max_connections=30,
                       max_connections_per_client=20) as gateway:
        idle = [_connect_from("127.0.0.2", gateway.port) for _ in range(25)]
        # Past the per-address cap: a clear 503 at once, the connection closed.
        refused = _closed_by_peer(idle[-1], timeout=2)
        assert refused is not None and refused.startswith(b"HTTP/1.1 503")
        assert b"too many open connections from your address" in refused

        slow = [_connect_from("127.0.0.3", gateway.port) for _ in range(15)]  # global cap: evicts idle ones
        dripping = _connect_from("127.0.0.4", gateway.port)  # a whole head, then a body that never completes
        dripping.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{")
        started = time.monotonic()
        for byte in b"POST /v1/chat/completions HTTP/1.1\r\n"[:3]:  # one byte a second, a head never finished
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(bytes([byte]))
            assert httpx.get(gateway.url + "/health", timeout=2).status_code == 200  # answered during the attack
            time.sleep(0.5)
        answers = [_closed_by_peer(sock, timeout=3) for sock in slow]
        assert all(a is not None for a in answers), "a slowloris connection outlived its read deadline"
        assert any(a.startswith(b"HTTP/1.1 408") and b"request_read_timeout_s" in a for a in answers)
        body_timeout = _closed_by_peer(dripping, timeout=3)
        assert body_timeout is not None and body_timeout.startswith(b"HTTP/1.1 408")
        assert b"request body did not arrive within 1 s" in body_timeout
        assert all(_closed_by_peer(sock, timeout=3) is not None for sock in idle[:20])
        assert time.monotonic() - started < 6  # closed on their 1 s deadline, not by the test's own timeouts

        chat = httpx.post(gateway.base_url + "/chat/completions", timeout=60,
                          json={"model": llama.served_name, "messages": HI, "max_tokens": 2})
        assert chat.status_code == 200
        for sock in [*idle, *slow, dripping]:
            sock.close()
        assert scrape(gateway, "spark_labs_rejected_total", reason="too_many_connections") == 5
        assert scrape(gateway, "spark_labs_rejected_total", reason="read_timeout") >= 2
        assert scrape(gateway, "spark_labs_rejected_total", reason="idle_evicted") >= 1


def _limit_open_files(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def test_a_modest_open_file_limit_survives_hundreds_of_idle_connections(llama, tmp_path):
    """``spark-labs serve`` as its own process with 256 file descriptors, 300 connections that never send a
    byte from three addresses: /health and chat still answer (before: accept() failed, everything hung)."""
    port = free_port()
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "spark_labs.serve", "--upstream", llama.base_url,
                                    "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                   preexec_fn=_limit_open_files(256),
                                   env={**os.environ, "SPARK_LABS_GATEWAY_API_KEYS": ""})
    url = f"http://127.0.0.1:{port}"
    sockets: list[socket.socket] = []
    try:
        assert wait_until(lambda: answers(url + "/health"), timeout=60), log.read_text()
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            sockets += [_connect_from(address, port) for _ in range(100)]
        time.sleep(0.5)
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        chat = httpx.post(url + "/v1/chat/completions", timeout=30,
                          json={"model": llama.served_name, "messages": HI, "max_tokens": 2})
        assert chat.status_code == 200
        assert "max_connections lowered" in log.read_text()
        assert len(psutil.Process(process.pid).net_connections()) < 256
    finally:
        for sock in sockets:
            sock.close()
        process.terminate()
        process.wait(30)


# --- 4. abandoned requests stop the engine; abandoned streams count their tokens ------------------------------


def _engine_cpu_s(engine) -> float:
    process = psutil.Process(engine.pid)
    return sum(p.cpu_times().user + p.cpu_times().system for p in [process, *process.children(recursive=True)])


def test_a_client_that_abandons_a_plain_request_stops_the_engine(llama):
    with start_gateway(upstreams=[llama.base_url], health_interval_s=0) as gateway:
        upstream = gateway.gateway.backend.pool.upstreams[0]
        with pytest.raises(httpx.ReadTimeout):  # the client gives up after 1.5 s and closes its connection
            httpx.post(gateway.base_url + "/chat/completions", timeout=1.5, json={
                "model": llama.served_name, "messages": STORY, "max_tokens": 1500, "logit_bias": NEVER_STOP})
        assert wait_until(lambda: upstream.outstanding == 0, timeout=3), "the engine is still generating"
        # On the engine: its processes go idle (1,500 tokens would keep a core busy for many seconds).
        before = _engine_cpu_s(llama)
        time.sleep(1.0)
        assert _engine_cpu_s(llama) - before < 0.3
        assert wait_until(lambda: scrape(gateway, "spark_labs_requests_total", route="/v1/chat/completions",
                                         status="499") == 1)


def test_a_stream_the_client_left_counts_the_tokens_it_was_sent(llama):
    with start_gateway(upstreams=[llama.base_url], health_interval_s=0) as gateway:
        received = 0
        with httpx.stream("POST", gateway.base_url + "/chat/completions", timeout=60, json={
                "model": llama.served_name, "messages": STORY, "max_tokens": 500, "stream": True,
                "logit_bias": NEVER_STOP}) as stream:
            for line in stream.iter_lines():
                received += line.startswith("data: ")
                if received == 8:
                    break
        assert wait_until(lambda: scrape(gateway, "spark_labs_requests_in_flight") == 0, timeout=5)
        counted = scrape(gateway, "spark_labs_completion_tokens_total")
        # 8 events = the role announcement + 7 text chunks of one token each: what was sent (a few more may have
        # been on their way when the client left), not 0 (before) and not 500.
        assert 7 <= counted <= 40, counted


# --- 5. public readiness ---------------------------------------------------------------------------------


def test_ready_without_a_key_says_ready_and_counts_only(llama):
    secret = "my-private-prompt-fragment"
    with echoing_failing_upstream() as failing, start_gateway(
            upstreams=[failing.url, llama.base_url], api_keys=["ops-key"], health_interval_s=0) as gateway:
        for _ in range(2):  # the failing upstream is tried (and fails) at least once
            httpx.post(gateway.base_url + "/chat/completions", headers=_key("ops-key"), timeout=30,
                       json={"model": llama.served_name, "messages": [{"role": "user", "content": secret}],
                             "max_tokens": 2})
        assert scrape(gateway, "spark_labs_upstream_errors_total", kind="http_5xx") >= 1

        public = httpx.get(gateway.url + "/ready")
        assert public.status_code == 200
        assert set(public.json()) == {"ready", "status", "upstreams_total", "upstreams_available"}
        assert public.json()["upstreams_total"] == 2
        for wrong in ({}, _key("wrong")):
            text = httpx.get(gateway.url + "/ready", headers=wrong).text
            assert secret not in text and failing.url not in text and ".py" not in text

        detail = httpx.get(gateway.url + "/ready", headers=_key("ops-key")).json()
        states = {u["url"]: u for u in detail["upstreams"]}
        assert states[failing.url]["last_error"] == "answered HTTP 500"
        assert secret not in json.dumps(detail) and "/srv/engine" not in json.dumps(detail)


# --- 6. Ollama and error typing ------------------------------------------------------------------------


def test_ollama_empty_messages_strict_types_and_a_key_hint_for_ollama_clients(llama):
    with start_gateway(upstreams=[llama.base_url], api_keys=["k1"]) as gateway:
        client = ollama.Client(host=gateway.url, headers=_key("k1"))
        with pytest.raises(ollama.ResponseError) as empty:
            client.chat(model=llama.served_name, messages=[])
        assert empty.value.status_code == 400 and "at least one message" in str(empty.value)
        strict = httpx.post(gateway.url + "/api/chat", headers=_key("k1"), json={
            "model": llama.served_name, "messages": HI, "stream": False, "options": {"num_predict": "4"}})
        assert strict.status_code == 422 and "num_predict" in strict.json()["error"]

        with pytest.raises(ollama.ResponseError) as no_key:
            ollama.Client(host=gateway.url).chat(model=llama.served_name, messages=HI)
        assert no_key.value.status_code == 401
        assert "ollama.Client" in str(no_key.value) and "openai" not in str(no_key.value)

        wrong_method = httpx.get(gateway.base_url + "/chat/completions", headers=_key("k1"))
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["type"] == "invalid_request_error"
        assert wrong_method.json()["error"]["code"] == "method_not_allowed"
        assert "use POST" in wrong_method.json()["error"]["message"]
