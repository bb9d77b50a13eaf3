"""The course's web chat UI (lab 06): a static page + small ES modules in ``static/`` (package data),
served with a strict Content-Security-Policy by :func:`create_ui_app`, which relays the page's Ollama API
calls to real Ollama or to the gateway's Ollama routes. :mod:`.browser` drives it in Chromium; :mod:`.checks`
names the mistakes in a learner's answers to lab 06's exercises; :mod:`.ollama_settings` measures Ollama's
``OLLAMA_NUM_PARALLEL`` (§5, on a Spark)."""

from .app import CSP, create_ui_app, start_ui
from .browser import run_in_browser
from .checks import lag_mistakes, reader_mistakes, relay_mistakes, speed_mistakes
from .endpoint import chat_endpoint
from .ollama_settings import num_parallel_compared
from .relay import relay_until_stop

__all__ = ["CSP", "chat_endpoint", "create_ui_app", "lag_mistakes", "num_parallel_compared", "reader_mistakes",
           "relay_mistakes", "relay_until_stop", "run_in_browser", "speed_mistakes", "start_ui"]
