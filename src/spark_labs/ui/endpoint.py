"""The Ollama API a lab's chat talks to: real Ollama where the profile has it, else the gateway's Ollama
routes in front of the profile's first engine installed here (llama.cpp on the tiny profile; on a GPU without
vLLM's or the other engines' installs, spark-labs' own transformers server).

    endpoint = chat_endpoint(plan("06"))
    endpoint.url, endpoint.model      # an Ollama API root and a model it serves
    endpoint.stop()                   # stops only what this call started
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ..engines.registry import OLLAMA
from .cli import default_ollama_url


@dataclass
class ChatEndpoint:
    url: str  # Ollama API root: /api/tags and /api/chat live under it
    model: str
    kind: str  # "ollama" (the real thing) or "gateway" (spark-labs' Ollama routes over an engine)
    reason: str  # why this one was picked, for the notebook to print
    gateway: object | None = None  # the GatewayHandle when kind == "gateway" (its /metrics show in-flight work)
    _stops: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        while self._stops:
            self._stops.pop()()


def running_ollama(url: str | None = None) -> tuple[str, list[str]] | None:
    """The URL and model names of an Ollama server answering at ``url`` (default: ``OLLAMA_HOST``)."""
    url = url or default_ollama_url()
    try:
        names = [m["name"] for m in httpx.get(url + "/api/tags", timeout=3).json().get("models", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    return url, names


def chat_endpoint(lab, **gateway_settings) -> ChatEndpoint:
    """Real Ollama on the spark profile when it answers and serves a model; otherwise start the profile's
    first engine that is installed here (the first one when none is, so its launch names the fix) and the
    gateway in front of it (``gateway_settings`` are GatewaySettings fields)."""
    if lab.profile.name == "spark":
        found = running_ollama()
        if found and found[1]:
            return ChatEndpoint(found[0], found[1][0], OLLAMA.name, f"Ollama answers at {found[0]}")
        why = ("no Ollama answers at " + default_ollama_url() if not found else
               "Ollama serves no model yet (`ollama pull llama3.1:8b`)")
    else:
        why = f"profile {lab.profile.name} has no Ollama binary"
    from ..engines import engine_args, first_runnable_engine, launch
    from ..serve import start_gateway

    name = first_runnable_engine(lab)
    engine = launch(name, lab.model, port="auto", lab=lab.lab, progress=False,
                    extra_args=engine_args(name, lab.sizes.max_model_len))
    try:
        # health checks list the engine's models for /api/tags (first probe at start)
        gateway = start_gateway(upstreams=[engine.base_url], log_level="warning",
                                **{"health_interval_s": 30.0, **gateway_settings})
    except BaseException:
        engine.stop()
        raise
    endpoint = ChatEndpoint(gateway.url, engine.served_name, "gateway",
                            f"{why}: the gateway's Ollama routes in front of {engine.spec.display_name}",
                            gateway=gateway)
    endpoint._stops += [engine.stop, gateway.stop]
    return endpoint
