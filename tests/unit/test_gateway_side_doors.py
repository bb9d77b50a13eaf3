"""The gateway's side doors from issue 23, each attacked through a real server (uvicorn in a thread, port 0)
in front of the calibration upstream (a thread too): WebSocket routes, oversized request heads, a spoofed
X-Forwarded-For, guessing keys, upstream addresses and private routes on public endpoints, OPTIONS probes."""

from __future__ import annotations

import re
import socket
import time

import httpx
import pytest
from fastapi import WebSocket
from gateway_support import StubUpstream, closed_port, send_head, wait_until
from pydantic import BaseModel
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from spark_labs.serve import GatewaySettings, ProxyBackend, create_app, start_gateway

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def stub():
    upstream = StubUpstream()
    yield upstream
    upstream.stop()


def _settings(**given) -> GatewaySettings:
    return GatewaySettings(**{"api_keys": [], "health_interval_s": 0, "log_level": "warning", **given})


def _gateway(stub, app_routes=None, **given):
    settings = _settings(**given)
    app = create_app(ProxyBackend([stub.url], settings), settings)
    if app_routes is not None:
        app_routes(app)
    return start_gateway(app=app)


def _key(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


# --- WebSocket routes ----------------------------------------------------------------------------------


def _add_echo_socket(app) -> None:
    @app.websocket("/my/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text.upper())


def _ws_status(url: str, headers: dict | None = None) -> int:
    with pytest.raises(InvalidStatus) as refused, ws_connect(url, additional_headers=headers or {}, open_timeout=5):
        pass
    return refused.value.response.status_code


def test_websocket_routes_need_the_key_and_count_against_the_rate_limit(stub):
    with _gateway(stub, _add_echo_socket, api_keys=["k1"], rate_limit_rps=0.01, rate_limit_burst=2,
                  request_read_timeout_s=1) as gw:
        url = gw.url.replace("http://", "ws://") + "/my/ws"
        assert _ws_status(url) == 401
        assert _ws_status(url, _key("wrong")) == 401
        with ws_connect(url, additional_headers=_key("k1"), open_timeout=5) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "HI"
            time.sleep(1.5)  # longer than request_read_timeout_s: an open WebSocket is not a slow request head
            ws.send("still here")
            assert ws.recv(timeout=5) == "STILL HERE"
        with ws_connect(url, additional_headers=_key("k1"), open_timeout=5):
            pass
        assert _ws_status(url, _key("k1")) == 429  # burst of 2 used up: same bucket as HTTP requests
        assert httpx.get(gw.url + "/v1/models", headers=_key("k1")).status_code == 429
        guard = gw.server.config.http.guard
        assert wait_until(lambda: not guard.per_client, timeout=5), guard.per_client  # upgraded ones released


# --- request heads -------------------------------------------------------------------------------------


def test_a_44_mb_header_is_refused_with_431_before_it_is_read(stub):
    with _gateway(stub, api_keys=["k1"]) as gw:
        started = time.perf_counter()
        answer, sent = send_head(gw.port, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ", b"a" * 65536,
                                  44 * 2**20)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        # (what the client got to send includes a few MiB of loopback socket buffers; the gateway's memory is
        # measured in tests/integration/test_gateway_side_doors.py)
        assert sent < 16 * 2**20, f"{sent / 2**20:.0f} MiB of one header went in before the refusal"
        assert time.perf_counter() - started < 5
        many = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(500))
        answer, _ = send_head(gw.port, many, b"", 0)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        long_url = b"GET /v1/models?" + b"q" * 200_000 + b" HTTP/1.1\r\nHost: x"
        answer, _ = send_head(gw.port, long_url, b"", 0)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert httpx.get(gw.url + "/health").status_code == 200


def _status_line(sock: socket.socket) -> bytes:
    """Read one whole response (head and Content-Length body); return its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_header_limits_leave_big_bodies_and_ordinary_heads_alone(stub):
    with _gateway(stub, api_keys=["k1"], max_header_bytes=4096) as gw:
        big = [{"role": "user", "content": "x" * 350_000}]  # one head + 350 kB body, read in 256 kB chunks
        reply = httpx.post(gw.base_url + "/chat/completions", headers=_key("k1"), timeout=30,
                           json={"model": "calibration", "messages": big, "max_tokens": 2})
        assert reply.status_code == 200, reply.text
        headers = {f"X-Extra-{i}": "v" * 40 for i in range(40)}  # 40 headers, ~2.5 kB
        assert httpx.get(gw.base_url + "/models", headers={**headers, **_key("k1")}).status_code == 200
        # A body that arrives after its answer (401 before it was read) is still a body, and the head after
        # it is still measured: neither a false 431 nor a way round the limit.
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
            body = b"x" * 300_000
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            assert _status_line(sock) == b"HTTP/1.1 401 Unauthorized"
            sock.sendall(body + b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n\r\n")
            assert _status_line(sock) == b"HTTP/1.1 200 OK"
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000)
            assert _status_line(sock) == b"HTTP/1.1 431 Request Header Fields Too Large"


# --- X-Forwarded-For --------------------------------------------------------------------------------------


def _statuses(gw, path: str, forwarded: list[str], headers: dict | None = None) -> list[int]:
    with httpx.Client() as client:
        return [client.get(gw.url + path, headers={"X-Forwarded-For": f, **(headers or {})}).status_code
                for f in forwarded]


def test_a_rotating_x_forwarded_for_does_not_reset_the_rate_limit(stub):
    with _gateway(stub, rate_limit_rps=0.01, rate_limit_burst=2) as gw:
        assert _statuses(gw, "/v1/models", [f"10.0.0.{i}" for i in range(5)]) == [200, 200, 429, 429, 429]


def test_x_forwarded_for_is_believed_from_a_trusted_proxy_only(stub):
    with _gateway(stub, rate_limit_rps=0.01, rate_limit_burst=2, trusted_proxies=["127.0.0.1"]) as gw:
        assert _statuses(gw, "/v1/models", [f"10.0.0.{i}" for i in range(5)]) == [200] * 5  # five clients
        assert _statuses(gw, "/v1/models", ["10.0.1.1"] * 3) == [200, 200, 429]
        # a client cannot pick its address by prepending one: the proxy appends what it saw
        assert _statuses(gw, "/v1/models", ["1.2.3.4, 10.0.1.1"]) == [429]


# --- guessing keys --------------------------------------------------------------------------------------


def test_wrong_keys_are_throttled_per_address_after_the_limit(stub):
    with _gateway(stub, api_keys=["k1"], trusted_proxies=["127.0.0.1"], max_auth_failures=10,
                  auth_failure_window_s=60) as gw, httpx.Client() as client:
        attacker, other = {"X-Forwarded-For": "10.9.9.9"}, {"X-Forwarded-For": "10.1.1.1"}
        assert client.get(gw.url + "/v1/models", headers={**attacker, **_key("k1")}).status_code == 200
        codes = [client.get(gw.url + "/v1/models", headers={**attacker, **_key(f"guess-{i}")}).status_code
                 for i in range(1000)]
        assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
        refused = client.get(gw.url + "/v1/models", headers={**attacker, **_key("guess-x")})
        assert refused.json()["error"]["code"] == "too_many_failed_keys"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # the address is locked out whatever key it sends now: a 200 for the right one would end the guessing
        assert client.get(gw.url + "/v1/models", headers={**attacker, **_key("k1")}).status_code == 429
        # /ready's details are a key oracle too: a locked-out address gets the public answer
        assert "upstreams" not in client.get(gw.url + "/ready", headers={**attacker, **_key("k1")}).json()
        # key holders elsewhere are untouched, and so are requests without a key from anywhere
        assert client.get(gw.url + "/v1/models", headers={**other, **_key("k1")}).status_code == 200
        assert client.get(gw.url + "/health", headers=attacker).status_code == 200


def test_ready_counts_wrong_keys_as_failed_attempts(stub):
    with _gateway(stub, api_keys=["k1"], max_auth_failures=3) as gw, httpx.Client() as client:
        for i in range(3):
            assert "upstreams" not in client.get(gw.url + "/ready", headers=_key(f"guess-{i}")).json()
        assert client.get(gw.url + "/v1/models", headers=_key("k1")).status_code == 429


# --- what public endpoints say ------------------------------------------------------------------------


def test_metrics_and_errors_name_upstreams_without_their_addresses(stub):
    dead = closed_port()
    settings = _settings(api_keys=["k1"], breaker_failures=100)
    app = create_app(ProxyBackend([f"http://127.0.0.1:{dead}/v1", stub.url], settings), settings)
    with start_gateway(app=app) as gw:
        for _ in range(3):  # least outstanding, ties taken in turn: the dead one is tried at least once
            reply = httpx.post(gw.base_url + "/chat/completions", headers=_key("k1"),
                               json={"model": "calibration", "messages": HI, "max_tokens": 2})
            assert reply.status_code == 200  # failed over from the dead upstream
        metrics = httpx.get(gw.metrics_url).text
        assert 'spark_labs_upstream_healthy{upstream="upstream-1"}' in metrics
        assert 'spark_labs_upstream_errors_total{kind="connect",upstream="upstream-1"}' in metrics
        for address in (str(dead), str(stub.port), "127.0.0.1"):
            assert address not in metrics
        detail = httpx.get(gw.url + "/ready", headers=_key("k1")).json()["upstreams"]  # operators: the map
        assert [(u["name"], u["url"]) for u in detail] == [("upstream-1", f"http://127.0.0.1:{dead}/v1"),
                                                          ("upstream-2", stub.url)]
    alone = _settings(api_keys=["k1"])
    app = create_app(ProxyBackend([f"http://127.0.0.1:{dead}/v1"], alone), alone)
    with start_gateway(app=app) as gw:
        failed = httpx.post(gw.base_url + "/chat/completions", headers=_key("k1"),
                            json={"model": "calibration", "messages": HI, "max_tokens": 2})
        assert failed.status_code == 502 and str(dead) not in failed.text and "upstream-1" in failed.text


def test_upstream_addresses_on_metrics_when_the_operator_asks(stub):
    with _gateway(stub, metrics_upstream_addresses=True) as gw:
        assert f'spark_labs_upstream_healthy{{upstream="127.0.0.1:{stub.port}"}}' in httpx.get(gw.metrics_url).text


class SecretBody(BaseModel):
    launch_code: str


def _add_private_and_public_routes(app) -> None:
    @app.post("/admin/rotate")
    async def rotate(body: SecretBody) -> dict:
        return {"ok": True}

    @app.get("/my/status")
    async def status() -> dict:
        return {"up": True}


def test_openapi_lists_private_routes_to_key_holders_only(stub):
    with _gateway(stub, _add_private_and_public_routes, api_keys=["k1"], public_paths=["/my/status"]) as gw:
        public = httpx.get(gw.url + "/openapi.json")
        assert public.status_code == 200
        paths = public.json()["paths"]
        assert "/admin/rotate" not in paths and "SecretBody" not in public.text
        assert {"/v1/chat/completions", "/api/chat", "/my/status", "/health"} <= set(paths)  # the published API
        full = httpx.get(gw.url + "/openapi.json", headers=_key("k1")).json()
        assert "/admin/rotate" in full["paths"] and "SecretBody" in full["components"]["schemas"]
        assert httpx.get(gw.url + "/docs").status_code == 200


def test_options_requests_need_a_key_so_they_cannot_map_private_routes(stub):
    def routes(app):
        _add_private_and_public_routes(app)

    with _gateway(stub, routes, api_keys=["k1"], cors_origins=["https://ui.example"]) as gw:
        for path in ("/admin/rotate", "/admin/nothing-here"):
            assert httpx.request("OPTIONS", gw.url + path).status_code == 401
        preflight = httpx.request("OPTIONS", gw.base_url + "/chat/completions", headers={
            "Origin": "https://ui.example", "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200  # CORS preflights are answered before the key check
