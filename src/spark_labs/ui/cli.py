"""``spark-labs ui``: serve the course's chat UI over an Ollama API.

    spark-labs ui                                           # real Ollama on this machine (OLLAMA_HOST or :11434)
    spark-labs ui --ollama http://127.0.0.1:8001            # the gateway's Ollama routes (spark-labs serve)
    spark-labs ui --ollama http://spark.local:11434 --port 8080

Open the printed address in a browser. The page calls /api/tags and /api/chat on its own origin; this
server relays them to the Ollama API, with the API key the page sends (if the gateway asks for one).
"""

from __future__ import annotations

import argparse
import os

import httpx

from ..cli_types import ArgumentParser, http_url, listen_problem, port_or_auto
from ..engines.ports import free_port
from ..engines.registry import OLLAMA
from .guard import allowed_host


def default_ollama_url() -> str:
    """Where Ollama's own clients look: ``OLLAMA_HOST`` (``host:port`` or a URL), else 127.0.0.1:11434."""
    host = os.environ.get("OLLAMA_HOST", "").strip() or f"127.0.0.1:{OLLAMA.default_port}"
    if "://" not in host:
        host = "http://" + host
    return host.replace("://0.0.0.0", "://127.0.0.1").rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="spark-labs ui", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ollama", default=None, metavar="URL",
                        help="Ollama API root to relay to (default: OLLAMA_HOST or http://127.0.0.1:11434)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: reachable from "
                        "other machines; the page then relays to --ollama for them)")
    parser.add_argument("--port", default="8080", help="port to listen on, or 'auto' for a free one")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME", type=allowed_host,
                        help="also answer to this host name (repeatable), e.g. spark.local when you open the "
                        "page as http://spark.local:8080/; localhost names and addresses need none")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Checked here rather than as argparse types: the default comes from OLLAMA_HOST, and 'auto' needs --host.
    try:
        ollama = http_url(args.ollama or default_ollama_url())
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--ollama must be an http(s) URL like http://127.0.0.1:11434 (or OLLAMA_HOST host:port): {exc}")
    try:
        port = port_or_auto(args.port)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"--port must be a number or 'auto': {exc}")
    if problem := listen_problem(args.host, 0 if port == "auto" else port):
        parser.error(f"--host {args.host} --port {args.port}: {problem}")
    port = free_port(args.host) if port == "auto" else port
    try:
        version = httpx.get(ollama + "/api/version", timeout=3).json().get("version", "?")
        print(f"Ollama API at {ollama} answers (version {version})")
    except (httpx.HTTPError, ValueError) as exc:
        print(f"warning: the Ollama API at {ollama} does not answer yet ({type(exc).__name__}); the page will "
              "say 'engine down' until it does")

    from ..serve.runner import GatewayServer, server_config
    from .app import create_ui_app

    print(f"spark-labs chat UI: http://{args.host}:{port}/  (Ctrl-C stops it)", flush=True)
    app = create_ui_app(ollama, args.host, args.allow_host)
    GatewayServer(server_config(app, args.host, port), drain_timeout_s=1.0).run()
    return 0
