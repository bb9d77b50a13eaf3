"""The chat UI's web server: the page and its assets with a strict Content-Security-Policy, plus the
relay of the Ollama API the page talks to (see :mod:`.relay`).

    from spark_labs.ui import start_ui
    ui = start_ui("http://127.0.0.1:11434")       # real Ollama; or a gateway's url (its /api routes)
    print(ui.url)                                  # open it in a browser
    ui.stop()

Every request passes :class:`.guard.PageGuard` first: only the Host names this UI answers to, and on the API only
its own page (see :mod:`.guard`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .guard import PageGuard
from .relay import ROUTES, OllamaRelay

STATIC = Path(__file__).with_name("static")
ASSETS = {"chat.js": "text/javascript", "ollama.js": "text/javascript", "markdown.js": "text/javascript",
          "style.css": "text/css"}
# No inline script or style anywhere, and nothing from other origins: if model output ever reached the
# DOM as HTML, the browser would still refuse to run it.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# Referrer-Policy same-origin: no referrer leaves for other sites, and the page's own POSTs carry its Origin,
# which the guard checks (under no-referrer the Fetch standard makes a POST's Origin "null"; Chromium sends the
# origin anyway, other browsers need not).
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


def create_ui_app(ollama_url: str, host: str = "127.0.0.1", allowed_hosts: Iterable[str] = (), **limits) -> Starlette:
    """The UI over the Ollama API at ``ollama_url`` (server root, e.g. ``http://127.0.0.1:11434``), served on
    ``host`` (the address it listens on) and answering to ``allowed_hosts`` besides localhost names and that
    address. ``limits``: OllamaRelay's ``max_request_bytes`` / ``max_response_bytes``, and ``relay``: a chat
    stream's stop path (default :func:`.relay.relay_until_stop`)."""
    relay = OllamaRelay(ollama_url, **limits)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:  # a fixed list: no path from the URL ever reaches the file system
            return Response(f"no asset {name!r} (the UI serves {', '.join(sorted(ASSETS))})", status_code=404,
                            media_type="text/plain", headers=SECURITY_HEADERS)
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers=SECURITY_HEADERS)

    async def no_icon(request: Request) -> Response:  # browsers ask for it; an empty answer, not a 404
        return Response(status_code=204, headers=SECURITY_HEADERS)

    async def api(request: Request) -> Response:
        return await relay.forward(request)

    @asynccontextmanager
    async def lifespan(app):
        await relay.start()
        yield
        await relay.aclose()

    routes = [Route("/", page), Route("/static/{name}", asset), Route("/favicon.ico", no_icon),
              *(Route(path, api, methods=[method]) for method, path in sorted(ROUTES))]
    guard = Middleware(PageGuard, host=host, allowed_hosts=allowed_hosts, headers=SECURITY_HEADERS)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[guard])
    app.state.ollama_url = relay.upstream
    return app


def start_ui(ollama_url: str, host: str = "127.0.0.1", port: int | None = None, allowed_hosts: Iterable[str] = (),
             **limits):
    """Serve the UI in a background thread (a notebook, a test); returns a handle with ``url`` and ``stop()``."""
    from ..serve.runner import start_app

    return start_app(create_ui_app(ollama_url, host, allowed_hosts, **limits), host, port, drain_timeout_s=1.0)
