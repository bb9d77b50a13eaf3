"""How spark-labs measures speculative decoding on each engine, read from the registry's ``EngineSpec`` facts.

Three ways: our own verification loop in process (``speculative_loop``: it counts acceptance per step); an
engine server started with and without speculation and swept under load, where the server counts acceptance
(``spec_decode_counters``); or a server with prompt lookup that counts nothing, so only its speed-up and
output identity can be measured.
"""

from __future__ import annotations

from ..engines.engine_spec import EngineSpec
from ..engines.registry import ENGINES

LOOP, UNDER_LOAD, LOOKUP = "our loop", "under load", "prompt lookup"


def mode(spec: EngineSpec) -> str | None:
    """The way ``spec``'s speculation is measured, or None where spark-labs cannot switch it on."""
    if spec.speculative_loop:
        return LOOP
    if "ngram" not in spec.speculative_methods:  # the course's measured modes use prompt lookup
        return None
    return UNDER_LOAD if spec.spec_decode_counters else LOOKUP


def engines_measured_by(way: str) -> list[str]:
    """Engine keys whose speculation is measured ``way`` (LOOP, UNDER_LOAD or LOOKUP), in registry order."""
    return [name for name, spec in ENGINES.items() if mode(spec) == way]
