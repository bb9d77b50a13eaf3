"""The HTTP client libraries the harness can send requests with, behind the interface of
:class:`spark_labs.http_client.Pool` (``request(...)`` as an async context manager whose response has
``status``, ``read()`` and ``lines()``; ``preconnect``; ``close``).

The harness always measures with ``http11``. The other two exist so that ``spark-labs bench overhead
--client httpx|aiohttp`` can show, on the machine at hand, what a general-purpose client adds between
"send" and the first token — the reason ``http11`` was written. Each is used the way its documentation
shows (one client/session with a connection limit, streamed responses read line by line).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from ..http_client import HTTPError, Pool

CLIENTS = ("http11", "httpx", "aiohttp")


def make_client(name: str, url: str, size: int):
    """A keep-alive client for ``url`` with at most ``size`` connections, from library ``name``."""
    if name == "http11":
        return Pool(url, size)
    if name == "httpx":
        return HttpxPool(url, size)
    if name == "aiohttp":
        return AiohttpPool(url, size)
    raise ValueError(f"unknown HTTP client {name!r}; choose one of {', '.join(CLIENTS)}")


class _Warmable:
    """Opening connections ahead of a burst: the libraries have no call for it, so ``n`` concurrent GETs
    of ``/health`` make them open ``n`` keep-alive connections (any answer will do)."""

    async def preconnect(self, n: int) -> None:
        async def one() -> None:
            with contextlib.suppress(Exception):
                async with self.request("GET", "/health") as response:
                    await response.read()

        await asyncio.gather(*(one() for _ in range(n)))


class HttpxPool(_Warmable):
    def __init__(self, url: str, size: int):
        import httpx

        self._client = httpx.AsyncClient(base_url=url, timeout=None,
                                         limits=httpx.Limits(max_connections=size, max_keepalive_connections=size))

    @contextlib.asynccontextmanager
    async def request(self, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None):
        import httpx

        request = self._client.build_request(method, path, json=body, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:  # the harness records HTTPError as a failed request
            raise HTTPError(f"{type(exc).__name__}: {exc}") from exc
        try:
            yield _Streamed(response.status_code, response.aread, _encoded(response.aiter_lines()))
        finally:
            await response.aclose()

    async def close(self) -> None:
        await self._client.aclose()


class AiohttpPool(_Warmable):
    def __init__(self, url: str, size: int):
        try:
            import aiohttp
        except ImportError:
            raise ValueError("--client aiohttp needs the aiohttp package: pip install aiohttp "
                             "(it comes with the dev extra: pip install -e '.[dev]')") from None
        self._url = url.rstrip("/")
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=size),
                                              timeout=aiohttp.ClientTimeout(total=None))

    @contextlib.asynccontextmanager
    async def request(self, method: str, path: str, body: dict | None = None, headers: dict[str, str] | None = None):
        import aiohttp

        try:
            response = await self._session.request(method, self._url + path, json=body, headers=headers)
        except aiohttp.ClientError as exc:  # the harness records HTTPError as a failed request
            raise HTTPError(f"{type(exc).__name__}: {exc}") from exc
        try:
            # aiohttp's StreamReader yields one line at a time, newline included.
            yield _Streamed(response.status, response.read, _stripped(response.content))
        finally:
            response.release()

    async def close(self) -> None:
        await self._session.close()



class _Streamed:
    """A library's streamed response seen through the three members the harness uses of
    :class:`spark_labs.http_client.Response`: ``status``, ``read()`` and ``lines()`` (bytes, no newline)."""

    def __init__(self, status: int, read: Callable[[], Awaitable[bytes]], lines: AsyncIterator[bytes]):
        self.status = status
        self.read = read
        self._lines = lines

    def lines(self) -> AsyncIterator[bytes]:
        return self._lines


async def _encoded(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield line.encode()


async def _stripped(lines: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield line.rstrip(b"\r\n")
