"""Helpers shared by the gateway tests (no tests here).

Two small local servers, used only where a real engine cannot produce the condition being tested:
- :func:`hanging_upstream`: a fault injector that accepts TCP connections and never answers (timeouts);
- :class:`StubUpstream`: a minimal OpenAI-compatible streaming server for measuring the *gateway itself*
  (the 2,000-request load test): real engines on 2 CPU cores are far too slow for that many requests.
Everything else runs against the real llama.cpp / vLLM / transformers engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time

import httpx


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


def closed_port() -> int:
    """A port nothing listens on (bound then released): connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
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
def hanging_upstream():
    """Fault injector: accepts connections, reads the request, never answers."""

    async def handler(reader, writer):
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        writer.close()

    server = _LoopThread(handler)
    try:
        yield server
    finally:
        server.stop()


class StubUpstream(_LoopThread):
    """Minimal OpenAI-compatible upstream (HTTP/1.1 keep-alive, SSE streaming) for gateway-only measurements.

    Every completion streams ``tokens`` chunks "tok0 tok1 ..." then a usage chunk and ``[DONE]``.
    ``in_flight`` counts requests being answered right now.
    """

    MODEL = "stub-model"

    def __init__(self, tokens: int = 4, delay_s: float = 0.0):
        self.tokens, self.delay_s = tokens, delay_s
        self.in_flight = 0
        self.served = 0
        super().__init__(self._handle)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                body = await reader.readexactly(length) if length else b""
                if method == "GET":
                    payload = json.dumps({"object": "list", "data": [{"id": self.MODEL, "object": "model"}]}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                                 + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                    await writer.drain()
                    continue
                await self._complete(json.loads(body), path.endswith("/chat/completions"), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _complete(self, request: dict, chat: bool, writer: asyncio.StreamWriter) -> None:
        self.in_flight += 1
        try:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(min(self.tokens, request.get("max_tokens") or self.tokens)):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                choice = {"index": 0, "delta": {"content": f"tok{i} "}} if chat else {"index": 0, "text": f"tok{i} "}
                self._chunk(writer, {"choices": [choice]})
                await writer.drain()
            self._chunk(writer, {"choices": [{"index": 0, "delta": {}, "text": "", "finish_reason": "length"}]})
            self._chunk(writer, {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": self.tokens}})
            data = b"data: [DONE]\n\n"
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
            await writer.drain()
            self.served += 1
        finally:
            self.in_flight -= 1

    @staticmethod
    def _chunk(writer, obj: dict) -> None:
        data = b"data: " + json.dumps(obj).encode() + b"\n\n"
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class RawClient:
    """A lean HTTP/1.1 keep-alive client on asyncio streams, so a load test measures the gateway rather than
    the client library (httpx spends more CPU per request than the gateway does on a 2-core box)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head.split(" ", 2)[1])
        if "transfer-encoding: chunked" in head:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            return status, b"".join(parts)
        length = int(re.search(r"content-length: (\d+)", head).group(1))
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
