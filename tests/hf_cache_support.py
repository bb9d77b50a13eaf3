"""Helpers for the model-availability tests (no tests here).

- :func:`cache_model`: a Hugging Face cache entry laid out the way ``hf download`` leaves it (``refs/main``, a
  snapshot folder), with small placeholder files: what is tested is finding them, not loading them.
- :func:`stand_in_hub`: a STAND-IN for the Hugging Face Hub on 127.0.0.1 that answers ``HEAD .../resolve/main/
  config.json`` the way the real Hub does for a public, a gated and a missing repository (status and
  ``X-Error-Code`` header). The real Hub cannot be reached from CI, so its answers are played back here.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
COMPLETE = ("config.json", "model.safetensors", "tokenizer.json")


def cache_model(hub: Path, repo_id: str, files: tuple[str, ...] = COMPLETE) -> Path:
    """Put ``files`` of ``repo_id`` in the HF cache at ``hub`` (``$HF_HOME/hub``); return the snapshot folder."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name in files:
        (snapshot / name).write_text("{}")
    return snapshot


# The real Hub's answers to an unauthenticated / authenticated HEAD of a file, by kind of repository: Qwen3-8B is
# public there and Llama-3.1-8B-Instruct gated (licence); any other id here is missing.
PUBLIC, GATED, MISSING = "Qwen/Qwen3-8B", "meta-llama/Llama-3.1-8B-Instruct", "missing/model"
BAD_TOKEN = "hf_expired"


class _HubHandler(http.server.BaseHTTPRequestHandler):
    seen_tokens: list[str | None]

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        auth = self.headers.get("Authorization")
        self.seen_tokens.append(auth)
        repo = "/".join(self.path.strip("/").split("/")[:2])
        if auth == f"Bearer {BAD_TOKEN}":
            self._answer(401, message="Invalid credentials in Authorization header")
        elif repo == PUBLIC:
            self._answer(200, headers={"X-Repo-Commit": COMMIT})
        elif repo == f"{PUBLIC}-renamed":  # the Hub sends a renamed repository's callers to its new name
            self._answer(307, headers={"Location": f"/{PUBLIC}/resolve/main/config.json"})
        elif repo == "portal/model":  # not the Hub: a captive portal or proxy, which sends no Hub headers
            self._answer(404)
        elif repo == GATED:
            self._answer(403 if auth else 401, code="GatedRepo")
        elif repo.startswith("busy/"):
            self._answer(503)
        elif repo == "ggufs/model":  # the repo exists, holding GGUF files only
            self._answer(404, code="EntryNotFound")
        else:  # the Hub says 401 to an anonymous caller for a missing repo (it may be private), 404 otherwise
            self._answer(404 if auth else 401, code="RepoNotFound")

    def _answer(self, status: int, code: str | None = None, message: str | None = None,
                headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if code:
            self.send_header("X-Error-Code", code)
        if message:
            self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def stand_in_hub() -> Iterator[tuple[str, list[str | None]]]:
    """A stand-in Hub on a free port: yields its URL (for ``HF_ENDPOINT``) and the Authorization headers seen."""
    seen: list[str | None] = []
    handler = type("Handler", (_HubHandler,), {"seen_tokens": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def silent_hub() -> Iterator[str]:
    """A STAND-IN Hub that accepts connections and never answers (a proxy or firewall that swallows them)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
