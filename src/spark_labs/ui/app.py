"""The chat UI's web server: the page and its assets with a strict Content-Security-Policy, plus the
relay of the Ollama API the page talks to (see :mod:`.relay`).

    from spark_labs.ui import start_ui
    ui = start_ui("http://127.0.0.1:11434")       # real Ollama; or a gateway's url (its /api routes)
    print(ui.url)                                  # open it in a browser
    ui.stop()
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from .relay import ROUTES, OllamaRelay

STATIC = Path(__file__).with_name("static")
ASSETS = {"chat.js": "text/javascript", "ollama.js": "text/javascript", "markdown.js": "text/javascript",
          "style.css": "text/css"}
# No inline script or style anywhere, and nothing from other origins: if model output ever reached the
# DOM as HTML, the browser would still refuse to run it.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


def create_ui_app(ollama_url: str) -> Starlette:
    """The UI over the Ollama API at ``ollama_url`` (server root, e.g. ``http://127.0.0.1:11434``)."""
    relay = OllamaRelay(ollama_url)

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
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ollama_url = relay.upstream
    return app


def start_ui(ollama_url: str, host: str = "127.0.0.1", port: int | None = None):
    """Serve the UI in a background thread (a notebook, a test); returns a handle with ``url`` and ``stop()``."""
    from ..serve.runner import start_app

    return start_app(create_ui_app(ollama_url), host, port, drain_timeout_s=1.0)
