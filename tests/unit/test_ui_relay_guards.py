"""The chat UI relay answers only its own page (issue 23, part 1): one test per attack that succeeded before.

Upstreams: the gateway's Ollama routes (the real upstream the course uses) over the harness's calibration engine,
or, where the upstream itself must misbehave (an endless /api/tags, an answer that never comes) or record what
reached it, the calibration fake :class:`ui_support.MisbehavingOllama`. Everything runs in this process (threads).
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from gateway_support import StubUpstream, wait_until
from ui_support import ENDLESS_CAP, MODEL, MisbehavingOllama

from spark_labs.serve import start_gateway
from spark_labs.ui import start_ui
from spark_labs.ui.relay import MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def fake():
    upstream = MisbehavingOllama()
    yield upstream
    upstream.stop()


@pytest.fixture
def ui(fake):
    with start_ui(fake.url) as handle:
        yield handle


def _host(ui, name: str) -> str:
    return f"{name}:{ui.port}"


# --- cross-site requests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},  # a current browser
    {"Origin": "http://attacker.example"},  # a browser without Fetch Metadata
    {"Origin": "null"},  # a sandboxed frame or a data: page
    {"Sec-Fetch-Site": "same-site"},  # another port or subdomain of this site
], ids=["cross-site", "origin-only", "null-origin", "same-site"])
def test_cross_site_text_plain_chat_post_is_refused_before_the_upstream(ui, fake, headers):
    """The attack: a page on any site POSTs text/plain (no CORS preflight) to /api/chat; the relay passed it on."""
    response = httpx.post(ui.url + "/api/chat", content=json.dumps(CHAT),
                          headers={"Content-Type": "text/plain", **headers})
    assert response.status_code == 403, f"relayed: {response.status_code} {response.text[:200]}"
    error = response.json()["error"]
    assert "only its own page" in error and ui.url in error and "\n" not in error
    assert fake.chats() == []


def test_own_page_chat_passes_and_its_origin_reaches_the_upstream(ui, fake):
    """What a browser sends for the page's own fetch; the Origin goes on, so Ollama's OLLAMA_ORIGINS applies too."""
    response = httpx.post(ui.url + "/api/chat", json={**CHAT, "stream": True},
                          headers={"Origin": ui.url, "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 200 and response.text.splitlines()[-1].startswith('{"model"')
    assert [seen.headers.get("origin") for seen in fake.chats()] == [ui.url]


def test_a_client_that_is_not_a_browser_passes_without_origin(ui, fake):
    """curl and scripts send neither Origin nor Sec-Fetch-Site; a browser always does on a cross-site POST."""
    assert httpx.post(ui.url + "/api/chat", json={**CHAT, "stream": True}).status_code == 200
    assert [seen.headers.get("origin") for seen in fake.chats()] == [None]


# --- DNS rebinding ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/api/tags", "/static/chat.js"])
def test_dns_rebinding_host_is_refused_naming_the_flag(ui, fake, path):
    """The attack: attacker.example resolves to 127.0.0.1 after its page loaded; the browser then sends
    ``Host: attacker.example`` (and its own Origin, which is same-origin for that page)."""
    response = httpx.get(ui.url + path, headers={"Host": _host(ui, "attacker.example"),
                                                 "Origin": f"http://{_host(ui, 'attacker.example')}"})
    assert response.status_code == 403, f"served: {response.status_code}"
    error = response.json()["error"]
    assert "'attacker.example'" in error and "spark-labs ui --allow-host attacker.example" in error
    assert fake.requests == []


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]", "chat.localhost"])
def test_localhost_names_are_served(ui, name):
    for path in ("/", "/api/tags"):
        assert httpx.get(ui.url + path, headers={"Host": _host(ui, name)}).status_code == 200


def test_a_configured_host_name_is_served_with_its_own_origin(fake):
    with start_ui(fake.url, allowed_hosts=["Spark.Local"]) as ui:
        own = f"http://{_host(ui, 'spark.local')}"
        chat = httpx.post(ui.url + "/api/chat", json=CHAT, headers={"Host": _host(ui, "spark.local"), "Origin": own})
        assert chat.status_code == 200
        other = httpx.get(ui.url + "/", headers={"Host": _host(ui, "other.local")})
        assert other.status_code == 403
    assert fake.chats()[0].headers["origin"] == own


@pytest.mark.parametrize("host, bound, allowed, ok", [
    ("spark.local:8080", "spark.local", (), True),  # --host spark.local: the bound name
    ("192.168.1.20:8080", "192.168.1.20", (), True),  # the bound address
    ("192.168.1.20:8080", "127.0.0.1", (), False),  # bound to loopback: another address is not this UI
    ("192.168.1.20:8080", "0.0.0.0", (), True),  # bound to every interface: an address cannot be rebound
    ("[fe80::1]:8080", "::", (), True),
    ("spark.local:8080", "0.0.0.0", (), False),  # ...but a name can
    ("spark.local:8080", "0.0.0.0", ("spark.local",), True),
    ("spark.local.:8080", "0.0.0.0", ("spark.local",), True),  # the fully qualified form
    ("localhost.attacker.example:8080", "127.0.0.1", (), False),
    ("", "127.0.0.1", (), False),
])
def test_host_allow_list(host, bound, allowed, ok):
    from spark_labs.ui.guard import PageGuard

    assert (PageGuard(None, bound, allowed).host_refusal(host) is None) == ok


# --- request size ----------------------------------------------------------------------------------------------
def test_a_400_mb_request_body_is_refused_before_it_is_read(ui, fake):
    """The attack: announce 400 MB; the relay waited to read it all, then forwarded it."""
    head = (f"POST /api/chat HTTP/1.1\r\nHost: {_host(ui, '127.0.0.1')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {400_000_000}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", ui.port), timeout=5) as client:
        client.sendall(head + b'{"model": "')
        answer = b""
        try:
            # The server may write the head and the body in separate packets: read until it closes or the
            # body's message is in.
            while (chunk := client.recv(65536)) and b"MiB" not in answer + chunk:
                answer += chunk
            answer = (answer + chunk).decode()
        except TimeoutError:
            pytest.fail("no answer within 5 s: the relay is waiting to read the 400 MB body")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert f"{MAX_REQUEST_BYTES >> 20} MiB" in answer and fake.requests == []


def test_a_chunked_request_body_is_cut_off_at_the_limit(ui, fake):
    """The same without Content-Length: the relay reads up to the limit, answers 413 and closes the connection."""
    pulled = 0

    def body():
        nonlocal pulled
        block = b"x" * (1 << 20)
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(64):  # 64 MiB is enough to tell; 400 would only slow a relay without a limit down
            pulled += len(block)
            yield block
        yield b'"}]}'

    response = httpx.post(ui.url + "/api/chat", content=body(), timeout=30)
    assert response.status_code == 413, f"{response.status_code}: the relay read {pulled >> 20} MiB"
    assert pulled < 32 << 20 and fake.chats() == []
    assert f"{MAX_REQUEST_BYTES >> 20} MiB" in response.json()["error"]


# --- upstream answers ------------------------------------------------------------------------------------------
def test_an_endless_upstream_answer_is_cut_at_the_limit_and_the_upstream_closed(fake):
    """The attack: an upstream /api/tags that never ends was buffered without limit (9 GB and growing)."""
    fake.tags = "endless"
    with start_ui(fake.url) as ui:
        response = httpx.get(ui.url + "/api/tags", timeout=30)
    assert response.status_code == 502, f"{response.status_code}, {len(response.content) >> 20} MiB relayed"
    error = response.json()["error"]
    assert f"more than {MAX_RESPONSE_BYTES >> 20} MiB" in error and fake.url in error
    assert wait_until(fake.left.is_set, timeout=5) and fake.sent < ENDLESS_CAP // 2


def test_the_upstream_is_closed_when_the_browser_leaves_an_unanswered_request(fake):
    """An upstream that never answers /api/tags: once the browser gives up, the relay hangs up too."""
    fake.tags = "silent"
    with start_ui(fake.url) as ui:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(ui.url + "/api/tags", timeout=httpx.Timeout(0.5, connect=5))
        assert wait_until(fake.left.is_set, timeout=3), "the relay still waits for the upstream"


def test_a_non_streaming_chat_stops_upstream_when_the_browser_leaves():
    """The attack: a ``stream: false`` chat kept running upstream after the browser left. Here through the
    gateway's Ollama routes over the calibration engine (50 ms a token, 400 tokens = 20 s if nobody stops it)."""
    stub = StubUpstream(delay_s=0.05)
    try:
        with start_gateway(upstreams=[stub.url], health_interval_s=0, log_level="warning") as gateway, \
                start_ui(gateway.url) as ui:
            body = json.dumps({"model": StubUpstream.MODEL, "messages": [{"role": "user", "content": "hi"}],
                               "stream": False, "options": {"num_predict": 400}}).encode()
            with socket.create_connection(("127.0.0.1", ui.port), timeout=5) as browser:
                browser.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                assert wait_until(lambda: stub.in_flight == 1, timeout=5), "the engine never got the chat"
                time.sleep(0.3)
            left = time.monotonic()
            assert wait_until(lambda: stub.in_flight == 0, timeout=5), "the engine still generates for nobody"
            assert time.monotonic() - left < 3
    finally:
        stub.stop()


def test_a_websocket_is_closed_unanswered():
    """The UI has no WebSocket route: whatever the scope, nothing past the guard sees it."""
    import asyncio

    from spark_labs.ui.app import create_ui_app

    sent = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/api/chat", "headers": [(b"host", b"127.0.0.1")], "query_string": b""}
    asyncio.run(create_ui_app("http://127.0.0.1:9")(scope, receive, send))
    assert [m["type"] for m in sent] == ["websocket.close"] and sent[0]["code"] == 1008
