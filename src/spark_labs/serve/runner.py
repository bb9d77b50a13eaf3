"""Run the gateway: as a blocking server (the CLI) or in a background thread (tests, notebooks).

    from spark_labs.serve import start_gateway
    gw = start_gateway(upstreams=[engine.base_url], rate_limit_rps=5)   # any GatewaySettings field
    openai.OpenAI(base_url=gw.base_url, api_key="-")...
    gw.stop()

Graceful shutdown happens in :class:`GatewayServer`: on SIGTERM/Ctrl-C (or ``stop()``) the gateway first
*drains*: new generations get 503 (``/ready`` says so, so a load balancer moves traffic away) while in-flight
streams run to completion for up to ``drain_timeout_s``; only then does uvicorn close the listening socket
and cut whatever is left.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Self

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ..engines.ports import free_port
from .app import create_app
from .backends import Backend
from .connections import ConnectionGuard, guarded_protocol
from .settings import GatewaySettings


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_timeout_s: float):
        super().__init__(config)
        self.drain_timeout_s = drain_timeout_s

    async def shutdown(self, sockets=None) -> None:
        gateway = getattr(getattr(self.config.app, "state", None), "gateway", None)
        if gateway is not None and self.drain_timeout_s > 0:
            await gateway.admission.drain(self.drain_timeout_s)
        await super().shutdown(sockets)


def server_config(app, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for a gateway app (its own settings) or any other app (the defaults and the
    SPARK_LABS_GATEWAY_* environment).

    ``X-Forwarded-For`` names the client only when the connection comes from one of ``trusted_proxies``
    (uvicorn's default believes it from 127.0.0.1, so anything on the machine could pick its address and
    with it a fresh rate-limit bucket). Our middleware logs every request as JSON: uvicorn's access log
    would duplicate it as text. timeout_graceful_shutdown is short because the drain already waited.
    """
    gateway = getattr(getattr(app, "state", None), "gateway", None)
    settings = gateway.settings if gateway is not None else GatewaySettings()
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                          timeout_graceful_shutdown=1, lifespan="on", http=_guarded_http(gateway, settings),
                          proxy_headers=bool(settings.trusted_proxies),
                          forwarded_allow_ips=settings.trusted_proxies or None,
                          # h11 (used when httptools is missing) buffers an unfinished head up to this
                          h11_max_incomplete_event_size=settings.max_header_bytes)


def _guarded_http(gateway, settings: GatewaySettings) -> type:
    """uvicorn's HTTP protocol with the connection guard (read deadline, connection caps, head limits)."""
    pool = getattr(getattr(gateway, "backend", None), "pool", None)
    upstream_sockets = settings.max_in_flight * len(pool.upstreams) if pool is not None else 0
    count = (lambda reason: gateway.metrics.rejected.labels(reason).inc()) if gateway is not None else None
    guard = ConnectionGuard(settings.request_read_timeout_s, settings.max_connections,
                            settings.max_connections_per_client, upstream_sockets, count,
                            max_header_bytes=settings.max_header_bytes)
    return guarded_protocol(AutoHTTPProtocol, guard)


def serve_forever(app, settings: GatewaySettings, host: str, port: int) -> None:
    """Serve ``app`` in this process until stopped (the CLI; the process is the gateway's alone)."""
    server = GatewayServer(server_config(app, host, port), settings.drain_timeout_s)
    # The ~70,000 objects of the imports and the app live as long as the process; frozen, the collector no
    # longer walks them again and again (a full collection took 30–55 ms, during which no request moved).
    # Only here, where the process is ours: in a notebook (start_gateway) it would freeze the learner's objects.
    gc.freeze()
    # A request leaves no reference cycle behind, so young objects die by reference counting; what set off
    # collections was the number alive at once: 16 requests in flight pass the default 700 and the collector
    # stopped everything for ~0.2 ms (up to 1.8 ms for the middle generation) inside a burst, once every ~12
    # requests. 10,000 is well above what 256 requests in flight keep alive.
    gc.set_threshold(10_000, 10, 10)
    server.run()


class GatewayHandle:
    """A gateway running in a background thread of this process."""

    def __init__(self, server: GatewayServer, thread: threading.Thread, host: str, port: int, app):
        self.server, self.thread, self.host, self.port, self.app = server, thread, host, port, app

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client wants; Ollama clients take :attr:`url`."""
        return self.url + "/v1"

    @property
    def metrics_url(self) -> str:
        return self.url + "/metrics"

    @property
    def gateway(self):
        return self.app.state.gateway

    def is_running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Drain (up to the settings' drain_timeout_s), then stop the server and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout if timeout is not None else self.server.drain_timeout_s + 15)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<GatewayHandle {self.url} {'running' if self.is_running() else 'stopped'}>"


def start_gateway(backend: Backend | None = None, *, upstreams: list | None = None,
                  settings: GatewaySettings | None = None, app=None, host: str = "127.0.0.1",
                  port: int | None = None, timeout: float = 30.0, **overrides) -> GatewayHandle:
    """Start a gateway in a background thread and return once it accepts requests.

    Give a ``backend``, or ``upstreams`` (OpenAI-compatible URLs or engine handles with a ``base_url``: a
    ProxyBackend is made for them), or a ready ``app`` from :func:`create_app` that you added routes to.
    ``overrides`` are GatewaySettings fields (``api_keys=["k"]``, ``rate_limit_rps=2``...) applied on top
    of ``settings`` (or of the environment when no settings are given); they do not apply to a given ``app``.
    """
    if app is not None:
        settings = app.state.gateway.settings
    else:
        base = settings or GatewaySettings()
        settings = base.model_copy(update=overrides) if overrides else base
        if backend is None:
            from .proxy import ProxyBackend

            urls = [getattr(u, "base_url", u) for u in (upstreams or settings.upstreams)]
            backend = ProxyBackend(urls, settings)
        app = create_app(backend, settings)
    return start_app(app, host, port, settings.drain_timeout_s, timeout)


def start_app(app, host: str = "127.0.0.1", port: int | None = None, drain_timeout_s: float = 5.0,
              timeout: float = 30.0) -> GatewayHandle:
    """Serve any ASGI ``app`` (a gateway, or one a learner wrote) in a background thread; return once it
    accepts requests. Stopping drains in-flight requests for up to ``drain_timeout_s``."""
    port = port or free_port(host)
    server = GatewayServer(server_config(app, host, port), drain_timeout_s)
    # (uvicorn installs signal handlers only in the main thread, so a notebook kernel keeps its own.)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"spark-labs-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"the server did not start on {host}:{port}: {errors[0] if errors else 'exited'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the server did not start on {host}:{port} within {timeout:g} s")
        time.sleep(0.02)
    return GatewayHandle(server, thread, host, port, app)
