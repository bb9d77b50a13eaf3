"""Protection against too much traffic: per-key token buckets (429), a throttle on wrong API keys per client
address (429), and admission control (503).

Admission bounds work in two stages: at most ``max_in_flight`` generations run, at most ``max_queue`` wait
for a slot (FIFO, up to ``queue_timeout_s``); anything beyond is refused at once with Retry-After, because
a client told "busy, retry in 1 s" does better than one whose request rots in an unbounded queue.
Draining (graceful shutdown) refuses new work while in-flight streams finish.
"""

from __future__ import annotations

import asyncio
import time

from .errors import GatewayError
from .metrics import GatewayMetrics


class TokenBucket:
    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token; return 0 when allowed, else the seconds until a token is available."""
        wait = self.wait(now)
        if wait == 0:
            self.tokens -= 1
        return wait

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0: one is there now); takes nothing."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    MAX_KEYS = 10_000  # anonymous callers are keyed by address: bound the memory they can make us use

    def __init__(self, rate: float, burst: int, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, key: str) -> None:
        if not self.enabled:
            return
        now = self.clock()
        wait = self._bucket(key, now).take(now)
        if wait > 0:
            raise GatewayError(429, f"rate limit exceeded for this API key ({self.rate:g} requests/s, burst "
                               f"{self.burst}); retry after {wait:.1f} s (see the Retry-After header)",
                               code="rate_limit_exceeded", retry_after=wait)

    def _bucket(self, key: str, now: float) -> TokenBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.MAX_KEYS:
                self._prune(now)
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket

    def _prune(self, now: float) -> None:
        # A bucket that would be full again carries no state worth keeping.
        full_after = self.burst / self.rate
        self.buckets = {k: b for k, b in self.buckets.items() if now - b.stamp < full_after}


class FailedKeyThrottle(RateLimiter):
    """Wrong API keys, per client address: ``limit`` of them per ``window_s`` (a token bucket that one wrong
    key empties by one). While an address's bucket is empty, every request from it that needs a key is
    refused with 429 *before* its key is looked at: answering the right key with a 200 would tell a guesser
    when to stop, so the throttle would slow nobody. Addresses that sent no wrong key cost one empty-dict
    test per request; other addresses' key holders are never affected.
    """

    def __init__(self, limit: int, window_s: float, clock=time.monotonic):
        super().__init__(limit / window_s, max(limit, 1), clock)
        self.limit, self.window_s = limit, window_s

    def check(self, client: str) -> None:
        if not self.buckets:  # nobody sent a wrong key lately (every request of a healthy gateway)
            return
        bucket = self.buckets.get(client)
        if bucket is None:
            return
        wait = bucket.wait(self.clock())
        if wait > 0:
            raise GatewayError(429, f"too many wrong API keys from your address ({self.limit} per "
                               f"{self.window_s:g} s, max_auth_failures); every request from it that needs a key "
                               f"is refused for {wait:.0f} s more (see Retry-After); check the key you were given",
                               code="too_many_failed_keys", retry_after=wait)

    def failed(self, client: str) -> None:
        if self.enabled:
            now = self.clock()
            self._bucket(client, now).take(now)


class Admission:
    def __init__(self, max_in_flight: int, max_queue: int, queue_timeout_s: float, metrics: GatewayMetrics):
        self.max_in_flight, self.max_queue, self.queue_timeout_s = max_in_flight, max_queue, queue_timeout_s
        self.metrics = metrics
        self.in_flight = 0
        self.waiting = 0
        self.draining = False
        self._slots: asyncio.Semaphore | None = None  # made lazily, inside the server's event loop
        self._idle: asyncio.Event | None = None

    def _sem(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
            self._idle = asyncio.Event()
            self._idle.set()
        return self._slots

    def _reject(self, reason: str, message: str, retry_after: float = 1.0) -> GatewayError:
        self.metrics.rejected.labels(reason).inc()
        return GatewayError(503, message, code=reason, retry_after=retry_after)

    async def acquire(self) -> None:
        slots = self._sem()
        if self.draining:
            raise self._reject("shutting_down", "the gateway is shutting down; retry against another instance "
                               "or in a few seconds")
        if slots.locked():
            if self.waiting >= self.max_queue:
                raise self._reject("queue_full", f"server busy: {self.in_flight} requests in flight and "
                                   f"{self.waiting} queued (max_queue={self.max_queue}); retry after 1 s")
            self.waiting += 1
            self.metrics.queued.set(self.waiting)
            try:
                await asyncio.wait_for(slots.acquire(), self.queue_timeout_s)
            except TimeoutError:
                raise self._reject("queue_timeout", f"server busy: no generation slot freed up within "
                                   f"{self.queue_timeout_s:g} s; retry later") from None
            finally:
                self.waiting -= 1
                self.metrics.queued.set(self.waiting)
        else:
            await slots.acquire()
        self.in_flight += 1
        self.metrics.in_flight.set(self.in_flight)
        self._idle.clear()

    def release(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.set(self.in_flight)
        self._sem().release()
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new work and wait for in-flight generations; True when all finished in time."""
        self.draining = True
        self._sem()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False
