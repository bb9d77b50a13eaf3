"""Only the UI's own page may use the UI server: the checks in front of every route (docs/ui.md says why).

- **Host allow-list** (every request): DNS rebinding points an attacker's name at this machine after their page
  loaded, so their page becomes "same-origin" with this server; its requests then carry ``Host: attacker.example``.
  Served are localhost names, loopback addresses, the address the server listens on, any address when it listens
  on all of them (an address typed as digits cannot be rebound), and names allowed with ``--allow-host``.
- **Own origin only** (``/api/``): a page on another site can POST to ``/api/chat`` without CORS (a form, a
  ``text/plain`` fetch). A browser names the sender in ``Origin`` and, where it has Fetch Metadata, in
  ``Sec-Fetch-Site``; either must say "this page". A client sending neither is not a browser (curl, a script):
  nobody's page can make it send requests, so it passes.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketClose

ALLOW_HOST_FLAG = "--allow-host"
_WILDCARDS = {"0.0.0.0", "::", ""}
_OWN_SITE = {"same-origin", "none"}  # Sec-Fetch-Site of the page's own fetches; "none": typed into the address bar


def hostname(host: str) -> str:
    """The name in a Host header (or a --host / --allow-host value): lower case, without port, brackets, final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""
    return (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).rstrip(".")


def allowed_host(value: str) -> str:
    """An ``--allow-host`` value (argparse type): a bare host name or address, not a URL or a pattern."""
    name = hostname(value)
    if "/" in value or not re.fullmatch(r"[a-z0-9_.-]+|[0-9a-f:.]+", name):
        raise argparse.ArgumentTypeError(f"{value!r} is not a host name: give the name alone, like spark.local")
    return name


class PageGuard:
    """ASGI middleware refusing, with a one-line JSON ``{"error"}`` and 403, what is not the UI's own page."""

    def __init__(self, app, host: str = "127.0.0.1", allowed_hosts: Iterable[str] = (),
                 headers: dict[str, str] | None = None):
        self.app, self.headers = app, headers
        bound = hostname(host)
        self.any_address = bound in _WILDCARDS
        self.names = {"localhost", *(hostname(h) for h in allowed_hosts)} | (set() if self.any_address else {bound})

    def host_refusal(self, host: str) -> str | None:
        name = hostname(host)
        if name in self.names or name.endswith(".localhost"):
            return None
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            address = None
        if address is not None and (address.is_loopback or self.any_address):
            return None
        if not name:
            return "the request names no Host: send the address you opened (Host: 127.0.0.1:PORT)"
        served = ", ".join(sorted(self.names | {"*.localhost", "127.0.0.1", "::1"}))
        return (f"Host '{name}' is not a name this chat UI answers to ({served}); a page from another site may be "
                f"trying DNS rebinding. If you opened the UI by this name, restart it with "
                f"`spark-labs ui {ALLOW_HOST_FLAG} {name}`")

    @staticmethod
    def origin_refusal(scheme: str, headers: Headers) -> str | None:
        own = f"{scheme}://{headers.get('host', '')}".lower()
        origin, site = headers.get("origin"), headers.get("sec-fetch-site")
        if origin is not None and origin.lower() != own:
            sender = "a page with no origin (a sandboxed frame or a file)" if origin == "null" else f"the page {origin}"
            return (f"{sender} may not use this relay: it answers only its own page, {own}/ (open the chat there; "
                    "a script sends no Origin)")
        if site is not None and site not in _OWN_SITE:
            return (f"a {site} request (Sec-Fetch-Site) may not use this relay: it answers only its own page, "
                    f"{own}/ (open the chat there)")
        return None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # the UI has no WebSocket (or any other) routes
            await WebSocketClose(code=1008)(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.host_refusal(headers.get("host", ""))
        if refusal is None and scope["path"].startswith("/api/"):
            refusal = self.origin_refusal(scope.get("scheme", "http"), headers)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await JSONResponse({"error": refusal}, status_code=403, headers=self.headers)(scope, receive, send)
