"""Bearer API keys. Keys are compared by SHA-256 digest so only digests sit in memory and lookups take the
same time whatever the key; logs and metrics see a short key id derived from the digest, never the key."""

from __future__ import annotations

import hashlib

from .errors import GatewayError


def key_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:10]


class Authenticator:
    def __init__(self, keys: set[str]):
        self._ids = {hashlib.sha256(k.encode()).hexdigest(): key_id(k) for k in keys}

    @property
    def enabled(self) -> bool:
        return bool(self._ids)

    def identify(self, authorization: str | None, client_host: str) -> str:
        """The caller's key id; with auth off, the client address (so rate limits still apply per caller)."""
        if not self.enabled:
            return f"anon-{client_host}"
        if not authorization:
            raise GatewayError(401, "missing API key: send the header 'Authorization: Bearer <your key>' (the "
                               "openai client does this with api_key=...)", code="missing_api_key")
        scheme, _, token = authorization.partition(" ")
        found = self._ids.get(hashlib.sha256(token.strip().encode()).hexdigest())
        if scheme.lower() != "bearer" or found is None:
            raise GatewayError(401, "invalid API key: check the key you were given (sent as "
                               "'Authorization: Bearer <key>')", code="invalid_api_key")
        return found
