"""The course's web chat UI (lab 06): a static page + small ES modules in ``static/`` (package data),
served with a strict Content-Security-Policy by :func:`create_ui_app`, which relays the page's Ollama API
calls to real Ollama or to the gateway's Ollama routes. :mod:`.browser` drives it in Chromium."""

from .app import CSP, create_ui_app, start_ui
from .browser import run_in_browser
from .endpoint import chat_endpoint

__all__ = ["CSP", "chat_endpoint", "create_ui_app", "run_in_browser", "start_ui"]
