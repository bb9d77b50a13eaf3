"""Inference engines: one registry of specs, one launcher."""

from .launcher import EngineHandle, launch, likely_cause, resolve_engine, running_engines, stop_all
from .ports import free_port, port_holder, port_is_free
from .registry import ENGINES
from .spec import Availability, EngineSpec

__all__ = [
    "ENGINES", "Availability", "EngineHandle", "EngineSpec", "free_port", "launch", "likely_cause",
    "port_holder", "port_is_free", "resolve_engine", "running_engines", "stop_all",
]
