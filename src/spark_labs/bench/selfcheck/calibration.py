"""A streaming server with a fixed TTFT and TPOT, for measuring the *harness* (never an engine).

It speaks just enough HTTP/1.1 + OpenAI SSE for our client: keep-alive, chunked transfer, one token
per event. Each token's text is the server's ``perf_counter_ns()`` at the moment it was written —
the same clock the client stamps arrivals with — so after a run we know, per chunk, how long the
bytes took to reach our timestamp. The first token also carries when the request arrived, which
splits TTFT into the client's send path, the server's own timer slack, and the client's read path. Chunk
*k* of a request is scheduled at an absolute deadline ``received + TTFT + k × TPOT`` (no drift from
sleeping in a loop).

    python -m spark_labs.bench.selfcheck.calibration --port 9100 --ttft-ms 50 --tpot-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

_HEADERS = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"cache-control: no-cache\r\n\r\n")


_MODELS = json.dumps({"object": "list", "data": [{"id": "calibration", "object": "model"}]}).encode()


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(text: str, chat: bool) -> bytes:
    choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
    return _chunk(b"data: " + json.dumps({"object": "chat.completion.chunk", "choices": [choice]}).encode() + b"\n\n")


async def _sleep_until(deadline_ns: int) -> None:
    delay = (deadline_ns - time.perf_counter_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


class CalibrationUpstream:
    """The connection handler (for ``asyncio.start_server``), with counts of what it is serving:
    ``in_flight`` streams right now and ``served`` streams finished."""

    def __init__(self, ttft_ms: float, tpot_ms: float):
        self.ttft_ns, self.tpot_ns = int(ttft_ms * 1e6), int(tpot_ms * 1e6)
        self.in_flight = 0
        self.served = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                received = time.perf_counter_ns()
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if request_line.startswith("GET"):  # /health, /v1/models: enough for a gateway's health checks
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\ncontent-type: application/json\r\n\r\n%s"
                                 % (len(_MODELS), _MODELS))
                    await writer.drain()
                    continue
                tokens = int(json.loads(body or b"{}").get("max_tokens") or 16)
                path = request_line.split()[1]
                text_completion = path.endswith("/completions") and not path.endswith("/chat/completions")
                await self._stream(writer, received, tokens, chat=not text_completion)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, received_ns: int, tokens: int, chat: bool) -> None:
        self.in_flight += 1
        try:
            writer.write(_HEADERS)
            for k in range(tokens):
                deadline = received_ns + self.ttft_ns + k * self.tpot_ns
                await _sleep_until(deadline)
                # "<received>:<deadline>:<written>" on every chunk, all perf_counter_ns.
                writer.write(_event(f"{received_ns}:{deadline}:{time.perf_counter_ns()} ", chat))
                await writer.drain()
            usage = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": tokens,
                                              "total_tokens": tokens + 1}}
            writer.write(_chunk(b"data: " + json.dumps(usage).encode() + b"\n\n") + _chunk(b"data: [DONE]\n\n")
                         + b"0\r\n\r\n")
            await writer.drain()
            self.served += 1
        finally:
            self.in_flight -= 1


async def serve(host: str, port: int, ttft_ms: float, tpot_ms: float) -> None:
    server = await asyncio.start_server(CalibrationUpstream(ttft_ms, tpot_ms).handle, host, port, backlog=1024)
    print(f"calibration server on http://{host}:{port} · TTFT {ttft_ms} ms · TPOT {tpot_ms} ms", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--tpot-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.ttft_ms, args.tpot_ms))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
