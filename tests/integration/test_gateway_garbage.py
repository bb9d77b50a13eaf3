"""A gateway request leaves nothing for the garbage collector: every object it made is freed by reference
counting. Each object left in a reference cycle brings the next collection closer, and a collection stops
every request for a fraction of a millisecond (more for the older generations) — inside a burst, that
pause is added to every request queued behind it (docs/gateway.md, "What it costs").

The app is called directly (ASGI, in this process) in front of the calibration server in its own process, so
the only cycles this process makes while requests run are the gateway's.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json

import pytest

from spark_labs.serve.app import create_app
from spark_labs.serve.proxy import ProxyBackend
from spark_labs.serve.settings import GatewaySettings

CALIBRATION_MS = (0.0, 0.0)
REQUESTS = 40


def _scope(path: str, body: bytes) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2), "headers": [(b"host", b"gateway"), (b"content-type", b"application/json"),
                                                    (b"content-length", str(len(body)).encode())]}


async def _cycles_per_request(upstream: str, path: str, body: dict) -> tuple[float, collections.Counter]:
    settings = GatewaySettings(api_keys=[], health_interval_s=0, log_level="warning")
    app = create_app(ProxyBackend([upstream], settings), settings)
    raw = json.dumps(body).encode()
    statuses = []

    async def call() -> None:
        sent = False

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.Event().wait()  # the client stays connected

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(_scope(path, raw), receive, send)

    async with app.router.lifespan_context(app):
        for _ in range(5):  # first-use caches, the upstream connection
            await call()
        await asyncio.sleep(0.05)
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable goes to gc.garbage
        try:
            for _ in range(REQUESTS):
                await call()
            await asyncio.sleep(0.05)  # cancelled watcher tasks finish
            gc.collect()
            left = list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert set(statuses) == {200}
    return len(left) / REQUESTS, collections.Counter(type(o).__name__ for o in left)


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"model": "calibration", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": 4, "stream": True}),
    ("/v1/chat/completions", {"model": "calibration", "messages": [{"role": "user", "content": "hi"}],
                              "max_tokens": 4}),
    ("/api/chat", {"model": "calibration", "messages": [{"role": "user", "content": "hi"}],
                   "options": {"num_predict": 4}}),
], ids=["openai stream", "openai plain", "ollama stream"])
def test_a_request_leaves_no_reference_cycle_behind(calibration, path, body):
    per_request, kinds = asyncio.run(_cycles_per_request(calibration.url, path, body))
    assert per_request == 0, f"{per_request:.1f} objects per request left in cycles: {kinds.most_common(8)}"
