"""The upstream pool: which OpenAI-compatible servers exist, which can take traffic, which to pick.

- Balancing: least outstanding requests (an LLM request's cost varies 100x, so counting what each
  upstream is busy with beats round-robin); ties rotate so idle upstreams share the load.
- Health: an active check (GET {base}/models) every ``health_interval_s`` marks upstreams up or down and
  learns the models each one serves. A probe that *times out* while the upstream is busy with our own
  requests is inconclusive, not a failure: llama-cpp-python answers /v1/models only between generations.
- Circuit breaker per upstream: closed -> open after K consecutive request failures -> half-open after the
  cooldown (one trial request) -> closed on success, open again on failure. It stops a failing upstream
  from eating a failover attempt (and its latency) on every request.
- Names: an upstream is ``upstream-1``, ``upstream-2``... (the order given) in metrics labels, request
  logs and error messages clients see; its address is operator knowledge (``/ready`` for key holders and
  the ``upstream failed`` / ``upstream is down`` log lines). ``by_address=True`` names them host:port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from .logs import log

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def normalise_upstream(url: str) -> str:
    """``host:port``, ``http://host:port`` or ``http://host:port/v1/`` -> ``http://host:port/v1``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if not urlsplit(url).path.endswith("/v1"):
        url += "/v1"
    return url


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._trial_running = False

    def allows(self) -> bool:
        """May a request go to this upstream now? (Does not take the half-open trial slot.)"""
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self.state = HALF_OPEN
            self._trial_running = False
        if self.state == HALF_OPEN:
            return not self._trial_running
        return self.state == CLOSED

    def on_attempt(self) -> None:
        if self.state == HALF_OPEN:
            self._trial_running = True

    def abandon(self) -> None:
        """The attempt ended with no verdict (the client left): free the half-open trial slot."""
        if self.state == HALF_OPEN:
            self._trial_running = False

    def record_success(self) -> None:
        self.state, self.failures, self._trial_running = CLOSED, 0, False

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            self.state, self.opened_at, self._trial_running = OPEN, self.clock(), False


class Upstream:
    def __init__(self, url: str, breaker: CircuitBreaker, name: str | None = None):
        self.base_url = normalise_upstream(url)
        self.address = urlsplit(self.base_url).netloc  # host:port
        self.name = name or self.address  # metric label and what clients may read in an error
        self.breaker = breaker
        self.outstanding = 0
        self.healthy = True  # optimistic until the first probe says otherwise
        self.models: list[str] = []
        self.last_error = ""

    def available(self) -> bool:
        return self.healthy and self.breaker.allows()

    def describe(self) -> dict:
        return {"name": self.name, "url": self.base_url, "healthy": self.healthy, "breaker": self.breaker.state,
                "outstanding": self.outstanding, "models": self.models, "last_error": self.last_error}


class UpstreamPool:
    def __init__(self, urls: list[str], breaker_failures: int, breaker_cooldown_s: float, by_address: bool = False):
        if not urls:
            raise ValueError("the proxy backend needs at least one upstream URL (--upstream http://host:port/v1)")
        self.upstreams = [Upstream(u, CircuitBreaker(breaker_failures, breaker_cooldown_s),
                                   None if by_address else f"upstream-{i}") for i, u in enumerate(urls, 1)]
        self._turn = 0

    def serving(self, model: str | None) -> list[Upstream]:
        """Upstreams that serve ``model`` (all of them while no probe has listed models yet)."""
        if model is None:
            return list(self.upstreams)
        known = [u for u in self.upstreams if u.models]
        return [u for u in self.upstreams if not u.models or model in u.models] if known else list(self.upstreams)

    def choose(self, model: str | None, exclude: set[str]) -> Upstream | None:
        candidates = [u for u in self.serving(model) if u.name not in exclude and u.available()]
        if not candidates:
            return None
        self._turn += 1
        least = min(u.outstanding for u in candidates)
        tied = [u for u in candidates if u.outstanding == least]
        return tied[self._turn % len(tied)]

    def any_available(self) -> bool:
        return any(u.available() for u in self.upstreams)

    def models(self) -> list[str]:
        seen: dict[str, None] = {}
        for upstream in self.upstreams:
            for model in upstream.models:
                seen.setdefault(model)
        return list(seen)

    # --- active health checks
    async def probe(self, client: httpx.AsyncClient, upstream: Upstream, timeout_s: float) -> None:
        try:
            response = await client.get(upstream.base_url + "/models", timeout=timeout_s)
        except httpx.TimeoutException:
            if upstream.outstanding == 0:  # busy with our requests: inconclusive (see module docstring)
                self._mark(upstream, False, "health probe timed out")
            return
        except httpx.HTTPError as exc:
            self._mark(upstream, False, f"health probe failed: {type(exc).__name__}")
            return
        if response.status_code != 200:
            self._mark(upstream, False, f"health probe answered HTTP {response.status_code}")
            return
        # Healthy but an odd model list: keep routing, just without model awareness.
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            upstream.models = [m["id"] for m in response.json().get("data", []) if "id" in m]
        self._mark(upstream, True, "")

    def _mark(self, upstream: Upstream, healthy: bool, reason: str) -> None:
        if healthy != upstream.healthy:
            log(20 if healthy else 30, "upstream is " + ("up" if healthy else "down"), upstream=upstream.name,
                address=upstream.address, reason=reason or "probe ok")
        upstream.healthy = healthy
        if reason:
            upstream.last_error = reason

    async def probe_all(self, client: httpx.AsyncClient, timeout_s: float) -> None:
        await asyncio.gather(*(self.probe(client, u, timeout_s) for u in self.upstreams))

    async def health_loop(self, client: httpx.AsyncClient, interval_s: float, timeout_s: float,
                          on_round: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.probe_all(client, timeout_s)
                on_round()
            except Exception as exc:  # noqa: BLE001 - a broken round must not end health checking for good
                log(40, "health check round failed", error=f"{type(exc).__name__}: {exc}")
