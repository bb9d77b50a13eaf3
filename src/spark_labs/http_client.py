"""A minimal HTTP/1.1 client on asyncio streams, for the two hot paths that stream tokens: the benchmark
harness (``spark_labs.bench``) and the gateway's proxy to its upstreams (``spark_labs.serve``).

Why not httpx or aiohttp: their per-request machinery adds more between "send" and the server seeing
the request than a plain asyncio stream write; ``spark-labs bench overhead --client http11|httpx|aiohttp``
measures the three side by side (docs/bench.md keeps the numbers it printed, with the command). A
harness must be much faster than what it measures, and a gateway should add as little as it can, so
this module does only what inference servers need:
keep-alive connections, a request with a JSON body, and a response body read line by line as it
arrives — chunked, sized, or close-delimited. Plain ``http://`` only (engines and gateways on the same
machine or LAN). Leaving an exchange before its body was read closes the connection, which is how an
upstream learns that its client is gone.

Idle keep-alive connections race with the server's idle timeout: a server closes a connection it has had
idle for a while (uvicorn, so vLLM, SGLang, llama-cpp-python and this course's gateway: 5 s after a
response; the gateway's connection guard: ``request_read_timeout_s`` after connecting) at the moment the
pool hands it out again, and the request meets a closed socket: a reset or an empty answer, never a
response. Two rules keep that from becoming a failed request: a connection idle for ``idle_expiry_s``
(4 s, under those timeouts) is closed instead of reused, and a *reused* connection that fails before a
single byte of the answer arrived is replaced by a new one and the request sent again, once (the server
never read it: it closed the connection as idle). A new connection that fails is an error as before.

Expiring idle connections means a burst that follows a few quiet seconds pays a TCP handshake per request
before its first upstream write. A pool made with ``keep_warm_s`` (the gateway's) re-dials instead: a
connection nearing ``idle_expiry_s`` is replaced by a fresh one, as long as the pool served a request in the
last ``keep_warm_s`` seconds, so it keeps as many connections ready as the last busy moment used. Never while
requests are in flight: a connect then would only delay them (the connection expires instead, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit


class HTTPError(Exception):
    """The connection failed or the server broke the protocol; the message says which."""


class _Stale(Exception):
    """A reused connection ended before any byte of the answer: the server had closed it as idle."""


IDLE_EXPIRY_S = 4.0  # below uvicorn's 5 s keep-alive timeout, the shortest among the servers we talk to


def has_body(method: str, status: int) -> bool:
    """RFC 9112 §6.3: answers to HEAD, 1xx, 204 and 304 end with their headers, whatever Content-Length
    or Transfer-Encoding say (a 304 may carry the Content-Length of the resource it did not send)."""
    return method != "HEAD" and status >= 200 and status not in (204, 304)


class Response:
    def __init__(self, status: int, headers: dict[str, str], reader: asyncio.StreamReader, method: str = "GET"):
        self.status = status
        self.headers = headers
        self._reader = reader
        self._has_body = has_body(method, status)
        self.complete = False  # the whole body was read, so the connection can be reused

    async def _pieces(self) -> AsyncIterator[bytes]:
        """The body as it arrives, de-chunked."""
        reader = self._reader
        if not self._has_body:
            pass
        elif self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await reader.readline()
                if not size_line:
                    raise HTTPError("connection closed in the middle of a chunked response")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()  # the empty line after the last chunk (no trailers expected)
                    break
                data = await reader.readexactly(size + 2)
                yield data[:-2]
        elif "content-length" in self.headers:
            remaining = int(self.headers["content-length"])
            while remaining > 0:
                data = await reader.read(min(remaining, 65536))
                if not data:
                    raise HTTPError("connection closed before the whole body arrived")
                remaining -= len(data)
                yield data
        else:  # delimited by the server closing the connection
            while data := await reader.read(65536):
                yield data
        self.complete = True

    async def lines(self) -> AsyncIterator[bytes]:
        """Complete lines (without the newline) as soon as each one has arrived."""
        pending = b""
        async for piece in self._pieces():
            pending += piece
            *ready, pending = pending.split(b"\n")
            for line in ready:
                yield line.rstrip(b"\r")
        if pending:
            yield pending

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self._pieces()])


class Pool:
    """Keep-alive connections to one ``host:port``, at most ``size`` open at once (see the module docstring
    for how idle ones are expired and stale ones replaced)."""

    def __init__(self, url: str, size: int, connect_timeout_s: float | None = None,
                 idle_expiry_s: float = IDLE_EXPIRY_S, keep_warm_s: float = 0.0):
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"{url}: the benchmark client speaks plain http:// only")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        # (reader, writer, idle since), oldest first; reuse takes the newest
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = deque()
        self._slots = asyncio.Semaphore(size)
        self.connections_opened = 0  # how many TCP handshakes this pool paid for
        self.connect_timeout_s = connect_timeout_s
        self.idle_expiry_s = idle_expiry_s
        self.keep_warm_s = keep_warm_s
        self.last_request = 0.0  # monotonic time of the last request sent
        self.in_use = 0  # requests holding a slot
        self._warmer: asyncio.Task | None = None

    async def _open(self):
        self.connections_opened += 1
        try:
            return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.connect_timeout_s)
        except TimeoutError:
            raise HTTPError(f"could not connect to {self.host}:{self.port} "
                            f"within {self.connect_timeout_s:g} s") from None

    def _reuse(self):
        """An idle connection that is still worth using, or None."""
        idle, now = self._idle, time.monotonic()
        while idle and now - idle[0][2] >= self.idle_expiry_s:  # the server closes these about now
            idle.popleft()[1].close()
        while idle:
            reader, writer, _ = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    def _keep(self, conn) -> None:
        self._idle.append((*conn, time.monotonic()))
        if self.keep_warm_s and self._warmer is None:
            self._warmer = asyncio.get_running_loop().create_task(self._keep_warm())

    async def _keep_warm(self) -> None:
        """Replace the oldest idle connection shortly before it expires, while the pool is in use."""
        try:
            while self._idle:
                since, now = self._idle[0][2], time.monotonic()
                if now - since >= self.idle_expiry_s:  # not replaced in time: expired, as without warming
                    self._idle.popleft()[1].close()
                    continue
                if (wait := since + 0.9 * self.idle_expiry_s - now) > 0:
                    await asyncio.sleep(wait)
                    continue  # a request may have taken it meanwhile
                if now - self.last_request >= self.keep_warm_s:
                    return  # quiet for long enough: let the rest expire
                if self.in_use:  # a connect now would delay requests being served: look again shortly
                    await asyncio.sleep(0.05)
                    continue
                _, old, _ = self._idle.popleft()
                try:
                    self._keep(await self._open())
                finally:
                    old.close()
        except (OSError, HTTPError):
            pass  # the upstream is gone: the next request meets (and reports) that itself
        finally:
            self._warmer = None

    async def preconnect(self, n: int) -> None:
        """Open ``n`` idle connections now, so a burst of requests does not pay for TCP handshakes."""
        try:
            while len(self._idle) < n:
                self._keep(await self._open())
        except OSError:
            pass  # nothing listening: every request will record the connection error itself

    def request(self, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None):
        return _Exchange(self, method, path, body, headers or {})

    async def close(self) -> None:
        self.keep_warm_s = 0.0  # an exchange that ends after this must not start a warmer again
        if (warmer := self._warmer) is not None:
            warmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warmer  # a connect it had under way is closed, not left to the loop's shutdown
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


class _Exchange:
    """``async with pool.request(...) as response``: the connection goes back to the pool only if the
    body was read to the end (otherwise the server may still be sending, so it is closed)."""

    def __init__(self, pool: Pool, method: str, path: str, body: dict | None, headers: dict[str, str]):
        self.pool, self.method, self.path, self.body, self.headers = pool, method, path, body, headers
        self.conn = None
        self.response: Response | None = None

    async def __aenter__(self) -> Response:
        return await self.open()

    async def __aexit__(self, *exc) -> None:
        await self.close(failed=exc[0] is not None)

    async def open(self) -> Response:
        """Send the request and read the status line and headers (for callers that cannot use ``async with``)."""
        pool = self.pool
        await pool._slots.acquire()
        pool.in_use += 1
        pool.last_request = time.monotonic()
        try:
            payload = json.dumps(self.body).encode() if self.body is not None else b""
            head = [f"{self.method} {pool.prefix}{self.path} HTTP/1.1", f"Host: {pool.host}:{pool.port}",
                    "Accept: */*", f"Content-Length: {len(payload)}"]
            if self.body is not None:
                head.append("Content-Type: application/json")
            head += [f"{k}: {v}" for k, v in self.headers.items()]
            request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
            self.conn = pool._reuse()
            if self.conn is not None:
                try:
                    return await self._send(request, reused=True)
                except _Stale:  # closed as idle while we reused it: the server never read the request
                    self.conn[1].close()
            self.conn = await pool._open()
            return await self._send(request, reused=False)
        except BaseException:
            await self._finish(reuse=False)
            raise

    async def _send(self, request: bytes, reused: bool) -> Response:
        pool, (reader, writer) = self.pool, self.conn
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
        except (ConnectionResetError, BrokenPipeError) as exc:
            if reused:
                raise _Stale from exc
            raise
        if not status_line:
            if reused:
                raise _Stale
            raise HTTPError(f"{pool.host}:{pool.port} closed the connection without answering")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        self.response = Response(status, headers, reader, self.method)
        return self.response

    async def close(self, failed: bool = False) -> None:
        reusable = (not failed and self.response is not None and self.response.complete
                    and self.response.headers.get("connection", "").lower() != "close")
        await self._finish(reuse=reusable)

    async def _finish(self, reuse: bool) -> None:
        if self.conn is not None:
            if reuse:
                self.pool._keep(self.conn)
            else:
                self.conn[1].close()
            self.conn = None
        self.pool.in_use -= 1
        self.pool._slots.release()
