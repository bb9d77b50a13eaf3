"""Helpers shared by the gateway tests (no tests here).

Two small local servers, used only where a real engine cannot produce the condition being tested:
- :func:`hanging_upstream`: a fault injector that accepts TCP connections and never answers (timeouts);
- :func:`stalling_upstream`: a fault injector that starts a stream, sends one token, then goes silent;
- :func:`echoing_failing_upstream`: a fault injector that answers HTTP 500 quoting the request and a file path,
  the way llama-cpp-python reports errors (no real engine fails a *valid* request on demand);
- :class:`StubUpstream`: a minimal OpenAI-compatible streaming server for measuring the *gateway itself*
  (the 2,000-request load test): real engines on 2 CPU cores are far too slow for that many requests.
- :func:`gateway_process`: ``spark-labs serve`` as its own process (memory and load are measured on it).
Everything else runs against the real llama.cpp / vLLM / transformers engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from fastapi import Request  # at module level: FastAPI resolves the route's (string) annotations here

from spark_labs.bench.selfcheck.calibration import CalibrationUpstream
from spark_labs.engines import free_port
from spark_labs.serve import GenerationRequest
from spark_labs.serve.generation import GenerationStream


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample's values whose labels include ``labels`` (0.0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(4))
    return total


def scrape(gateway, name: str, **labels: str) -> float:
    return metric(httpx.get(gateway.metrics_url, timeout=10).text, name, **labels)


_HELD_PORTS: list[socket.socket] = []


def closed_port() -> int:
    """A port where connecting is refused, for the whole test process: bound but never listening, and held.
    (Released at once, the next server bound to port 0 here, the UI under test itself, could be given it.)"""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD_PORTS.append(s)
    return s.getsockname()[1]


class _LoopThread:
    """An asyncio server running in its own thread and loop."""

    def __init__(self, handler):
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await asyncio.start_server(self.handler, "127.0.0.1", 0, backlog=1024)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            async with self.server:
                await self.server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(main())

    def stop(self) -> None:
        def cancel():
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
        self.loop.call_soon_threadsafe(cancel)
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@contextlib.contextmanager
def _serving(handler):
    server = _LoopThread(handler)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def hanging_upstream():
    """Fault injector: accepts connections, reads the request, never answers."""

    async def handler(reader, writer):
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        writer.close()

    with _serving(handler) as server:
        yield server


class StubUpstream(_LoopThread):
    """Minimal OpenAI-compatible upstream (HTTP/1.1 keep-alive, SSE streaming) for gateway-only measurements:
    the harness's calibration server (no delay by default), run on a thread so the test can read its counts.

    Every completion streams ``max_tokens`` chunks, then a usage chunk and ``[DONE]``.
    ``in_flight`` counts requests being answered right now.
    """

    MODEL = "calibration"

    def __init__(self, delay_s: float = 0.0):
        self.upstream = CalibrationUpstream(ttft_ms=0.0, tpot_ms=delay_s * 1e3)
        super().__init__(self.upstream.handle)

    @property
    def in_flight(self) -> int:
        return self.upstream.in_flight

    @property
    def served(self) -> int:
        return self.upstream.served


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def stalling_upstream():
    """Fault injector: answers 200, streams one chunk of text, then sends nothing more (keeps the socket open)."""

    async def handler(reader, writer):
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            event = b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]}\n\n'
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                         + b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            while await reader.read(65536):
                pass
        writer.close()

    with _serving(handler) as server:
        yield server


@contextlib.contextmanager
def echoing_failing_upstream():
    """Fault injector: every request gets HTTP 500 whose message quotes the request body and a source path,
    as llama-cpp-python's error answers do (e.g. for ``"top_k": -5``)."""

    async def handler(reader, writer):
        with contextlib.suppress(Exception):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                body = await reader.readexactly(length)
                message = f"bad input {body.decode()!r}\n  File \"/srv/engine/server/app.py\", line 376"
                answer = json.dumps({"error": {"message": message, "type": "internal_server_error"}}).encode()
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(answer), answer))
                await writer.drain()
        writer.close()

    with _serving(handler) as server:
        yield server


def add_stream_route(app, path: str = "/my/stream", max_tokens: int = 8) -> None:
    """Lab 05's extension point, as docs/gateway.md shows it: a plain-text streaming route added to
    create_app's app that runs the gateway's shared generation pipeline."""

    @app.post(path)
    async def my_stream(request: Request, body: dict):
        generation = await request.app.state.gateway.generate(request.state.info, GenerationRequest(
            kind="chat", model=body["model"], max_tokens=max_tokens, messages=body["messages"]))

        async def frames():
            async for piece in generation.pieces():
                yield piece.text.encode()

        return GenerationStream(frames(), generation, "text/plain")


@contextlib.contextmanager
def gateway_process(upstream_url: str, log_dir, *args: str, env: dict | None = None):
    """``python -m spark_labs.serve --upstream URL ARGS`` as its own process (so its RSS is its own), with
    authentication off unless ``env`` or ``args`` say otherwise; yields (process, base URL)."""
    port = free_port()
    log = open(Path(log_dir) / f"gateway-{port}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "spark_labs.serve", "--upstream", upstream_url, "--port", str(port),
         "--log-level", "warning", *args], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "SPARK_LABS_GATEWAY_API_KEYS": "", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: process.poll() is not None or answers(url + "/ready"), timeout=60)
        assert process.poll() is None, Path(log.name).read_text()
        yield process, url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def send_head(port: int, start: bytes, filler: bytes, total: int) -> tuple[bytes, int]:
    """Send ``start`` then ``filler`` until ``total`` bytes went out or the server answered; finish the head
    if it never answered. Returns (answer, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0
    try:
        sock.sendall(start)
        sent = len(start)
        with contextlib.suppress(OSError):  # the server may close while we are still sending
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(filler)
                sent += len(filler)
            if sent >= total:
                sock.sendall(b"\r\n\r\n")
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
        return answer, sent
    finally:
        sock.close()


def answers(url: str) -> bool:
    """True when ``url`` answers 200 within a second (False while the server is not up)."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
