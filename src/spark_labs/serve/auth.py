"""Who may call what: Bearer API keys, and the short list of paths anyone may call.

Keys are compared by SHA-256 digest so only digests sit in memory and lookups take the same time whatever
the key; logs and metrics see a short key id derived from the digest, never the key.

Protection is the default: every path needs a key (and counts against the key's rate limit) unless it is
on the public list, so a route added to the app later is protected without doing anything.
"""

from __future__ import annotations

import hashlib

from ..engines.registry import OLLAMA_API, OPENAI_API
from .errors import GatewayError

# Probes and scrapes must work without a key (load balancers, Prometheus); the API description is public
# so a browser can open /docs (it cannot add an Authorization header); /api/version is how Ollama UIs
# detect a server. Nothing here generates text or reveals configuration (see /ready's public answer).
DEFAULT_PUBLIC_PATHS = ("/health", "/ready", "/metrics", "/api/version", "/docs", "/docs/oauth2-redirect",
                        "/openapi.json")

# How to send a key, told in the words of the client the caller is most likely using.
_HOW_TO_SEND = {
    OPENAI_API: "send the header 'Authorization: Bearer <your key>' (the openai client does this with api_key=...)",
    OLLAMA_API: "send the header 'Authorization: Bearer <your key>' (with the ollama client: "
              "ollama.Client(host=..., headers={'Authorization': 'Bearer <your key>'}))",
}


def key_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:10]


class PublicPaths:
    """Paths answered without a key or rate limit: exact paths, or prefixes written with a trailing ``*``
    (``/ui/*`` makes the web UI's static files public). Everything else is protected."""

    def __init__(self, paths=DEFAULT_PUBLIC_PATHS):
        self.exact: set[str] = set()
        self.prefixes: list[str] = []
        for path in paths:
            self.add(path)

    def add(self, path: str) -> None:
        if not path.startswith("/"):
            raise ValueError(f"public path {path!r} must start with '/' (e.g. '/health' or '/ui/*')")
        if path.endswith("*"):
            self.prefixes.append(path[:-1])
        else:
            self.exact.add(path)

    def __contains__(self, path: str) -> bool:
        return path in self.exact or any(path.startswith(prefix) for prefix in self.prefixes)

    def __iter__(self):
        return iter(sorted(self.exact) + [p + "*" for p in self.prefixes])


class Authenticator:
    def __init__(self, keys: set[str]):
        self._ids = {hashlib.sha256(k.encode()).hexdigest(): key_id(k) for k in keys}

    @property
    def enabled(self) -> bool:
        return bool(self._ids)

    def identify(self, authorization: str | None, client_host: str, flavour: str = "openai") -> str:
        """The caller's key id; with auth off, the client address (so rate limits still apply per caller).
        ``flavour`` ("openai" or "ollama") picks how the 401 message tells the caller to send a key."""
        if not self.enabled:
            return f"anon-{client_host}"
        how = _HOW_TO_SEND[flavour]
        if not authorization:
            raise GatewayError(401, f"missing API key: {how}", code="missing_api_key")
        scheme, _, token = authorization.partition(" ")
        found = self._ids.get(hashlib.sha256(token.strip().encode()).hexdigest())
        if scheme.lower() != "bearer" or found is None:
            raise GatewayError(401, f"invalid API key: check the key you were given and {how}",
                               code="invalid_api_key")
        return found

    def is_valid(self, authorization: str | None) -> bool:
        """True for a known key (never raises): used where a key unlocks more detail but is not required."""
        if not self.enabled or not authorization:
            return False
        try:
            self.identify(authorization, "")
        except GatewayError:
            return False
        return True
