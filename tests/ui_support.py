"""Helpers shared by the chat UI relay's tests (no tests here).

:class:`MisbehavingOllama` is a calibration fake of the Ollama API, NOT an engine: real Ollama does not exist on
these machines, and no real server misbehaves on demand (a never-ending ``/api/tags``, a chat that never answers).
It records every request it gets, so a test can tell whether the relay passed an attack on, and notes when its
client (the relay) hangs up. Everything an engine does is tested through the gateway's Ollama routes instead.

:func:`ui_process` starts ``spark-labs ui`` as a user types it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
from gateway_support import _LoopThread, wait_until

MODEL = "fake-ollama"
ENDLESS_CAP = 64 << 20  # the "endless" /api/tags stops here, so a relay without a limit still ends its test
SPARK_LABS = Path(sys.executable).parent / "spark-labs"  # the venv's script, as a user types it


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class MisbehavingOllama(_LoopThread):
    """``tags``: "list" (one model), "endless" (a JSON body that never ends, 64 KiB chunks, up to ENDLESS_CAP),
    "silent" (accepts the request and never answers). ``/api/chat`` with ``"stream": true`` answers a short
    NDJSON answer; with ``"stream": false`` it never answers. ``requests`` lists what arrived, ``sent`` the bytes
    of the last endless answer, ``left`` is set when the client hung up before an answer was complete."""

    def __init__(self, tags: str = "list"):
        self.tags, self.requests, self.sent, self.left = tags, [], 0, threading.Event()
        super().__init__(self._handle)

    @property
    def url(self) -> str:  # an Ollama API root (no /v1)
        return f"http://127.0.0.1:{self.port}"

    def chats(self) -> list[Seen]:
        return [seen for seen in self.requests if seen.path == "/api/chat"]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # keep-alive
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                line, *header_lines = head.split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                method, path = line.split()[:2]
                self.requests.append(Seen(method, path, headers, body))
                if path == "/api/tags" and self.tags == "endless":
                    await self._endless(writer)
                    return
                if (path == "/api/tags" and self.tags == "silent") or (
                        path == "/api/chat" and json.loads(body).get("stream") is False):
                    await reader.read()  # never answer: wait for the client to hang up
                    self.left.set()
                    return
                if path == "/api/chat":
                    lines = [{"model": MODEL, "message": {"role": "assistant", "content": w}, "done": False}
                             for w in ("Hello ", "from ", "the fake.")]
                    lines.append({"model": MODEL, "message": {"role": "assistant", "content": ""}, "done": True,
                                  "eval_count": 3, "eval_duration": 30_000_000, "prompt_eval_count": 5})
                    await _answer(writer, "application/x-ndjson", b"".join(json.dumps(o).encode() + b"\n"
                                                                           for o in lines))
                elif path == "/api/tags":
                    await _answer(writer, "application/json", json.dumps({"models": [
                        {"name": MODEL, "model": MODEL}]}).encode())
                else:
                    await _answer(writer, "application/json", json.dumps({"version": "0.0.0-fake"}).encode())
        writer.close()

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                     b'1\r\n[\r\n')
        block = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        self.sent = 0
        try:
            while self.sent < ENDLESS_CAP:
                writer.write(block)
                await writer.drain()
                self.sent += 65536
        except ConnectionError:
            self.left.set()
            return
        writer.write(b"1\r\n]\r\n0\r\n\r\n")
        await writer.drain()


async def _answer(writer: asyncio.StreamWriter, media_type: str, body: bytes) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                 % (media_type.encode(), len(body), body))
    await writer.drain()


@contextlib.contextmanager
def ui_process(*args: str, timeout: float = 30.0):
    """``spark-labs ui --port auto ARGS`` as a user types it; once the page answers, yields the address it printed
    and its first line (what it found at --ollama)."""
    process = subprocess.Popen([str(SPARK_LABS), "ui", "--port", "auto", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(2)]
        assert "chat UI: http" in lines[1], lines
        url = lines[1].split("UI: ")[1].split()[0].rstrip("/")
        assert wait_until(lambda: _answers(url), timeout=timeout), f"{url} never answered"
        yield url, lines[0]
    finally:
        process.terminate()
        process.wait(30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
