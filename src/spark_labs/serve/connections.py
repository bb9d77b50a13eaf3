"""Connection-level protection, below HTTP: a deadline for every request head, and caps on open connections.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but only once a response was
sent: a connection that never completes a request head (opened and left idle, or fed one byte a second,
"slowloris") stays open for ever. A few hundred of them use up the process's file descriptors, and then
``/health`` and chat fail for everyone. So each connection here gets:

- a **read deadline**: the whole request (head and body) must have arrived ``request_read_timeout_s`` after
  the connection opens or after its last response. An idle connection is then closed; one that sent part
  of a request gets ``408`` first. The deadline rides on one timer per request that the protocol arms
  anyway, so the application needs no timeout of its own around reading the body.
- a **per-address cap** (``max_connections_per_client``): past it a new connection gets ``503`` at once, so
  one client cannot take every slot while others (a load balancer's health check) still get in;
- a **global cap** (``max_connections``, kept below the open-file limit): a new connection past it closes
  the oldest connection that is not serving a request (idle or still dribbling its head) to make room, and
  only if every connection is busy serving is the new one refused with ``503``;
- **head limits**: uvicorn's httptools parser keeps a request head in memory however long it grows (a 44 MB
  header was read whole, 8 of them cost 380 MiB). Here the reads that arrive while a head is unfinished are
  added up (the parser says where heads and bodies begin and end; a body is never counted); past
  ``max_header_bytes`` the client gets ``431`` and the connection closes, so no more than the limit and one
  read (256 KiB) is ever held. A head that took more than one read is measured exactly when it completes.
  Under uvicorn's h11 parser (used when httptools is not installed) h11's own buffer limit is set to
  ``max_header_bytes`` and its refusal is answered with the same 431. Too many header lines are the gateway
  middleware's to refuse (``max_header_count``): the size bounds their memory here.
- **WebSocket upgrades** leave the guard's deadline (an open WebSocket is not a slow request) but stay
  counted against the caps until they close.

All of it runs in the protocol callbacks uvicorn already makes (one timer per request, a sum per read), so
a request that behaves costs nothing measurable (``spark-labs bench gateway`` checks).
"""

from __future__ import annotations

import json
import resource
from collections import Counter
from collections.abc import Callable

from .errors import GatewayError
from .logs import log

FD_RESERVE = 64  # descriptors the process needs besides client and upstream sockets (logs, files, loop)


def fd_budget(upstream_sockets: int) -> int | None:
    """Client connections this process can hold without running out of file descriptors (None: no limit)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - FD_RESERVE - upstream_sockets)


class ConnectionGuard:
    """The open connections of one server, oldest first, and the rules above. ``count(reason)`` is told about
    every refusal and close, for the gateway's ``spark_labs_rejected_total{reason}``."""

    def __init__(self, read_timeout_s: float, max_connections: int, max_per_client: int,
                 upstream_sockets: int = 0, count: Callable[[str], None] | None = None,
                 max_header_bytes: int = 32_768):
        self.read_timeout_s = read_timeout_s
        self.max_per_client = max_per_client
        self.max_header_bytes = max_header_bytes
        budget = fd_budget(upstream_sockets)
        self.max_connections = max_connections if budget is None else min(max_connections, budget)
        if self.max_connections < max_connections:
            log(30, "max_connections lowered to stay under the open-file limit (raise it with ulimit -n)",
                configured=max_connections, effective=self.max_connections)
        self.count = count or (lambda reason: None)
        self.open: dict[_GuardedConnection, None] = {}  # insertion order = age
        self.per_client: Counter[str] = Counter()

    def admit(self, conn: _GuardedConnection) -> str | None:
        """Take ``conn`` in, or return why it is refused."""
        host = conn.client_host
        if self.max_per_client and self.per_client[host] >= self.max_per_client:
            self.count("too_many_connections")
            return (f"too many open connections from your address ({self.max_per_client}, "
                    "max_connections_per_client); reuse keep-alive connections or close idle ones")
        if len(self.open) >= self.max_connections and not self._evict_one_idle():
            self.count("too_many_connections")
            return (f"the gateway holds its maximum of {self.max_connections} open connections, all busy; "
                    "retry in a second")
        self.open[conn] = None
        self.per_client[host] += 1
        return None

    def _evict_one_idle(self) -> bool:
        for conn in self.open:
            if not conn.serving():
                self.count("idle_evicted")
                conn.transport.close()
                self.release(conn)  # now, not when the loop gets round to connection_lost
                return True
        return False

    def release(self, conn: _GuardedConnection) -> None:
        if conn not in self.open:  # refused, or evicted already
            return
        del self.open[conn]
        self.per_client[conn.client_host] -= 1
        if not self.per_client[conn.client_host]:
            del self.per_client[conn.client_host]


