"""spark_labs.http_client against a real asyncio HTTP server that answers with exactly the bytes a test gives."""

from __future__ import annotations

import asyncio

import pytest

from spark_labs.http_client import HTTPError, Pool

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _exchange(first_answer: bytes, method: str = "GET") -> tuple[int, bytes, int, bytes, int]:
    """Two requests on one keep-alive connection: the first gets ``first_answer``, the second a plain
    200. Returns both statuses and bodies, and how many connections the pool opened."""
    answers = [first_answer, OK]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        await reader.read()  # keep the connection open until the client closes it
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool(f"http://127.0.0.1:{port}", 1)
    try:
        async with asyncio.timeout(5):
            async with pool.request(method, "/first") as response:
                first = (response.status, await response.read())
            async with pool.request("GET", "/second") as response:
                second = (response.status, await response.read())
    finally:
        await pool.close()
        server.close()
    return (*first, *second, pool.connections_opened)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 204 No Content\r\n\r\n",  # no length at all: the body must not be read "until close"
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",  # the length of a resource it did not send
    b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
], ids=["204", "304-with-length", "204-chunked-header"])
def test_bodyless_answers_end_at_their_headers_and_the_connection_is_reused(answer):
    status, body, next_status, next_body, connections = asyncio.run(_exchange(answer))
    assert (status, body) == (int(answer.split()[1]), b"")
    assert (next_status, next_body) == (200, b"ok")  # the next answer was not eaten as a body
    assert connections == 1


def test_head_answer_has_no_body_even_with_a_length():
    status, body, next_status, next_body, connections = asyncio.run(
        _exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method="HEAD"))
    assert (status, body, next_status, next_body, connections) == (200, b"", 200, b"ok", 1)


async def _server_that_closes_kept_alive_connections(reset: bool):
    """Answers the first request on each connection; the next one on the same connection meets what a
    server's idle timeout does as the request arrives: the connection closes (or resets) without an answer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(OK)
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        if reset:
            writer.transport.abort()  # RST: the client reads ECONNRESET
        else:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_kept_alive_connection_closed_as_idle_is_replaced_and_the_request_sent_again(reset):
    async def go():
        server = await _server_that_closes_kept_alive_connections(reset)
        pool = Pool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1)
        try:
            async with asyncio.timeout(5):
                answers = []
                for path in ("/first", "/second", "/third"):
                    async with pool.request("POST", path, {"n": 1}) as response:
                        answers.append((response.status, await response.read()))
            return answers, pool.connections_opened
        finally:
            await pool.close()
            server.close()

    answers, connections = asyncio.run(go())
    assert answers == [(200, b"ok")] * 3
    assert connections == 3  # each reused connection was found closed and replaced once


def test_a_new_connection_that_closes_without_answering_is_still_an_error():
    async def go():
        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        pool = Pool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1)
        try:
            async with asyncio.timeout(5), pool.request("GET", "/") as response:
                await response.read()
        finally:
            await pool.close()
            server.close()
        return pool.connections_opened

    with pytest.raises(HTTPError, match="closed the connection without answering"):
        asyncio.run(go())


def test_connections_idle_longer_than_the_expiry_are_not_reused():
    async def go():
        answers = [OK, OK]

        async def handle(reader, writer):
            for answer in answers:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
            await reader.read()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        pool = Pool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", 1, idle_expiry_s=0.2)
        try:
            for pause in (0, 0.05, 0.3):  # reused, reused, expired
                await asyncio.sleep(pause)
                async with pool.request("GET", "/") as response:
                    await response.read()
        finally:
            await pool.close()
            server.close()
        return pool.connections_opened

    assert asyncio.run(go()) == 2


async def _counting_server():
    """A keep-alive server answering OK to every request; it records when each connection was accepted and,
    per request, which connection carried it."""
    accepted: list[float] = []
    requests: list[int] = []

    async def handle(reader, writer):
        accepted.append(asyncio.get_running_loop().time())
        number = len(accepted) - 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                requests.append(number)
                if head.startswith(b"GET /slow "):
                    await asyncio.sleep(0.6)
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted, requests


async def _burst(pool: Pool, n: int, path: str = "/") -> None:
    async def one():
        async with pool.request("GET", path) as response:
            await response.read()
    await asyncio.gather(*(one() for _ in range(n)))


def test_a_warm_pool_redials_idle_connections_so_a_burst_after_a_pause_needs_no_handshake():
    async def go():
        server, url, accepted, requests = await _counting_server()
        pool = Pool(url, 4, idle_expiry_s=0.2, keep_warm_s=5)
        try:
            await _burst(pool, 3)
            await asyncio.sleep(0.5)  # longer than the expiry: the first three connections are gone
            second_burst = asyncio.get_running_loop().time()
            await _burst(pool, 3)
        finally:
            await pool.close()
            server.close()
        carriers = requests[3:]
        return carriers, [accepted[c] < second_burst for c in carriers], set(carriers) & set(requests[:3])

    carriers, opened_before, reused_stale = asyncio.run(go())
    assert len(carriers) == 3
    assert all(opened_before), "the second burst opened connections of its own"
    assert not reused_stale, "an expired connection was handed out"


def test_a_warm_pool_stops_redialling_after_keep_warm_s_of_quiet_and_when_the_upstream_goes_away():
    async def go():
        server, url, accepted, _ = await _counting_server()
        pool = Pool(url, 2, idle_expiry_s=0.1, keep_warm_s=0.3)
        try:
            await _burst(pool, 2)
            await asyncio.sleep(0.8)
            quiet = len(accepted)
            await asyncio.sleep(0.4)
            still_quiet = len(accepted) == quiet and pool._warmer is None

            await _burst(pool, 1)  # busy again, then the upstream stops listening
            server.close()  # the listening socket: re-dials are refused from now on
            await asyncio.sleep(0.3)
            stopped = pool._warmer is None
        finally:
            await pool.close()
        return quiet, still_quiet, stopped

    quiet, still_quiet, stopped = asyncio.run(go())
    assert 2 < quiet <= 2 + 2 * 4, "re-dialled while in use, a bounded number of times"
    assert still_quiet
    assert stopped


def test_a_warm_pool_does_not_redial_while_requests_are_in_flight():
    """A connect competes with the requests being served; an idle connection expires instead, as without warming."""
    async def go():
        server, url, accepted, _ = await _counting_server()
        pool = Pool(url, 4, idle_expiry_s=0.2, keep_warm_s=5)
        try:
            await _burst(pool, 2)  # two idle connections
            await _burst(pool, 1, "/slow")  # one of them busy for 0.6 s, while the other ages past the expiry
            during = len(accepted)
            await asyncio.sleep(0.3)  # quiet again: the one left idle is re-dialled before it expires
            after = len(accepted)
        finally:
            await pool.close()
            server.close()
        return during, after

    during, after = asyncio.run(go())
    assert during == 2, "re-dialled while a request was in flight"
    assert after > during


def test_the_gateway_keeps_upstream_connections_warm_only_when_told():
    from spark_labs.serve.proxy import ProxyBackend
    from spark_labs.serve.settings import GatewaySettings

    def pool(**settings):
        backend = ProxyBackend(["http://127.0.0.1:9/v1"], GatewaySettings(**settings))
        return backend._pool(backend.pool.upstreams[0])

    assert pool().keep_warm_s == 0
    assert pool(upstream_keep_warm_s=60).keep_warm_s == 60