def _raw_response(status: int, reason: str, error: GatewayError) -> bytes:
    body = json.dumps(error.payload()).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in error.headers().items())
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n{extra}\r\n").encode() + body


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head past the limits (see ``send_400_response``)."""


class _GuardedConnection:
    """Mixed into uvicorn's HTTP protocol class (httptools or h11: both have the callbacks used here, except
    ``on_headers_complete``, which only httptools calls)."""

    guard: ConnectionGuard  # set per server by guarded_protocol()
    REFUSED_LINGER_S = 0.5  # read the refused client's request before closing, so it sees our 503, not a reset

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._deadline = None
        self._head_started = False
        self._refused = False
        self._discarding = False  # answered and closing: what the client still sends is read and dropped
        self._upgraded = False
        self._in_head = False  # httptools: a request head began and is not complete yet
        self._head_began = False  # ... and it began in the read being parsed now
        self._in_body = False  # httptools: a request body is being parsed
        self._head_reads = 0  # reads parsed while the current head was unfinished
        self._head_bytes = 0  # their bytes (not those of a read that began with the end of a body)
        self._read = 0  # size of the read being parsed now
        self._head_refusal: GatewayError | None = None
        peer = transport.get_extra_info("peername")
        self.client_host = peer[0] if peer else "unknown"
        refusal = self.guard.admit(self)
        if refusal is not None:
            self._refuse(refusal)
        else:
            self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self.transport.close()  # what it sent is read now: closing no longer resets the connection
            return
        if self._discarding:
            return
        self._head_started = True
        self._read, self._head_began, began_in_body = len(data), False, self._in_body
        super().data_received(data)
        if self._in_head and not (self._discarding or self._upgraded):  # a head is still unfinished
            self._head_reads += 1
            if not (self._head_began and began_in_body):  # else the read held body bytes too: not counted
                self._head_bytes += len(data)
            if self._head_bytes > self.guard.max_header_bytes:
                self._refuse_head(self._unfinished_head_error())

    def on_message_begin(self) -> None:
        """A request head begins (this and the two callbacks below: httptools only)."""
        self._in_head, self._head_began, self._head_reads, self._head_bytes = True, True, 0, 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        """The head is complete: measure it exactly if it could be over the limit (it took more than one read,
        or this read alone is bigger than the limit), before uvicorn makes a request of it."""
        self._in_head, self._in_body = False, True
        limit = self.guard.max_header_bytes
        if self._head_reads or self._read > limit:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > limit:
                self._head_refusal = head_error(f"the request head is {size} bytes; at most {limit} are "
                                                "accepted (max_header_bytes)")
                raise _HeadTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers every parser failure with 400; a head over the limit gets its 431 instead: one we
        stopped (``_HeadTooLarge``), or one h11 refused for its size (h11 keeps what it could not parse)."""
        refusal = self._head_refusal
        h11 = getattr(self, "conn", None)
        if refusal is None and h11 is not None and len(h11.trailing_data[0]) > self.guard.max_header_bytes:
            refusal = self._unfinished_head_error()
        if refusal is not None:
            self._refuse_head(refusal)
            return
        super().send_400_response(msg)

    def handle_websocket_upgrade(self, *args) -> None:
        """From here the transport belongs to a WebSocket protocol: no head deadline, still counted by the
        guard until the WebSocket closes."""
        self._upgraded = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().handle_websocket_upgrade(*args)
        websocket = self.transport.get_protocol()
        if websocket is self:
            return
        lost = websocket.connection_lost

        def connection_lost(exc) -> None:
            self.guard.release(self)
            lost(exc)

        websocket.connection_lost = connection_lost

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request head has the same deadline as the first

    def connection_lost(self, exc) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self.guard.release(self)
        super().connection_lost(exc)

    def serving(self) -> bool:
        """A request head arrived and its response is not finished: the connection is doing real work."""
        if self._upgraded:
            return True
        cycle = getattr(self, "cycle", None)
        return cycle is not None and not cycle.response_complete

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._head_started = False
        self._deadline = self.loop.call_later(self.guard.read_timeout_s, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started or not cycle.more_body:
                return  # a whole request arrived and is being answered: re-armed when its response completes
            missing = "body"  # the head came, the body is dripping in
        elif self._head_started:
            missing = "head"
        else:
            self.guard.count("idle_timeout")
            self.transport.close()
            return
        self.guard.count("read_timeout")
        error = GatewayError(408, f"the request {missing} did not arrive within {self.guard.read_timeout_s:g} s "
                             "(request_read_timeout_s); send the whole request at once", code="request_timeout")
        self.transport.write(_raw_response(408, "Request Timeout", error))
        self.transport.close()

    def _refuse(self, message: str) -> None:
        self._refused = True
        error = GatewayError(503, message, code="too_many_connections", retry_after=1)
        self.transport.write(_raw_response(503, "Service Unavailable", error))
        self.loop.call_later(self.REFUSED_LINGER_S, self.transport.close)

    def _unfinished_head_error(self) -> GatewayError:
        return head_error(f"the request head passed {self.guard.max_header_bytes} bytes (max_header_bytes) before "
                          "it was complete")

    def _refuse_head(self, error: GatewayError) -> None:
        """431, then read and drop what the client is still sending for a moment before closing: closing a
        socket with unread data resets the connection, and the client would never see the answer."""
        self.guard.count("header_too_large")
        self._discarding = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.transport.write(_raw_response(431, "Request Header Fields Too Large", error))
        self.loop.call_later(self.REFUSED_LINGER_S, self.transport.close)


def head_error(message: str) -> GatewayError:
    """431, for a head over ``max_header_bytes`` (here) or ``max_header_count`` (the gateway middleware)."""
    return GatewayError(431, f"{message}; send shorter headers (large data belongs in the request body)",
                        code="header_too_large")


def guarded_protocol(base: type, guard: ConnectionGuard) -> type:
    """uvicorn's HTTP protocol class ``base`` with ``guard``'s rules (pass the result as Config(http=...))."""
    return type(f"Guarded{base.__name__}", (_GuardedConnection, base), {"guard": guard})
